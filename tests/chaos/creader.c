/*
 * creader — the chaos harness's consumer: follows a partition file like
 * `tail -f` from byte 0 and logs every complete line with its byte position,
 * so check.py can compare what was read with what the cluster finally holds.
 *
 *   creader -r RID -f FILE -l LOG [-d SECS] [-p POLL_MS]
 *
 * LOOP
 *   Open FILE (retried every 50 ms). Then, over and over: fstat for the size;
 *   pread the bytes from the position on (at most 1 MiB at a time); log each
 *   complete line and move the position past it; keep an incomplete tail
 *   unlogged and read it again later. Sleep POLL_MS (default 20) when nothing
 *   new came. On a failed fstat or pread (ENOTCONN when the daemon behind the
 *   mount was killed, EIO, ...) close and open again: a new session, which
 *   goes on from the same position. In a new session, once the size reaches
 *   the position, the last 4096 bytes before it (or from 0) are read again
 *   and logged as V lines, starting at the first line boundary in them, for
 *   check.py to compare as well.
 *   A line longer than 1 MiB cannot be a record; it is logged in 1 MiB pieces
 *   as R lines without newline (len == length of the record field), so the
 *   position stays exact and check.py reports it.
 *
 * LOG (one write() per line, no stdio buffer; t_ns = CLOCK_REALTIME in ns)
 *     H <rid> <FILE>                       first line
 *     O <t_ns> <session>                   a successful open; sessions count from 1
 *     E <t_ns> open <errno>                first failed open of a streak
 *     E <t_ns> read <errno>                failed fstat or pread; the session ends
 *     R <t_ns> <pos> <len> <record>        a line read at byte pos; len includes the
 *                                          newline, record is the line without it
 *     V <t_ns> <pos> <len> <record>        the same, from a verification re-read; the
 *                                          last one has len == length of record when
 *                                          the bytes before pos no longer end in '\n'
 *     P <t_ns> <pos> <n>                   n bytes without newline at pos (logged once
 *                                          per position)
 *     SHRINK <t_ns> <old> <new>            the size went below the largest size seen
 *                                          in this session (logged at each drop)
 *     BEHIND <t_ns> <size> <pos>           a new session's size is below the position
 *                                          (logged once; the reader waits)
 *   A record is logged as raw bytes: whatever the file held, minus the newline.
 *
 * STOPPING
 *   After SECS seconds (default 60; 0 = no limit) or on SIGTERM/SIGINT. The
 *   handler only sets a flag (no SA_RESTART), so a sleep or a blocked call
 *   that the kernel can interrupt ends at once and the reader exits 0 without
 *   logging that call. A read that FUSE already handed to a daemon waits for
 *   the daemon's answer whatever the signal (a killed daemon answers at once
 *   with ENOTCONN; a SIGSTOPped one only after SIGCONT).
 *
 * Exit status: 0 normally, 2 on usage errors, 1 on local errors (the log
 * cannot be written, no memory).
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/chaos/tool.h"

#define CHUNK         (1u << 20) /* bytes per pread, and the longest line logged whole */
#define VERIFY_BYTES  4096
#define RID_MAX       999999999u
#define OPEN_RETRY_NS 50000000LL

/* ---- the log ------------------------------------------------------------ */

static int log_fd = -1;
static char *log_buf; /* CHUNK + room for the fields */
#define LOG_BUF_SIZE (CHUNK + 128)

