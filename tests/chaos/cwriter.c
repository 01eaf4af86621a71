/*
 * cwriter — the chaos harness's producer: appends unique, self-checking
 * records to a partition file and logs every attempt with its outcome, so
 * check.py can tell acknowledged, definitely failed and unknown values apart.
 *
 *   cwriter -w WID -f FILE -l LOG [-b BATCH] [-d SECS] [-n MAXWRITES] [-g GAP_US]
 *           [-s RECSIZE]
 *
 * RECORD (exactly RECSIZE bytes, newline included; default 48, min 32)
 *     W<wid> S<seq> K<check> xxx...x\n
 *   seq counts records of this writer from 0; check is
 *   (wid * 1000003 + seq * 7 + RECSIZE) mod 65536 as 4 lowercase hex digits;
 *   the 'x' padding fills the record to RECSIZE. Numbers are plain decimal
 *   (no sign, no leading zero). A cut, garbled or merged record fails the
 *   length or the check, so it never passes for another writer's value.
 *
 * ATTEMPTS
 *   One write() per attempt carrying BATCH consecutive records, on a
 *   descriptor opened O_WRONLY|O_APPEND and kept across attempts. After an
 *   error or a short write the descriptor is closed and opened again before
 *   the next attempt (a short write may leave a partial line behind in the
 *   open file; it must not be completed by the next record). A failed open is
 *   retried every 50 ms. Sequence numbers are never reused: the values of a
 *   failed attempt stay burnt.
 *
 * LOG (one write() per line straight to the file, no stdio buffer: the
 * daemons are killed, never the writer, and a line once written is kept)
 *     H <wid> <FILE> <batch> <recsize>          first line
 *     I <t_ns> <first_seq> <count>              just before write()
 *     C <t_ns> <first_seq> <count> ok 0         write() returned the full length
 *     C <t_ns> <first_seq> <count> err <errno>  write() returned -1
 *     C <t_ns> <first_seq> <count> short <n>    write() returned n < the length
 *     E <t_ns> open <errno>                     first failed open of a streak
 *   t_ns is CLOCK_REALTIME in nanoseconds (the driver logs faults with it).
 *   An I without its C (the log ends there) is an attempt whose outcome is
 *   unknown; so are err (but for EINVAL-like errnos, see check.py) and short.
 *
 * STOPPING
 *   After SECS seconds (default 60; 0 = no limit), after MAXWRITES attempts
 *   (default 0 = no limit) or on SIGTERM/SIGINT. The signal handler only sets
 *   a flag (no SA_RESTART): a write in progress ends (it may end with EINTR,
 *   logged as err 4), is logged, and the writer exits 0. A write blocked on a
 *   stopped (SIGSTOP) daemon cannot end before the daemon runs again: FUSE
 *   waits for its answer; only SIGKILL ends the writer then, and the attempt
 *   stays an I without C, which check.py counts as unknown.
 *
 * Exit status: 0 normally, 2 on usage errors, 1 on local errors (the log
 * cannot be written, or a record no longer fits in RECSIZE).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/chaos/tool.h"

#define RECSIZE_MIN   32
#define RECSIZE_MAX   65536
#define BATCH_MAX     65536
#define WRITE_MAX     (64u << 20) /* bytes in one attempt */
#define WID_MAX       999999999u
#define OPEN_RETRY_NS 50000000LL

/* ---- the log ------------------------------------------------------------ */

static int log_fd = -1;

/* Writes one formatted log line with a single write() (retried only for the
 * part not yet written), or exits 1: a writer that cannot log must not write
 * values nobody will account for. */
static void logf_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_line(const char *fmt, ...)
{
    char line[4096 + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) {
        fprintf(stderr, "cwriter: log line too long\n");
        exit(1);
    }
    const char *p = line;
    size_t left = (size_t)n;
    while (left > 0) {
        ssize_t w = write(log_fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("cwriter: log write");
            exit(1);
        }
        p += w;
        left -= (size_t)w;
    }
}

/* ---- arguments ---------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: cwriter -w WID -f FILE -l LOG [-b BATCH] [-d SECS] [-n MAXWRITES] "
                    "[-g GAP_US] [-s RECSIZE]\n");
    exit(2);
}

/* ---- records ------------------------------------------------------------ */

static unsigned record_check(uint64_t wid, uint64_t seq, uint64_t recsize)
{
    /* Unsigned wrap-around is harmless: 65536 divides 2^64. */
    return (unsigned)((wid * 1000003u + seq * 7u + recsize) % 65536u);
}

