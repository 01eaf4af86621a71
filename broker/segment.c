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
 *   NNNNNNNNNNNNNNNNNNNN.aux   (format 2)
 *       Side data of entries, concatenated in entry order, no framing: what
 *       the partition file does not show (a Raft configuration; later a Kafka
 *       record's key, headers, producer id and sequence).  Each entry names
 *       its range.
 *
 *   NNNNNNNNNNNNNNNNNNNN.idx
 *       header, 32 bytes:
 *         0  8  magic "mkidx\0FV" (V, the last byte, is the format: 1 or 2;
 *               F the flags: bit 0 "indexed", never rebuilt from lines)
 *         8  8  base offset (must match the file name)
 *        16  8  base position: absolute byte position of the .log's first byte
 *        24  8  salt: random, chosen when the file is created
 *       then one entry per offset, entry i at 32 + E*i.  Format 2 (E = 48):
 *         0  8  position: absolute byte position of the record's first byte
 *               (an entry that is not a record: where the next record starts)
 *         8  8  timestamp, ms since the epoch (append time)
 *        16  4  length in the .log, including the '\n' (0 if not a record)
 *        20  4  flags: bits 0-1 the kind (record, NOOP, CONF, control),
 *               bit 2 "has side data"; other bits 0
 *        24  8  aux offset: size of the .aux before this entry's side data
 *        32  4  aux length (0 without side data)
 *        36  4  0
 *        40  8  check = XXH3_64(entry bytes 0..40,
 *                              seed = XXH3_64(record bytes ++ side data, seed = salt))
 *       Format 1 (E = 32, segments written before format 2): position,
 *       timestamp, length and flags (0) as above, then at 24 the check
 *       XXH3_64(entry bytes 0..24, seed = XXH3_64(record bytes, seed = salt)).
 *       Format 1 segments stay as they are (records only); every segment
 *       created now is format 2.
 *
 *   The check binds the entry to its record bytes and side data and, through
 *   the salt, to this incarnation of the file: stale bytes from an older
 *   segment of the same name never validate.  Offset -> position is one
 *   entry read (O(1)); position -> offset is a binary search over the
 *   entries.  Entries that are not records take an offset but no bytes, so
 *   record positions are the same whatever else the log holds.
 *
 * WRITE ORDER AND DURABILITY
 *   seg_append writes the .log bytes first, then the side data, then the
 *   entries.  seg_create creates the .log and .aux before the .idx.  The group
 *   commit (partition.c) fdatasyncs the .log before any write() is
 *   acknowledged; the .idx is fdatasynced lazily (plog.c's checkpoint),
 *   except in an indexed segment, where .log, .aux and .idx are all synced
 *   before an acknowledgement (its records cannot be rebuilt from lines).
 *   seg_create makes the header and the directory entries durable at once.
 *
 * RECOVERY (seg_recover)
 *   Entries from the last checkpoint on are checked in order: position must
 *   continue the previous record and the aux offset the previous side data,
 *   the length must fit in the .log (0 exactly for entries that are not
 *   records) and the side data in the .aux, a record's last byte must be
 *   '\n' and the check must match.  The first failure ends the
 *   valid prefix.  Beyond it, complete '\n'-terminated lines still present in
 *   the .log (durable data whose entries were not yet flushed, e.g. after a
 *   power cut) get rebuilt entries (not in an indexed segment, nor in a Raft
 *   log: there, what has no valid entry was never acknowledged and goes);
 *   a trailing partial line is a torn write and is cut off.  Both files are then truncated to what is valid.
 *   After kill -9 the page cache holds everything written, so recovery finds
 *   every entry valid and rebuilds nothing but a torn last write.
 */
#include "broker/le.h"
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
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

static const char seg_magic[6] = {'m', 'k', 'i', 'd', 'x', 0}; /* + flags, version */
#define SEG_HDR_INDEXED 1u /* header byte 6 */

/* ---------------------------------------------------------------- encoding */

/* The check of an entry (see the format above); `eb` is the encoded entry. */
static uint64_t entry_check(const struct segment *s, const unsigned char *eb, const void *rec,
                            size_t len, const void *aux, size_t aux_len)
{
    if (s->version == 1) {
        uint64_t h = XXH3_64bits_withSeed(len ? rec : "", len, s->salt);
        return XXH3_64bits_withSeed(eb, 24, h);
    }
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset_withSeed(&st, s->salt);
    XXH3_64bits_update(&st, len ? rec : "", len);
    XXH3_64bits_update(&st, aux_len ? aux : "", aux_len);
    return XXH3_64bits_withSeed(eb, 40, XXH3_64bits_digest(&st));
}

/* Where the check sits in an encoded entry. */
static size_t check_at(const struct segment *s)
{
    return s->version == 1 ? 24 : 40;
}

static void entry_encode(const struct segment *s, unsigned char *out, const struct seg_entry *e,
                         const void *rec, const void *aux)
{
    memset(out, 0, s->esize);
    le_put64(out, e->pos);
    le_put64(out + 8, (uint64_t)e->ts);
    le_put32(out + 16, e->len);
    le_put32(out + 20, e->flags);
    if (s->version >= 2) {
        le_put64(out + 24, e->aux_off);
        le_put32(out + 32, e->aux_len);
    }
    le_put64(out + check_at(s), entry_check(s, out, rec, e->len, aux, e->aux_len));
}

static void entry_decode(const struct segment *s, const unsigned char *in, struct seg_entry *e)
{
    e->pos = le_get64(in);
    e->ts = (int64_t)le_get64(in + 8);
    e->len = le_get32(in + 16);
    e->flags = le_get32(in + 20);
    e->aux_off = s->version >= 2 ? le_get64(in + 24) : 0;
    e->aux_len = s->version >= 2 ? le_get32(in + 32) : 0;
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

/* Offset of entry i in the .idx. */
static off_t idx_at(const struct segment *s, uint64_t i)
{
    return (off_t)(SEG_HDR_SIZE + i * s->esize);
}

/* Clears s (no descriptors) and builds its paths (PATH_MAX each). */
static int seg_begin(struct segment *s, const char *dir, uint64_t base_off, char *lp, char *ip,
                     char *ap)
{
    memset(s, 0, sizeof(*s));
    s->log_fd = s->idx_fd = s->aux_fd = -1;
    int rc = seg_path(lp, PATH_MAX, dir, base_off, "log");
    if (rc == 0)
        rc = seg_path(ap, PATH_MAX, dir, base_off, "aux");
    return rc < 0 ? rc : seg_path(ip, PATH_MAX, dir, base_off, "idx");
}

/* See seg_sync_defer. */
static bool sync_deferred;

void seg_sync_defer(bool on)
{
    sync_deferred = on;
}

int seg_create(struct segment *s, const char *dir, uint64_t base_off, uint64_t base_pos,
               bool indexed)
{
    char lp[PATH_MAX], ip[PATH_MAX], ap[PATH_MAX];
    int rc = seg_begin(s, dir, base_off, lp, ip, ap);
    if (rc < 0)
        return rc;
    s->base_off = base_off;
    s->base_pos = base_pos;
    s->vend = base_pos;
    s->version = 2;
    s->esize = SEG_ENTRY_SIZE;
    s->indexed = indexed;
    s->first_ts = s->last_ts = sys_now_ms();
    if (getrandom(&s->salt, sizeof(s->salt), 0) != (ssize_t)sizeof(s->salt))
        s->salt = (uint64_t)s->first_ts * 0x9e3779b97f4a7c15ull ^ base_off;

    s->log_fd = sysio.open(lp, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (s->log_fd < 0)
        return s->log_fd;
    s->aux_fd = sysio.open(ap, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (s->aux_fd < 0) {
        rc = s->aux_fd;
        goto err_unlink_log;
    }
    s->idx_fd = sysio.open(ip, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (s->idx_fd < 0) {
        rc = s->idx_fd;
        goto err_unlink_aux;
    }
    unsigned char hdr[SEG_HDR_SIZE];
    memcpy(hdr, seg_magic, 6);
    hdr[6] = indexed ? SEG_HDR_INDEXED : 0;
    hdr[7] = s->version;
    le_put64(hdr + 8, base_off);
    le_put64(hdr + 16, base_pos);
    le_put64(hdr + 24, s->salt);
    if ((rc = sys_pwrite_all(s->idx_fd, hdr, sizeof(hdr), 0)) < 0)
        goto err_unlink_idx;
    if (!sync_deferred &&
        ((rc = sysio.fdatasync(s->idx_fd)) < 0 || (rc = sysio.fdatasync(s->aux_fd)) < 0 ||
         (rc = sysio.fdatasync(s->log_fd)) < 0 || (rc = sys_fsync_dir(dir)) < 0))
        goto err_unlink_idx;
    return 0;

err_unlink_idx:
    sysio.close(s->idx_fd);
    sysio.unlink(ip);
err_unlink_aux:
    sysio.close(s->aux_fd);
    sysio.unlink(ap);
err_unlink_log:
    sysio.close(s->log_fd);
    sysio.unlink(lp);
    s->log_fd = s->idx_fd = s->aux_fd = -1;
    return rc;
}

int seg_open(struct segment *s, const char *dir, uint64_t base_off)
{
    char lp[PATH_MAX], ip[PATH_MAX], ap[PATH_MAX];
    struct stat st;
    int rc = seg_begin(s, dir, base_off, lp, ip, ap);
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
    if (memcmp(hdr, seg_magic, 6) != 0 || (hdr[6] & ~SEG_HDR_INDEXED) ||
        (hdr[7] != 1 && hdr[7] != 2) || (hdr[7] == 1 && hdr[6]) ||
        le_get64(hdr + 8) != base_off) {
        rc = -EBADMSG;
        goto err_close;
    }
    s->version = hdr[7];
    s->indexed = hdr[6] & SEG_HDR_INDEXED;
    s->esize = s->version == 1 ? SEG_ENTRY_SIZE_V1 : SEG_ENTRY_SIZE;
    s->base_off = base_off;
    s->base_pos = le_get64(hdr + 16);
    s->vend = s->base_pos; /* nothing checked yet */
    s->salt = le_get64(hdr + 24);
    if (s->version >= 2) {
        /* Made before the .idx: a format 2 .idx without it is damage. */
        s->aux_fd = sysio.open(ap, O_RDWR, 0);
        if (s->aux_fd < 0) {
            rc = s->aux_fd == -ENOENT ? -EBADMSG : s->aux_fd;
            goto err_close;
        }
        if (fstat(s->aux_fd, &st) < 0) {
            rc = -errno;
            goto err_close;
        }
        s->aux_bytes = (uint64_t)st.st_size;
    }

    if (fstat(s->idx_fd, &st) < 0) {
        rc = -errno;
        goto err_close;
    }
    s->count = ((uint64_t)st.st_size - SEG_HDR_SIZE) / s->esize;
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

int seg_upgrade(struct segment *s, const char *dir)
{
    if (s->version != 1 || s->count != 0 || s->bytes != 0)
        return -EINVAL;
    char ap[PATH_MAX];
    int rc = seg_path(ap, sizeof(ap), dir, s->base_off, "aux");
    if (rc < 0)
        return rc;
    int fd = sysio.open(ap, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    unsigned char v = 2;
    if ((rc = sysio.fdatasync(fd)) < 0 || (rc = sys_fsync_dir(dir)) < 0 ||
        (rc = sys_pwrite_all(s->idx_fd, &v, 1, 7)) < 0 || (rc = sysio.fdatasync(s->idx_fd)) < 0) {
        sysio.close(fd);
        return rc;
    }
    s->aux_fd = fd;
    s->aux_bytes = 0;
    s->version = 2;
    s->esize = SEG_ENTRY_SIZE;
    return 0;
}

int seg_set_indexed(struct segment *s)
{
    if (s->version < 2 || s->count != 0 || s->bytes != 0)
        return -EINVAL;
    if (s->indexed)
        return 0;
    unsigned char f = SEG_HDR_INDEXED;
    int rc = sys_pwrite_all(s->idx_fd, &f, 1, 6);
    if (rc == 0)
        rc = sysio.fdatasync(s->idx_fd);
    if (rc == 0)
        s->indexed = true;
    return rc;
}

/* ---------------------------------------------------------------- recovery */

/* Reads len bytes at off of fd into buf, growing it as needed. */
static int read_into(int fd, uint64_t off, uint32_t len, char **buf, size_t *cap)
{
    if (len > *cap) {
        char *nb = realloc(*buf, len);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = len;
    }
    return len ? sys_pread_all(fd, *buf, len, (off_t)off) : 0;
}

/* Whether entry e (encoded at p), which fits (entry_fits), matches its
 * record bytes rec and side data side. */
static bool entry_ok(const struct segment *s, const unsigned char *p, const struct seg_entry *e,
                     const char *rec, const char *side)
{
    bool record = seg_kind_of(e) == SEG_RECORD;
    if (record && rec[e->len - 1] != '\n')
        return false;
    return entry_check(s, p, rec, e->len, side, e->aux_len) == le_get64(p + check_at(s));
}

/* Whether e's fields fit where the previous entry ended and in the files. */
static bool entry_fits(const struct segment *s, const struct seg_entry *e, uint64_t expect,
                       uint64_t aux)
{
    bool record = seg_kind_of(e) == SEG_RECORD;
    if (e->pos != expect || (record ? e->len == 0 : e->len != 0) || expect < s->base_pos ||
        expect - s->base_pos > s->bytes || e->len > s->bytes - (expect - s->base_pos))
        return false;
    if (s->version >= 2 &&
        (e->aux_off != aux || aux > s->aux_bytes || e->aux_len > s->aux_bytes - aux ||
         (e->flags & ~(SEG_KIND_MASK | SEG_FLAG_AUX)) || !(e->flags & SEG_FLAG_AUX) != !e->aux_len))
        return false;
    if (s->version == 1 && e->flags != 0)
        return false;
    return true;
}

/* Whether entry e (encoded at p) is valid where the previous one ended
 * (expect: byte position, aux: .aux size). */
static bool entry_valid(const struct segment *s, const unsigned char *p, const struct seg_entry *e,
                        uint64_t expect, uint64_t aux, char **rec, size_t *rcap, char **side,
                        size_t *scap)
{
    if (!entry_fits(s, e, expect, aux))
        return false;
    if (read_into(s->log_fd, e->pos - s->base_pos, e->len, rec, rcap) < 0 ||
        (e->aux_len && read_into(s->aux_fd, e->aux_off, e->aux_len, side, scap) < 0))
        return false;
    return entry_ok(s, p, e, *rec, *side);
}

int seg_verify(struct segment *s, uint64_t lo, uint64_t hi, uint64_t *bad)
{
    enum { BATCH = 256, SPAN_MAX = 8u << 20 };
    if (hi > s->count)
        hi = s->count;
    if (hi <= s->vcount || lo >= hi)
        return 0;
    bool onward = lo <= s->vcount; /* continues the checked prefix */
    uint64_t i = onward ? s->vcount : lo, expect = s->vend, aux = s->vaux;
    unsigned char *ent = malloc((size_t)BATCH * s->esize);
    char *rec = NULL, *side = NULL;
    size_t rcap = 0, scap = 0;
    int rc = ent ? 0 : -ENOMEM;
    bool first = true;
    while (rc == 0 && i < hi) {
        uint64_t n = hi - i < BATCH ? hi - i : BATCH;
        if ((rc = sys_pread_all(s->idx_fd, ent, n * s->esize, idx_at(s, i))) < 0)
            break;
        struct seg_entry e[BATCH];
        for (uint64_t j = 0; j < n; j++)
            entry_decode(s, ent + j * s->esize, &e[j]);
        if (first && !onward) {
            /* A check from the middle: the first entry sets the chain. */
            expect = e[0].pos;
            aux = e[0].aux_off;
        }
        first = false;
        /* The batch's bytes and side data in one read each when they fit. */
        uint64_t span = 0, aspan = 0;
        uint64_t ex = expect, ax = aux, k;
        for (k = 0; k < n; k++) {
            if (!entry_fits(s, &e[k], ex, ax))
                break;
            ex += e[k].len;
            ax += e[k].aux_len;
        }
        span = ex - expect;
        aspan = ax - aux;
        if (k == 0) {
            *bad = i;
            rc = -EBADMSG;
            break;
        }
        bool whole = span <= SPAN_MAX && aspan <= SPAN_MAX;
        if (whole && (read_into(s->log_fd, expect - s->base_pos, (uint32_t)span, &rec, &rcap) < 0 ||
                      (aspan && read_into(s->aux_fd, aux, (uint32_t)aspan, &side, &scap) < 0)))
            whole = false; /* a file shorter than the index: entry by entry finds where */
        uint64_t at = 0, aat = 0;
        for (uint64_t j = 0; j < k; j++) {
            bool ok = whole ? entry_ok(s, ent + j * s->esize, &e[j], rec ? rec + at : "", side ? side + aat : NULL)
                            : entry_valid(s, ent + j * s->esize, &e[j], expect, aux, &rec, &rcap,
                                          &side, &scap);
            if (!ok) {
                *bad = i + j;
                rc = -EBADMSG;
                break;
            }
            at += e[j].len;
            aat += e[j].aux_len;
            expect += e[j].len;
            aux += e[j].aux_len;
            if (onward) {
                s->vcount = i + j + 1;
                s->vend = expect;
                s->vaux = aux;
            }
        }
        if (rc < 0)
            break;
        i += k;
        if (k < n) {
            *bad = i;
            rc = -EBADMSG;
        }
    }
    free(ent);
    free(rec);
    free(side);
    return rc;
}

int seg_repair(struct segment *s, uint64_t i, const struct seg_entry *e, const void *rec,
               const void *aux)
{
    if (i >= s->count || e->pos < s->base_pos || (s->version < 2 && e->aux_len))
        return -EINVAL;
    unsigned char out[SEG_ENTRY_SIZE];
    entry_encode(s, out, e, rec, aux);
    int rc = 0;
    if (e->len)
        rc = sys_pwrite_all(s->log_fd, rec, e->len, (off_t)(e->pos - s->base_pos));
    if (rc == 0 && e->aux_len)
        rc = sys_pwrite_all(s->aux_fd, aux, e->aux_len, (off_t)e->aux_off);
    if (rc == 0)
        rc = sys_pwrite_all(s->idx_fd, out, s->esize, idx_at(s, i));
    if (rc == 0) {
        /* A file cut short grows back to what the index says. */
        uint64_t end = e->pos + e->len - s->base_pos;
        if (end > s->bytes)
            s->bytes = end;
        if (e->aux_len && e->aux_off + e->aux_len > s->aux_bytes)
            s->aux_bytes = e->aux_off + e->aux_len;
    }
    return rc;
}

int seg_recover(struct segment *s, uint64_t from, bool rebuild, int64_t rebuild_ts,
                uint64_t *verified, uint64_t *rebuilt)
{
    enum { BATCH = 1024 };
    unsigned char *ent = malloc((size_t)BATCH * s->esize);
    char *rec = NULL, *side = NULL;
    size_t cap = 0, scap = 0;
    uint64_t nver = 0, nreb = 0;
    int rc = 0;
    if (!ent)
        return -ENOMEM;
    if (from > s->count)
        from = s->count;

    /* Where the entry at `from` must start, in the .log and in the .aux. */
    uint64_t expect = s->base_pos, aux = 0;
    if (from > 0) {
        struct seg_entry prev;
        if ((rc = seg_entry(s, from - 1, &prev)) < 0)
            goto out;
        expect = prev.pos + prev.len;
        aux = prev.aux_off + prev.aux_len;
        if (expect < s->base_pos || expect - s->base_pos > s->bytes || aux > s->aux_bytes) {
            /* The checkpoint itself is not backed by the files: start over. */
            from = 0;
            expect = s->base_pos;
            aux = 0;
        }
    }

    uint64_t i = from;
    while (i < s->count) {
        uint64_t n = s->count - i < BATCH ? s->count - i : BATCH;
        rc = sys_pread_all(s->idx_fd, ent, n * s->esize, idx_at(s, i));
        if (rc < 0)
            goto out;
        uint64_t j;
        for (j = 0; j < n; j++) {
            const unsigned char *p = ent + j * s->esize;
            struct seg_entry e;
            entry_decode(s, p, &e);
            if (!entry_valid(s, p, &e, expect, aux, &rec, &cap, &side, &scap))
                break;
            expect += e.len;
            aux += e.aux_len;
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
    while (rebuild && !s->indexed && scan < s->bytes) {
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
            struct seg_entry e = {
                .pos = s->base_pos + line_start, .ts = rebuild_ts, .len = len, .aux_off = aux};
            unsigned char out[SEG_ENTRY_SIZE];
            if ((rc = read_into(s->log_fd, line_start, len, &rec, &cap)) < 0)
                goto scanned;
            entry_encode(s, out, &e, rec, NULL);
            rc = sys_pwrite_all(s->idx_fd, out, s->esize, idx_at(s, s->count));
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

    /* Cut what is not valid: torn entries, side data and a torn last line. */
    if ((rc = sysio.ftruncate(s->idx_fd, idx_at(s, s->count))) < 0)
        goto out;
    if (log_valid != s->bytes) {
        if ((rc = sysio.ftruncate(s->log_fd, (off_t)log_valid)) < 0)
            goto out;
        s->bytes = log_valid;
    }
    if (s->version >= 2 && aux != s->aux_bytes) {
        if ((rc = sysio.ftruncate(s->aux_fd, (off_t)aux)) < 0)
            goto out;
        s->aux_bytes = aux;
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
    free(side);
    if (verified)
        *verified = nver;
    if (rebuilt)
        *rebuilt = nreb;
    return rc;
}

/* ------------------------------------------------------------------ append */

/* Appends n entries: their .log lengths from lens (plain records) or from
 * items (any kind, with side data). */
/* Writes the side data of items to the .aux at its end: side data that
 * lies back to back in memory (a Kafka batch's) goes as one piece, up to
 * IOV_MAX pieces per write. */
static int write_aux(struct segment *s, const struct seg_item *items, size_t n)
{
    enum { PIECES = 1024 };
    struct iovec v[PIECES];
    int nv = 0, rc = 0;
    uint64_t at = s->aux_bytes, batch = 0;
    for (size_t k = 0; k <= n && rc == 0; k++) {
        bool last = k == n;
        if (!last && !items[k].aux_len)
            continue;
        if (!last && nv && (const char *)v[nv - 1].iov_base + v[nv - 1].iov_len == (const char *)items[k].aux) {
            v[nv - 1].iov_len += items[k].aux_len; /* continues the previous piece */
            batch += items[k].aux_len;
            continue;
        }
        if (nv == PIECES || (last && nv)) {
            rc = sys_pwritev_all(s->aux_fd, v, nv, (off_t)at);
            at += batch;
            nv = 0;
            batch = 0;
        }
        if (!last) {
            v[nv++] = (struct iovec){(void *)items[k].aux, items[k].aux_len};
            batch += items[k].aux_len;
        }
    }
    return rc;
}

static int append(struct segment *s, const struct iovec *iov, int iovcnt, const uint32_t *lens,
                  const struct seg_item *items, size_t n, int64_t ts)
{
    uint64_t total = 0, aux_total = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t len = items ? items[k].len : lens[k];
        if (items) {
            bool record = items[k].kind == SEG_RECORD;
            if (items[k].kind > SEG_CONTROL || (record ? len == 0 : len != 0))
                return -EINVAL;
            if (s->version == 1 && (!record || items[k].aux_len))
                return -EOPNOTSUPP;
            aux_total += items[k].aux_len;
        }
        total += len;
    }
    unsigned char *ent = malloc(n * s->esize);
    char *scratch = NULL;
    int rc = 0;
    if (!ent)
        return -ENOMEM;

    /* Walk the records across the iov pieces; a record that spans two
     * pieces (a held partial line + the new bytes) is copied once. */
    int vi = 0;
    size_t voff = 0;
    uint64_t pos = s->base_pos + s->bytes, aux = s->aux_bytes;
    int64_t first_ts = ts, last_ts = ts;
    for (size_t k = 0; k < n; k++) {
        size_t len = items ? items[k].len : lens[k];
        while (len && vi < iovcnt && voff == iov[vi].iov_len) {
            vi++;
            voff = 0;
        }
        if (len && vi >= iovcnt) {
            rc = -EINVAL;
            goto out;
        }
        const char *rec = "";
        if (len == 0) {
            /* not a record: no bytes */
        } else if (iov[vi].iov_len - voff >= len) {
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
        uint32_t alen = items ? items[k].aux_len : 0;
        int64_t ets = items && items[k].ts ? items[k].ts : ts;
        last_ts = ets;
        if (k == 0)
            first_ts = ets;
        struct seg_entry e = {.pos = pos,
                              .ts = ets,
                              .len = (uint32_t)len,
                              .flags = (items ? items[k].kind : 0) | (alen ? SEG_FLAG_AUX : 0),
                              .aux_off = aux,
                              .aux_len = alen};
        entry_encode(s, ent + k * s->esize, &e, rec, alen ? items[k].aux : NULL);
        pos += len;
        aux += alen;
    }

    if (total)
        rc = sys_pwritev_all(s->log_fd, iov, iovcnt, (off_t)s->bytes);
    if (rc == 0 && aux_total)
        rc = write_aux(s, items, n);
    if (rc == 0)
        rc = sys_pwrite_all(s->idx_fd, ent, n * s->esize, idx_at(s, s->count));
    if (rc < 0) {
        /* Undo a partial append so the files end where the segment does. */
        sysio.ftruncate(s->log_fd, (off_t)s->bytes);
        if (s->aux_fd >= 0)
            sysio.ftruncate(s->aux_fd, (off_t)s->aux_bytes);
        sysio.ftruncate(s->idx_fd, idx_at(s, s->count));
        goto out;
    }
    if (s->count == 0)
        s->first_ts = first_ts;
    if (s->vcount == s->count) {
        /* What this process writes it knows (and the page cache holds). */
        s->vcount += n;
        s->vend += total;
        s->vaux += aux_total;
    }
    s->count += n;
    s->bytes += total;
    s->aux_bytes += aux_total;
    s->last_ts = last_ts;
out:
    free(ent);
    free(scratch);
    return rc;
}

int seg_append(struct segment *s, const struct iovec *iov, int iovcnt, const uint32_t *lens,
               size_t n, int64_t ts)
{
    return append(s, iov, iovcnt, lens, NULL, n, ts);
}

int seg_append_items(struct segment *s, const struct iovec *iov, int iovcnt,
                     const struct seg_item *items, size_t n, int64_t ts)
{
    return append(s, iov, iovcnt, NULL, items, n, ts);
}

/* ------------------------------------------------------------------ lookup */

int seg_entry(const struct segment *s, uint64_t i, struct seg_entry *e)
{
    unsigned char buf[SEG_ENTRY_SIZE];
    if (i >= s->count)
        return -ERANGE;
    int rc = sys_pread_all(s->idx_fd, buf, s->esize, idx_at(s, i));
    if (rc < 0)
        return rc;
    entry_decode(s, buf, e);
    return 0;
}

int seg_entries(const struct segment *s, uint64_t i, size_t n, struct seg_entry *out)
{
    enum { CHUNK = 256 };
    unsigned char buf[CHUNK * SEG_ENTRY_SIZE];
    if (i > s->count || n > s->count - i)
        return -ERANGE;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        int rc = sys_pread_all(s->idx_fd, buf, k * s->esize, idx_at(s, i + done));
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < k; j++)
            entry_decode(s, buf + j * s->esize, &out[done + j]);
        done += k;
    }
    return 0;
}

int seg_read_aux_range(const struct segment *s, uint64_t off, size_t len, void *buf)
{
    if (!len)
        return 0;
    if (s->aux_fd < 0 || off > s->aux_bytes || len > s->aux_bytes - off)
        return -ERANGE;
    return sys_pread_all(s->aux_fd, buf, len, (off_t)off);
}

int seg_read_aux(const struct segment *s, const struct seg_entry *e, void *buf)
{
    if (!e->aux_len)
        return 0;
    if (s->aux_fd < 0 || e->aux_off > s->aux_bytes || e->aux_len > s->aux_bytes - e->aux_off)
        return -ERANGE;
    return sys_pread_all(s->aux_fd, buf, e->aux_len, (off_t)e->aux_off);
}

int seg_find_pos(const struct segment *s, uint64_t pos, uint64_t *index)
{
    if (s->count == 0 || pos < s->base_pos || pos >= s->base_pos + s->bytes)
        return -ERANGE;
    /* The last entry starting at or before pos: with entries that are not
     * records (no bytes) at the same position, that is the record. */
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
    uint64_t bytes = 0, aux = 0;
    if (count > 0) {
        struct seg_entry e;
        int rc = seg_entry(s, count - 1, &e);
        if (rc < 0)
            return rc;
        bytes = e.pos + e.len - s->base_pos;
        aux = e.aux_off + e.aux_len;
    }
    int rc = sysio.ftruncate(s->idx_fd, idx_at(s, count));
    if (rc == 0)
        rc = sysio.ftruncate(s->log_fd, (off_t)bytes);
    if (rc == 0 && s->aux_fd >= 0)
        rc = sysio.ftruncate(s->aux_fd, (off_t)aux);
    if (rc < 0)
        return rc;
    s->count = count;
    s->bytes = bytes;
    if (s->aux_fd >= 0)
        s->aux_bytes = aux;
    if (s->vcount > count) {
        s->vcount = count;
        s->vend = s->base_pos + bytes;
        s->vaux = aux;
    }
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
    if (rc == 0 && with_index && s->aux_fd >= 0)
        rc = sysio.fdatasync(s->aux_fd);
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
    if (s->aux_fd >= 0)
        sysio.close(s->aux_fd);
    s->log_fd = s->idx_fd = s->aux_fd = -1;
}

int seg_remove(struct segment *s, const char *dir)
{
    char lp[PATH_MAX], ip[PATH_MAX], ap[PATH_MAX];
    uint64_t base = s->base_off;
    seg_close(s);
    int rc = seg_path(lp, sizeof(lp), dir, base, "log");
    if (rc == 0)
        rc = seg_path(ip, sizeof(ip), dir, base, "idx");
    if (rc == 0)
        rc = seg_path(ap, sizeof(ap), dir, base, "aux");
    if (rc < 0)
        return rc;
    /* The .idx goes first: a .log without .idx is recognisable leftovers. */
    int r1 = sysio.unlink(ip);
    int r3 = sysio.unlink(ap);
    int r2 = sysio.unlink(lp);
    (void)r3; /* format 1 segments have none */
    return r1 < 0 ? r1 : r2;
}
