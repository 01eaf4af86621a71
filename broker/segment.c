/*
 * segment — a segment of a partition log.
 *
 * DISK FORMAT (all integers little-endian)
 *
 *   NNNNNNNNNNNNNNNNNNNN.log   (N = base offset, %020llu, Kafka style)
 *       Exactly the bytes the partition file shows from position base_pos
 *       on: each record's bytes followed by '\n'.  No headers, no framing,
 *       so a FUSE read is a plain read of this file.
 *
 *   NNNNNNNNNNNNNNNNNNNN.idx
 *       header, 32 bytes:
 *         0  8  magic "mkidx\0\0\1" (the last byte is the format version)
 *         8  8  base offset (must match the file name)
 *        16  8  base position: absolute byte position of the .log's first byte
 *        24  8  salt: random, chosen when the file is created
 *       then one 32-byte entry per record, entry i at 32 + 32*i:
 *         0  8  position: absolute byte position of the record's first byte
 *         8  8  timestamp, ms since the epoch (append time)
 *        16  4  length in the .log, including the '\n'
 *        20  4  flags (0; bit 0 is reserved for "key/headers in .aux")
 *        24  8  check = XXH3_64(entry bytes 0..24, seed = XXH3_64(record bytes, seed = salt))
 *
 *   The check binds the entry to its record bytes and, through the salt, to
 *   this incarnation of the file: stale bytes from an older segment of the
 *   same name never validate.  Offset -> position is one 32-byte read
 *   (O(1)); position -> offset is a binary search over the entries.
 *
 * WRITE ORDER AND DURABILITY
 *   seg_append writes the .log bytes first, then the entries.  The group
 *   commit (partition.c) fdatasyncs the .log before any write() is
 *   acknowledged; the .idx is fdatasynced lazily (plog.c's checkpoint).
 *   seg_create makes the header and the directory entries durable at once.
 *
 * RECOVERY (seg_recover)
 *   Entries from the last checkpoint on are checked in order: position must
 *   continue the previous record, the length must fit in the .log, the last
 *   byte must be '\n' and the check must match.  The first failure ends the
 *   valid prefix.  Beyond it, complete '\n'-terminated lines still present in
 *   the .log (durable data whose entries were not yet flushed, e.g. after a
 *   power cut) get rebuilt entries; a trailing partial line is a torn write
 *   and is cut off.  Both files are then truncated to what is valid.
 *   After kill -9 the page cache holds everything written, so recovery finds
 *   every entry valid and rebuilds nothing but a torn last write.
 */
#include "broker/segment.h"
#include "broker/sysio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <xxhash.h>

static const char seg_magic[8] = {'m', 'k', 'i', 'd', 'x', 0, 0, 1};

/* ---------------------------------------------------------------- encoding */

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t entry_check(const unsigned char *entry, const void *rec, size_t len, uint64_t salt)
{
    uint64_t h = XXH3_64bits_withSeed(rec, len, salt);
    return XXH3_64bits_withSeed(entry, 24, h);
}

static void entry_encode(unsigned char *out, const struct seg_entry *e, const void *rec,
                         uint64_t salt)
{
    put64(out, e->pos);
    put64(out + 8, (uint64_t)e->ts);
    put32(out + 16, e->len);
    put32(out + 20, e->flags);
    put64(out + 24, entry_check(out, rec, e->len, salt));
}

static void entry_decode(const unsigned char *in, struct seg_entry *e)
{
    e->pos = get64(in);
    e->ts = (int64_t)get64(in + 8);
    e->len = get32(in + 16);
    e->flags = get32(in + 20);
}

static int seg_path(char *buf, size_t n, const char *dir, uint64_t base, const char *ext)
{
    if (snprintf(buf, n, "%s/%020" PRIu64 ".%s", dir, base, ext) >= (int)n)
        return -ENAMETOOLONG;
    return 0;
}

int seg_parse_name(const char *name, uint64_t *base_off)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0)
        return -EINVAL;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -EINVAL;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *base_off = v;
    return 0;
}

/* ---------------------------------------------------------- open / create */

/* Clears s (no descriptors) and builds its two paths (PATH_MAX each). */
static int seg_begin(struct segment *s, const char *dir, uint64_t base_off, char *lp, char *ip)
{
    memset(s, 0, sizeof(*s));
    s->log_fd = s->idx_fd = -1;
    int rc = seg_path(lp, PATH_MAX, dir, base_off, "log");
    return rc < 0 ? rc : seg_path(ip, PATH_MAX, dir, base_off, "idx");
}

