/*
 * log — see log.h.
 */
#include "broker/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_ROTATE_BYTES (10ll << 20)

static struct {
    uint32_t node;
    int fd;
    char *path;
    long long size;
    bool detached;
    bool quiet_info;
    bool syslog_open;
} lg = {.node = 0, .fd = -1};

static const char *const level_names[] = {"ERROR", "WARN", "INFO"};

void mk_log_node(uint32_t node_id)
{
    lg.node = node_id;
}

static int open_file(void)
{
    int fd = open(lg.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    lg.size = fstat(fd, &st) == 0 ? (long long)st.st_size : 0;
    if (lg.fd >= 0)
        close(lg.fd);
    lg.fd = fd;
    return 0;
}

int mk_log_open(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    free(lg.path);
    lg.path = p;
    return open_file();
}

int mk_log_reopen(void)
{
    return lg.path ? open_file() : 0;
}

void mk_log_terminal_info(bool on)
{
    lg.quiet_info = !on;
}

void mk_log_detach(void)
{
    lg.detached = true;
    if (!lg.syslog_open) {
        openlog("minikafka", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        lg.syslog_open = true;
    }
}

void mk_log_close(void)
{
    if (lg.fd >= 0)
        close(lg.fd);
    lg.fd = -1;
    free(lg.path);
    lg.path = NULL;
    if (lg.syslog_open)
        closelog();
    lg.syslog_open = false;
}

/* At the size limit: keep one old copy, start a new file. */
static void rotate(void)
{
    char old[4096];
    if (snprintf(old, sizeof(old), "%s.1", lg.path) >= (int)sizeof(old))
        return;
    if (rename(lg.path, old) == 0)
        open_file();
}

void mk_log(enum mk_level level, const char *fmt, ...)
{
    int saved = errno;
    char msg[2048], line[2304];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(line, sizeof(line), "%s.%03ldZ minikafka[%ld] node=%u %s %s\n", when,
                     ts.tv_nsec / 1000000, (long)getpid(), lg.node, level_names[level], msg);
    if (n < 0)
        goto out;
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }

    bool stored = false;
    if (lg.fd >= 0) {
        if (lg.size >= LOG_ROTATE_BYTES)
            rotate();
        ssize_t w = write(lg.fd, line, (size_t)n);
        stored = w == n;
        if (w > 0)
            lg.size += w;
    }
    if (!lg.detached && !(level == MK_INFO && lg.quiet_info)) {
        /* The terminal gets the short form. */
        static const char *const tty[] = {"error: ", "warning: ", ""};
        fprintf(stderr, "minikafka: %s%s\n", tty[level], msg);
    } else if (lg.detached && (level != MK_INFO || !stored)) {
        syslog(level == MK_ERROR  ? LOG_ERR
               : level == MK_WARN ? LOG_WARNING
                                  : LOG_INFO,
               "node=%u %s %s", lg.node, level_names[level], msg);
    }
out:
    errno = saved;
}