/* Writes log_buf[0..n) with one write() (retried only for the rest), or exits 1. */
static void log_flush(size_t n)
{
    const char *p = log_buf;
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("creader: log write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

static void logf_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(log_buf, LOG_BUF_SIZE, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= LOG_BUF_SIZE) {
        fprintf(stderr, "creader: log line too long\n");
        exit(1);
    }
    log_flush((size_t)n);
}

/* Logs "<kind> <t> <pos> <len> <bytes>\n"; len is the span in the file. */
static void log_record(char kind, int64_t pos, size_t len, const char *rec, size_t reclen)
{
    int n = snprintf(log_buf, LOG_BUF_SIZE, "%c %" PRId64 " %" PRId64 " %zu ", kind, now_ns(), pos,
                     len);
    if (n < 0 || (size_t)n + reclen + 1 > LOG_BUF_SIZE) {
        fprintf(stderr, "creader: log line too long\n");
        exit(1);
    }
    memcpy(log_buf + n, rec, reclen);
    log_buf[(size_t)n + reclen] = '\n';
    log_flush((size_t)n + reclen + 1);
}

/* ---- arguments ---------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: creader -r RID -f FILE -l LOG [-d SECS] [-p POLL_MS]\n");
    exit(2);
}

/* ---- following the file -------------------------------------------------- */

/* What the reader knows; sessions end at a failed fstat or pread. */
struct follower {
    const char *path;
    int fd;              /* -1 between sessions */
    unsigned session;    /* number of the current (or last) session */
    int64_t pos;         /* bytes before it were logged as R lines */
    int64_t max_size;    /* largest size seen in this session */
    int64_t last_size;   /* size at the previous fstat of this session, -1 at first */
    int64_t partial_pos; /* position of the last P line, -1 if none */
    int verify_pending;  /* a new session still owes its V re-read */
    int behind_logged;   /* this session logged BEHIND */
    int64_t deadline;    /* CLOCK_MONOTONIC ns, 0 = none */
    char *buf;           /* CHUNK bytes */
};

static int should_stop(const struct follower *f)
{
    return stop_requested || (f->deadline && mono_ns() >= f->deadline);
}

/* Opens the file, retrying every 50 ms, and starts a session. Returns 0, or
 * -1 when told to stop. */
static int follow_open(struct follower *f)
{
    int logged = 0;
    for (;;) {
        if (should_stop(f))
            return -1;
        int fd = open(f->path, O_RDONLY);
        if (fd >= 0) {
            f->fd = fd;
            f->session++;
            f->max_size = 0;
            f->last_size = -1;
            f->behind_logged = 0;
            f->verify_pending = f->session > 1;
            logf_line("O %" PRId64 " %u\n", now_ns(), f->session);
            return 0;
        }
        if (!logged) {
            logf_line("E %" PRId64 " open %d\n", now_ns(), errno);
            logged = 1;
        }
        sleep_ns(OPEN_RETRY_NS);
    }
}

/* Ends the session after a failed fstat/pread (err = its errno). */
static void follow_fail(struct follower *f, int err)
{
    logf_line("E %" PRId64 " read %d\n", now_ns(), err);
    close(f->fd);
    f->fd = -1;
    sleep_ns(OPEN_RETRY_NS); /* a mount that fails every call must not flood the log */
}

/* preads len bytes at off into f->buf, continuing after short reads (a FUSE
 * read may return less than asked), retrying EINTR unless told to stop.
 * Returns the count (less than len only at the end of the file), or -errno. */
static ssize_t read_at(struct follower *f, size_t len, int64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(f->fd, f->buf + got, len - got, off + (int64_t)got);
        if (n < 0 && errno == EINTR && !stop_requested)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* The verification re-read of a new session: [pos - 4096, pos) as V lines.
 * Returns 0, or -errno of a failed pread. */
static int follow_verify(struct follower *f)
{
    int64_t start = f->pos > VERIFY_BYTES ? f->pos - VERIFY_BYTES : 0;
    ssize_t n = read_at(f, (size_t)(f->pos - start), start);
    if (n < 0)
        return (int)n;
    size_t got = (size_t)n; /* short if the file ends early: the next fstat tells */
    size_t off = 0;
    if (start > 0) { /* the first bytes belong to a line that began before start */
        const char *nl = memchr(f->buf, '\n', got);
        off = nl ? (size_t)(nl - f->buf) + 1 : got;
    }
    while (off < got) {
        const char *nl = memchr(f->buf + off, '\n', got - off);
        size_t reclen = nl ? (size_t)(nl - (f->buf + off)) : got - off;
        size_t span = nl ? reclen + 1 : reclen;
        log_record('V', start + (int64_t)off, span, f->buf + off, reclen);
        off += span;
    }
    return 0;
}

/* One step of a session: fstat, verify if owed, read what is new. Returns 1
 * if it made progress (read again at once), 0 to sleep, -errno on failure. */
static int follow_step(struct follower *f)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return errno == EINTR && stop_requested ? 0 : -errno;
    int64_t size = st.st_size;
    if (size < f->max_size && (f->last_size < 0 || size < f->last_size))
        logf_line("SHRINK %" PRId64 " %" PRId64 " %" PRId64 "\n", now_ns(), f->max_size, size);
    if (size > f->max_size)
        f->max_size = size;
    f->last_size = size;

    if (f->verify_pending) {
        if (size < f->pos) {
            if (!f->behind_logged) {
                logf_line("BEHIND %" PRId64 " %" PRId64 " %" PRId64 "\n", now_ns(), size, f->pos);
                f->behind_logged = 1;
            }
            return 0;
        }
        int rc = follow_verify(f);
        if (rc != 0)
            return stop_requested ? 0 : rc;
        f->verify_pending = 0;
    }
    if (size <= f->pos)
        return 0;

    size_t want = size - f->pos > CHUNK ? CHUNK : (size_t)(size - f->pos);
    ssize_t n = read_at(f, want, f->pos);
    if (n < 0)
        return stop_requested ? 0 : (int)n;
    if (n == 0)
        return 0; /* the size went down meanwhile; the next fstat tells */

    size_t off = 0;
    for (;;) {
        const char *nl = memchr(f->buf + off, '\n', (size_t)n - off);
        if (!nl)
            break;
        size_t reclen = (size_t)(nl - (f->buf + off));
        log_record('R', f->pos, reclen + 1, f->buf + off, reclen);
        f->pos += (int64_t)reclen + 1;
        off += reclen + 1;
    }
    size_t tail = (size_t)n - off;
    if (off == 0 && tail == CHUNK) {
        /* 1 MiB without a newline: not a record; logged as a piece (see top). */
        log_record('R', f->pos, tail, f->buf, tail);
        f->pos += (int64_t)tail;
        return 1;
    }
    if (tail > 0 && f->pos + (int64_t)tail >= size && f->partial_pos != f->pos) {
        logf_line("P %" PRId64 " %" PRId64 " %zu\n", now_ns(), f->pos, tail);
        f->partial_pos = f->pos;
    }
    return off > 0; /* progress: look again at once; a lone tail waits a poll */
}

int main(int argc, char **argv)
{
    uint64_t rid = 0, poll_ms = 20;
    double secs = 60;
    const char *path = NULL, *logpath = NULL;
    int have_rid = 0, opt;

    while ((opt = getopt(argc, argv, "r:f:l:d:p:")) != -1) {
        switch (opt) {
        case 'r':
            if (parse_u64(optarg, RID_MAX, &rid) != 0)
                usage();
            have_rid = 1;
            break;
        case 'f':
            path = optarg;
            break;
        case 'l':
            logpath = optarg;
            break;
        case 'd':
            if (parse_secs(optarg, &secs) != 0)
                usage();
            break;
        case 'p':
            if (parse_u64(optarg, 60000, &poll_ms) != 0 || poll_ms == 0)
                usage();
            break;
        default:
            usage();
        }
    }
    if (optind != argc || !have_rid || !path || !logpath || *path == '\0' ||
        strchr(path, '\n') != NULL)
        usage();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked call may end early */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct follower f = {.path = path, .fd = -1, .partial_pos = -1};
    log_buf = malloc(LOG_BUF_SIZE);
    f.buf = malloc(CHUNK);
    if (!log_buf || !f.buf) {
        perror("creader: malloc");
        return 1;
    }
    log_fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        perror(logpath);
        return 1;
    }
    logf_line("H %" PRIu64 " %s\n", rid, path);
    f.deadline = secs > 0 ? mono_ns() + (int64_t)(secs * 1e9) : 0;

    while (!should_stop(&f)) {
        if (f.fd < 0 && follow_open(&f) != 0)
            break;
        int rc = follow_step(&f);
        if (rc < 0)
            follow_fail(&f, -rc);
        else if (rc == 0 && !stop_requested)
            sleep_ns((int64_t)poll_ms * 1000000);
    }
    if (f.fd >= 0)
        close(f.fd);
    free(f.buf);
    free(log_buf);
    close(log_fd);
    return 0;
}