/* Formats record (wid, seq) into rec[0..recsize); -1 if it does not fit. */
static int record_format(char *rec, size_t recsize, uint64_t wid, uint64_t seq)
{
    char head[64];
    int n = snprintf(head, sizeof head, "W%" PRIu64 " S%" PRIu64 " K%04x ", wid, seq,
                     record_check(wid, seq, recsize));
    if (n < 0 || (size_t)n + 1 > recsize)
        return -1;
    memcpy(rec, head, (size_t)n);
    memset(rec + n, 'x', recsize - 1 - (size_t)n);
    rec[recsize - 1] = '\n';
    return 0;
}

/* ---- main --------------------------------------------------------------- */

/* Opens path, retrying every 50 ms, logging the first failure of a streak.
 * Returns the descriptor, or -1 when told to stop (signal or deadline). */
static int open_target(const char *path, int64_t deadline)
{
    int logged = 0;
    for (;;) {
        if (stop_requested || (deadline && mono_ns() >= deadline))
            return -1;
        int fd = open(path, O_WRONLY | O_APPEND);
        if (fd >= 0)
            return fd;
        if (!logged) {
            logf_line("E %" PRId64 " open %d\n", now_ns(), errno);
            logged = 1;
        }
        sleep_ns(OPEN_RETRY_NS);
    }
}

int main(int argc, char **argv)
{
    uint64_t wid = 0, batch = 1, maxwrites = 0, gap_us = 0, recsize = 48;
    double secs = 60;
    const char *path = NULL, *logpath = NULL;
    int have_wid = 0, opt;

    while ((opt = getopt(argc, argv, "w:f:l:b:d:n:g:s:")) != -1) {
        switch (opt) {
        case 'w':
            if (parse_u64(optarg, WID_MAX, &wid) != 0)
                usage();
            have_wid = 1;
            break;
        case 'f':
            path = optarg;
            break;
        case 'l':
            logpath = optarg;
            break;
        case 'b':
            if (parse_u64(optarg, BATCH_MAX, &batch) != 0 || batch == 0)
                usage();
            break;
        case 'd':
            if (parse_secs(optarg, &secs) != 0)
                usage();
            break;
        case 'n':
            if (parse_u64(optarg, UINT64_MAX, &maxwrites) != 0)
                usage();
            break;
        case 'g':
            if (parse_u64(optarg, 3600000000u, &gap_us) != 0)
                usage();
            break;
        case 's':
            if (parse_u64(optarg, RECSIZE_MAX, &recsize) != 0 || recsize < RECSIZE_MIN)
                usage();
            break;
        default:
            usage();
        }
    }
    if (optind != argc || !have_wid || !path || !logpath || *path == '\0' ||
        strchr(path, '\n') != NULL)
        usage();
    if (batch * recsize > WRITE_MAX) {
        fprintf(stderr, "cwriter: BATCH * RECSIZE exceeds %u bytes\n", WRITE_MAX);
        usage();
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked call may end early */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    log_fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        perror(logpath);
        return 1;
    }
    logf_line("H %" PRIu64 " %s %" PRIu64 " %" PRIu64 "\n", wid, path, batch, recsize);

    size_t len = (size_t)(batch * recsize);
    char *buf = malloc(len);
    if (!buf) {
        perror("cwriter: malloc");
        return 1;
    }
    int64_t deadline = secs > 0 ? mono_ns() + (int64_t)(secs * 1e9) : 0;
    uint64_t seq = 0, writes = 0;
    int fd = -1;

    while (!stop_requested && (!maxwrites || writes < maxwrites) &&
           (!deadline || mono_ns() < deadline)) {
        if (fd < 0) {
            fd = open_target(path, deadline);
            if (fd < 0)
                break;
        }
        for (uint64_t i = 0; i < batch; i++) {
            if (record_format(buf + i * recsize, (size_t)recsize, wid, seq + i) != 0) {
                fprintf(stderr,
                        "cwriter: record W%" PRIu64 " S%" PRIu64 " exceeds %" PRIu64 " bytes\n",
                        wid, seq + i, recsize);
                return 1;
            }
        }
        logf_line("I %" PRId64 " %" PRIu64 " %" PRIu64 "\n", now_ns(), seq, batch);
        ssize_t n = write(fd, buf, len);
        int err = errno;
        int64_t t = now_ns();
        writes++;
        if (n == (ssize_t)len) {
            logf_line("C %" PRId64 " %" PRIu64 " %" PRIu64 " ok 0\n", t, seq, batch);
        } else {
            if (n < 0)
                logf_line("C %" PRId64 " %" PRIu64 " %" PRIu64 " err %d\n", t, seq, batch, err);
            else
                logf_line("C %" PRId64 " %" PRIu64 " %" PRIu64 " short %zd\n", t, seq, batch, n);
            close(fd);
            fd = -1;
        }
        seq += batch;
        if (gap_us > 0 && !stop_requested)
            sleep_ns((int64_t)gap_us * 1000);
    }
    if (fd >= 0)
        close(fd); /* every value was logged at its write(); close says nothing new */
    free(buf);
    close(log_fd);
    return 0;
}
