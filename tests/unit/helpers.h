/*
 * helpers — small file utilities shared by the unit tests: a temporary
 * directory per test, file sizes, byte flips and raw appends that model what
 * a crash or a bad disk leaves behind.  Everything aborts the test (cr_assert)
 * on an unexpected failure, so tests read as the contract and not as error
 * handling.
 */
#ifndef MK_TEST_HELPERS_H
#define MK_TEST_HELPERS_H

#include "broker/segment.h"
#include "broker/sysio.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

/* A fresh directory under /tmp; the caller frees it (th_rmdir does). */
static inline char *th_mkdtemp(void)
{
    char tmpl[] = "/tmp/mk-unit-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
    char *d = strdup(tmpl);
    cr_assert_not_null(d);
    return d;
}

/* Removes the tree and frees the name; restores the real system calls first
 * so that a test's injected failures cannot leave files behind. */
static inline void th_rmdir(char *dir)
{
    sysio_reset();
    if (dir) {
        sys_remove_tree(dir);
        free(dir);
    }
}

/* snprintf into a PATH_MAX buffer, asserting it fits. */
static inline const char *th_path(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, PATH_MAX, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && n < PATH_MAX);
    return buf;
}

static inline bool th_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Size of a file; -1 when it does not exist. */
static inline long long th_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Path of segment `base`'s .log or .idx in dir. */
static inline const char *th_seg_path(char *buf, const char *dir, uint64_t base, const char *ext)
{
    return th_path(buf, "%s/%020" PRIu64 ".%s", dir, base, ext);
}

/* XORs the byte at off with 0x20 (a letter changes case; '\n' becomes '*'). */
static inline void th_flip(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, off), 1);
    c ^= 0x20;
    cr_assert_eq(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* A base port such that base+1 .. base+n on 127.0.0.1 are free now, below
 * the ephemeral range (tests run in parallel, next to other tools). */
static inline uint16_t th_free_ports(int n)
{
    for (int tries = 0; tries < 500; tries++) {
        uint16_t base = (uint16_t)(12000 + ((getpid() + tries * 7919) % 1900) * 10);
        bool ok = true;
        for (int k = 1; k <= n && ok; k++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base + k))};
            inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
            ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
            close(fd);
        }
        if (ok)
            return base;
    }
    cr_assert_fail("no %d free ports found", n);
    return 0;
}

/* Reads the first n bytes of a file. */
static inline void th_read(const char *path, void *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(pread(fd, buf, n, 0), (ssize_t)n);
    close(fd);
}

static inline void th_truncate(const char *path, off_t len)
{
    cr_assert_eq(truncate(path, len), 0, "truncate %s: %s", path, strerror(errno));
}

/* Appends raw bytes to a file (creating it), as a torn or unindexed write. */
static inline void th_append_raw(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Reads a whole file into a malloc'ed NUL-terminated buffer. */
static inline char *th_slurp(const char *path, size_t *len)
{
    char *buf;
    size_t n;
    int rc = sys_read_small(path, 64 << 20, &buf, &n);
    cr_assert_eq(rc, 0, "read %s: %s", path, strerror(-rc));
    if (len)
        *len = n;
    return buf;
}

/* Lengths (each including its '\n') of the lines of text, which must end with
 * '\n'.  Returns the number of lines (at most max). */
static inline size_t th_lens(const char *text, size_t len, uint32_t *lens, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            cr_assert(n < max);
            lens[n++] = (uint32_t)(i + 1 - start);
            start = i + 1;
        }
    }
    cr_assert_eq(start, len, "text must end with a newline");
    return n;
}

/* Reads n bytes at off of fd. */
static inline void th_pread(int fd, void *buf, size_t n, uint64_t off)
{
    cr_assert_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
}

/* Writes dir/%020llu.{log,idx} in index format 1 (32-byte entries, no .aux),
 * as the previous release wrote them. */
static inline void th_write_v1_segment(const char *dir, uint64_t base, uint64_t base_pos,
                                       const char *text)
{
    char lp[PATH_MAX], ip[PATH_MAX];
    th_seg_path(lp, dir, base, "log");
    th_seg_path(ip, dir, base, "idx");
    unsigned char hdr[SEG_HDR_SIZE] = {'m', 'k', 'i', 'd', 'x', 0, 0, 1};
    uint64_t salt = 0x1234;
    memcpy(hdr + 8, &base, 8);
    uint64_t pos = base_pos;
    memcpy(hdr + 16, &pos, 8);
    memcpy(hdr + 24, &salt, 8);
    th_append_raw(ip, hdr, sizeof(hdr));
    th_append_raw(lp, text, strlen(text));
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        uint32_t len = (uint32_t)(nl - p + 1), flags = 0;
        int64_t ts = 42;
        unsigned char ent[SEG_ENTRY_SIZE_V1];
        memcpy(ent, &pos, 8);
        memcpy(ent + 8, &ts, 8);
        memcpy(ent + 16, &len, 4);
        memcpy(ent + 20, &flags, 4);
        uint64_t check = XXH3_64bits_withSeed(ent, 24, XXH3_64bits_withSeed(p, len, salt));
        memcpy(ent + 24, &check, 8);
        th_append_raw(ip, ent, sizeof(ent));
        pos += len;
        p = nl + 1;
    }
}

/* Runs `loop` (without blocking, a millisecond between turns) until cond
 * holds; fails the test after secs seconds, naming the condition. */
#define TH_RUN_UNTIL(loop, secs, cond)                                                             \
    do {                                                                                           \
        uint64_t deadline_ = uv_hrtime() + (uint64_t)(secs)*1000000000ull;                         \
        while (!(cond)) {                                                                          \
            cr_assert(uv_hrtime() < deadline_, "timed out waiting for: %s", #cond);                \
            uv_run((loop), UV_RUN_NOWAIT);                                                         \
            usleep(1000);                                                                          \
        }                                                                                          \
    } while (0)

#endif