int seg_create(struct segment *s, const char *dir, uint64_t base_off, uint64_t base_pos)
{
    char lp[PATH_MAX], ip[PATH_MAX];
    int rc = seg_begin(s, dir, base_off, lp, ip);
    if (rc < 0)
        return rc;
    s->base_off = base_off;
    s->base_pos = base_pos;
    s->first_ts = s->last_ts = sys_now_ms();
    if (getrandom(&s->salt, sizeof(s->salt), 0) != (ssize_t)sizeof(s->salt))
        s->salt = (uint64_t)s->first_ts * 0x9e3779b97f4a7c15ull ^ base_off;

    s->log_fd = sysio.open(lp, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (s->log_fd < 0)
        return s->log_fd;
    s->idx_fd = sysio.open(ip, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (s->idx_fd < 0) {
        rc = s->idx_fd;
        goto err_unlink_log;
    }
    unsigned char hdr[SEG_HDR_SIZE];
    memcpy(hdr, seg_magic, 8);
    put64(hdr + 8, base_off);
    put64(hdr + 16, base_pos);
    put64(hdr + 24, s->salt);
    if ((rc = sys_pwrite_all(s->idx_fd, hdr, sizeof(hdr), 0)) < 0 ||
        (rc = sysio.fdatasync(s->idx_fd)) < 0 || (rc = sysio.fdatasync(s->log_fd)) < 0 ||
        (rc = sys_fsync_dir(dir)) < 0)
        goto err_unlink_idx;
    return 0;

err_unlink_idx:
    sysio.close(s->idx_fd);
    sysio.unlink(ip);
err_unlink_log:
    sysio.close(s->log_fd);
    sysio.unlink(lp);
    s->log_fd = s->idx_fd = -1;
    return rc;
}

int seg_open(struct segment *s, const char *dir, uint64_t base_off)
{
    char lp[PATH_MAX], ip[PATH_MAX];
    struct stat st;
    int rc = seg_begin(s, dir, base_off, lp, ip);
    if (rc < 0)
        return rc;
    s->log_fd = sysio.open(lp, O_RDWR, 0);
    if (s->log_fd < 0)
        return s->log_fd;
    s->idx_fd = sysio.open(ip, O_RDWR, 0);
    if (s->idx_fd < 0) {
        rc = s->idx_fd;
        goto err_close;
    }
    unsigned char hdr[SEG_HDR_SIZE];
    rc = sys_pread_all(s->idx_fd, hdr, sizeof(hdr), 0);
    if (rc < 0) {
        rc = -EBADMSG;
        goto err_close;
    }
    if (memcmp(hdr, seg_magic, 8) != 0 || get64(hdr + 8) != base_off) {
        rc = -EBADMSG;
        goto err_close;
    }
    s->base_off = base_off;
    s->base_pos = get64(hdr + 16);
    s->salt = get64(hdr + 24);

    if (fstat(s->idx_fd, &st) < 0) {
        rc = -errno;
        goto err_close;
    }
    s->count = ((uint64_t)st.st_size - SEG_HDR_SIZE) / SEG_ENTRY_SIZE;
    if (fstat(s->log_fd, &st) < 0) {
        rc = -errno;
        goto err_close;
    }
    s->bytes = (uint64_t)st.st_size;
    s->first_ts = s->last_ts = (int64_t)st.st_mtim.tv_sec * 1000;
    if (s->count > 0) {
        struct seg_entry e;
        if ((rc = seg_entry(s, 0, &e)) < 0)
            goto err_close;
        s->first_ts = e.ts;
        if ((rc = seg_entry(s, s->count - 1, &e)) < 0)
            goto err_close;
        s->last_ts = e.ts;
    }
    return 0;

err_close:
    seg_close(s);
    return rc;
}

/* ---------------------------------------------------------------- recovery */

/* Reads .log bytes [off, off+len) into buf, growing it as needed. */
static int read_log(const struct segment *s, uint64_t off, uint32_t len, char **buf, size_t *cap)
{
    if (len > *cap) {
        char *nb = realloc(*buf, len);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = len;
    }
    return sys_pread_all(s->log_fd, *buf, len, (off_t)off);
}

int seg_recover(struct segment *s, uint64_t from, int64_t rebuild_ts, uint64_t *verified,
                uint64_t *rebuilt)
{
    enum { BATCH = 1024 };
    unsigned char *ent = malloc((size_t)BATCH * SEG_ENTRY_SIZE);
    char *rec = NULL;
    size_t cap = 0;
    uint64_t nver = 0, nreb = 0;
    int rc = 0;
    if (!ent)
        return -ENOMEM;
    if (from > s->count)
        from = s->count;

    /* Where the record at `from` must start. */
    uint64_t expect = s->base_pos;
    if (from > 0) {
        struct seg_entry prev;
        if ((rc = seg_entry(s, from - 1, &prev)) < 0)
            goto out;
        expect = prev.pos + prev.len;
        if (expect < s->base_pos || expect - s->base_pos > s->bytes) {
            /* The checkpoint itself is not backed by the .log: start over. */
            from = 0;
            expect = s->base_pos;
        }
    }

    uint64_t i = from;
    while (i < s->count) {
        uint64_t n = s->count - i < BATCH ? s->count - i : BATCH;
        rc = sys_pread_all(s->idx_fd, ent, n * SEG_ENTRY_SIZE,
                           (off_t)(SEG_HDR_SIZE + i * SEG_ENTRY_SIZE));
        if (rc < 0)
            goto out;
        uint64_t j;
        for (j = 0; j < n; j++) {
            const unsigned char *p = ent + j * SEG_ENTRY_SIZE;
            struct seg_entry e;
            entry_decode(p, &e);
            if (e.pos != expect || e.len == 0 || e.len > s->bytes - (expect - s->base_pos))
                break;
            if (read_log(s, e.pos - s->base_pos, e.len, &rec, &cap) < 0)
                break;
            if (rec[e.len - 1] != '\n' || entry_check(p, rec, e.len, s->salt) != get64(p + 24))
                break;
            expect += e.len;
            nver++;
        }
        i += j;
        if (j < n)
            break;
    }
    s->count = i;

    /* Complete lines in the .log beyond the valid entries get entries. */
    uint64_t log_valid = expect - s->base_pos;
    uint64_t scan = log_valid;
    enum { CHUNK = 1 << 20 };
    char *chunk = malloc(CHUNK);
    if (!chunk) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t line_start = scan;
    while (scan < s->bytes) {
        size_t want = s->bytes - scan < CHUNK ? (size_t)(s->bytes - scan) : CHUNK;
        if ((rc = sys_pread_all(s->log_fd, chunk, want, (off_t)scan)) < 0)
            break;
        for (size_t k = 0; k < want; k++) {
            if (chunk[k] != '\n')
                continue;
            uint64_t end = scan + k + 1;
            uint64_t len64 = end - line_start;
            if (len64 > UINT32_MAX) {
                scan = s->bytes; /* absurd line: treat the rest as torn */
                goto scanned;
            }
            uint32_t len = (uint32_t)len64;
            struct seg_entry e = {.pos = s->base_pos + line_start, .ts = rebuild_ts, .len = len};
            unsigned char out[SEG_ENTRY_SIZE];
            if ((rc = read_log(s, line_start, len, &rec, &cap)) < 0)
                goto scanned;
            entry_encode(out, &e, rec, s->salt);
            rc = sys_pwrite_all(s->idx_fd, out, sizeof(out),
                                (off_t)(SEG_HDR_SIZE + s->count * SEG_ENTRY_SIZE));
            if (rc < 0)
                goto scanned;
            s->count++;
            nreb++;
            line_start = end;
            log_valid = end;
        }
        scan += want;
    }
scanned:
    free(chunk);
    if (rc < 0)
        goto out;

    /* Cut what is not valid: torn entries and a torn last line. */
    if ((rc = sysio.ftruncate(s->idx_fd, (off_t)(SEG_HDR_SIZE + s->count * SEG_ENTRY_SIZE))) < 0)
        goto out;
    if (log_valid != s->bytes) {
        if ((rc = sysio.ftruncate(s->log_fd, (off_t)log_valid)) < 0)
            goto out;
        s->bytes = log_valid;
    }
    if (nreb > 0 || s->count > from) {
        struct seg_entry e;
        if (s->count > 0 && (rc = seg_entry(s, s->count - 1, &e)) == 0)
            s->last_ts = e.ts;
        if (s->count > 0 && (rc = seg_entry(s, 0, &e)) == 0)
            s->first_ts = e.ts;
    }
out:
    free(ent);
    free(rec);
    if (verified)
        *verified = nver;
    if (rebuilt)
        *rebuilt = nreb;
    return rc;
}

/* ------------------------------------------------------------------ append */

int seg_append(struct segment *s, const struct iovec *iov, int iovcnt, const uint32_t *lens,
               size_t n, int64_t ts)
{
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += lens[k];
    unsigned char *ent = malloc(n * SEG_ENTRY_SIZE);
    char *scratch = NULL;
    int rc = 0;
    if (!ent)
        return -ENOMEM;

    /* Walk the records across the iov pieces; a record that spans two
     * pieces (a held partial line + the new bytes) is copied once. */
    int vi = 0;
    size_t voff = 0;
    uint64_t pos = s->base_pos + s->bytes;
    for (size_t k = 0; k < n; k++) {
        size_t len = lens[k];
        while (vi < iovcnt && voff == iov[vi].iov_len) {
            vi++;
            voff = 0;
        }
        if (vi >= iovcnt) {
            rc = -EINVAL;
            goto out;
        }
        const char *rec;
        if (iov[vi].iov_len - voff >= len) {
            rec = (const char *)iov[vi].iov_base + voff;
            voff += len;
        } else {
            char *ns = realloc(scratch, len);
            if (!ns) {
                rc = -ENOMEM;
                goto out;
            }
            scratch = ns;
            size_t got = 0;
            while (got < len) {
                if (vi >= iovcnt) {
                    rc = -EINVAL;
                    goto out;
                }
                size_t take = iov[vi].iov_len - voff;
                if (take > len - got)
                    take = len - got;
                memcpy(scratch + got, (const char *)iov[vi].iov_base + voff, take);
                got += take;
                voff += take;
                if (voff == iov[vi].iov_len) {
                    vi++;
                    voff = 0;
                }
            }
            rec = scratch;
        }
        struct seg_entry e = {.pos = pos, .ts = ts, .len = (uint32_t)len, .flags = 0};
        entry_encode(ent + k * SEG_ENTRY_SIZE, &e, rec, s->salt);
        pos += len;
    }

    rc = sys_pwritev_all(s->log_fd, iov, iovcnt, (off_t)s->bytes);
    if (rc == 0)
        rc = sys_pwrite_all(s->idx_fd, ent, n * SEG_ENTRY_SIZE,
                            (off_t)(SEG_HDR_SIZE + s->count * SEG_ENTRY_SIZE));
    if (rc < 0) {
        /* Undo a partial append so the files end where the segment does. */
        sysio.ftruncate(s->log_fd, (off_t)s->bytes);
        sysio.ftruncate(s->idx_fd, (off_t)(SEG_HDR_SIZE + s->count * SEG_ENTRY_SIZE));
        goto out;
    }
    if (s->count == 0)
        s->first_ts = ts;
    s->count += n;
    s->bytes += total;
    s->last_ts = ts;
out:
    free(ent);
    free(scratch);
    return rc;
}

/* ------------------------------------------------------------------ lookup */

int seg_entry(const struct segment *s, uint64_t i, struct seg_entry *e)
{
    unsigned char buf[SEG_ENTRY_SIZE];
    if (i >= s->count)
        return -ERANGE;
    int rc = sys_pread_all(s->idx_fd, buf, sizeof(buf), (off_t)(SEG_HDR_SIZE + i * SEG_ENTRY_SIZE));
    if (rc < 0)
        return rc;
    entry_decode(buf, e);
    return 0;
}

int seg_find_pos(const struct segment *s, uint64_t pos, uint64_t *index)
{
    if (s->count == 0 || pos < s->base_pos || pos >= s->base_pos + s->bytes)
        return -ERANGE;
    uint64_t lo = 0, hi = s->count - 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        struct seg_entry e;
        int rc = seg_entry(s, mid, &e);
        if (rc < 0)
            return rc;
        if (e.pos <= pos)
            lo = mid;
        else
            hi = mid - 1;
    }
    *index = lo;
    return 0;
}

int seg_truncate(struct segment *s, uint64_t count)
{
    if (count >= s->count)
        return 0;
    uint64_t bytes = 0;
    if (count > 0) {
        struct seg_entry e;
        int rc = seg_entry(s, count - 1, &e);
        if (rc < 0)
            return rc;
        bytes = e.pos + e.len - s->base_pos;
    }
    int rc = sysio.ftruncate(s->idx_fd, (off_t)(SEG_HDR_SIZE + count * SEG_ENTRY_SIZE));
    if (rc == 0)
        rc = sysio.ftruncate(s->log_fd, (off_t)bytes);
    if (rc < 0)
        return rc;
    s->count = count;
    s->bytes = bytes;
    if (count > 0) {
        struct seg_entry e;
        if (seg_entry(s, count - 1, &e) == 0)
            s->last_ts = e.ts;
    }
    return 0;
}

int seg_sync(const struct segment *s, bool with_index)
{
    int rc = sysio.fdatasync(s->log_fd);
    if (rc == 0 && with_index)
        rc = sysio.fdatasync(s->idx_fd);
    return rc;
}

void seg_close(struct segment *s)
{
    if (s->log_fd >= 0)
        sysio.close(s->log_fd);
    if (s->idx_fd >= 0)
        sysio.close(s->idx_fd);
    s->log_fd = s->idx_fd = -1;
}

int seg_remove(struct segment *s, const char *dir)
{
    char lp[PATH_MAX], ip[PATH_MAX];
    uint64_t base = s->base_off;
    seg_close(s);
    int rc = seg_path(lp, sizeof(lp), dir, base, "log");
    if (rc == 0)
        rc = seg_path(ip, sizeof(ip), dir, base, "idx");
    if (rc < 0)
        return rc;
    /* The .idx goes first: a .log without .idx is recognisable leftovers. */
    int r1 = sysio.unlink(ip);
    int r2 = sysio.unlink(lp);
    return r1 < 0 ? r1 : r2;
}
