/*
 * log — the daemon's messages: one line each, with time, pid, node id and a
 * level, so that a daemon's warnings reach somewhere a user can look.
 *
 *   2026-12-01T15:05:08.123Z minikafka[4242] node=1 WARN orders/0: checkpoint failed: ...
 *
 * Where lines go:
 *   - the log file (DATA_DIR/minikafka.log once mk_log_open was called),
 *     appended with one write(2) per line; at 10 MiB it is renamed to
 *     minikafka.log.1 (one old copy kept) and a new one started;
 *   - stderr while the process has a terminal to report to (foreground, or
 *     before daemonizing: mk_log_detach() ends that);
 *   - syslog (LOG_DAEMON) for ERROR and WARN once detached, and for any line
 *     the file could not take (a full disk), so nothing is silently lost.
 * Before mk_log_open (unit tests, option parsing) lines go to stderr only.
 *
 * Not thread-safe beyond what one write(2) per line gives: call it from the
 * loop thread (thread-pool jobs return their errors to the loop instead).
 */
#ifndef MK_LOG_H
#define MK_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum mk_level { MK_ERROR, MK_WARN, MK_INFO };

/* Sets the node id shown on every line. */
void mk_log_node(uint32_t node_id);

/* Opens (appends to) the log file at path; -errno on failure (lines then go
 * to stderr/syslog only).  The path is copied. */
int mk_log_open(const char *path);

/* Reopens the file at the same path (after logrotate moved it: SIGHUP). */
int mk_log_reopen(void);

/* Whether INFO lines reach the terminal too (warnings and errors always
 * do while there is one); default yes. */
void mk_log_terminal_info(bool on);

/* No terminal from now on: stderr is no longer written; syslog takes
 * warnings and errors. */
void mk_log_detach(void);

void mk_log_close(void);

void mk_log(enum mk_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
