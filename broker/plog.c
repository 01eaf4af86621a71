/*
 * plog — a partition log (see plog.h).
 *
 * LAYOUT OF A PARTITION DIRECTORY
 *   %020llu.log, %020llu.idx   segments, format in segment.c.  Segment k+1
 *                              starts at the offset and byte position where
 *                              segment k ends; positions never restart.
 *   terms                      term-start list, text, one "TERM START\n" line
 *                              per term, ascending; rewritten atomically
 *                              (sys_write_atomic) before the first record of
 *                              a new term is appended (Kafka's leader-epoch
 *                              file).
 *   checkpoint                 "OFFSET\n": every index entry below OFFSET, and
 *                              the .log bytes it names, is durable.  Written
 *                              atomically after the files were fdatasynced.
 *   raftstate                  "TERM VOTE\n": Raft's hard state, replaced
 *                              atomically (Raft logs only).
 *   start                      "OFFSET POSITION TERM\n", written atomically by
 *                              plog_reset before anything else changes: the
 *                              log starts at OFFSET, POSITION; TERM is the
 *                              term of OFFSET - 1.
 *
 * RECOVERY (plog_open)
 *   Segments are listed and sorted by base offset.  A last segment whose
 *   index header is missing or unreadable and whose .log is empty is the
 *   remains of a roll cut short by a crash and is removed; so is a .log
 *   without .idx at either end (a removal by retention or truncation cut
 *   short: seg_remove unlinks the .idx first).  Segments wholly
 *   below the checkpoint are trusted as they are; from the segment holding
 *   the checkpoint on, seg_recover() verifies entries and cuts torn tails.
 *   If a segment comes out shorter than where the next one starts, the later
 *   segments can no longer be reached and are removed.  With a start file,
 *   segments that end at or below its offset are what a reset cut short and
 *   are removed, and an empty segment is created at the start if none is
 *   left.  The work is bounded
 *   by what was written since the last checkpoint, not by the log's length.
 */
#include "broker/plog.h"
#include "broker/sysio.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ small files */

static int terms_write(const struct plog *l)
{
    size_t cap = 48 * (l->nterms + 1), len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < l->nterms; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%" PRIu64 " %" PRIu64 "\n", l->terms[i].term,
                                l->terms[i].start);
    int rc = sys_write_atomic(l->dir, "terms", buf, len);
    free(buf);
    return rc;
}

static int parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -EBADMSG;
    while (*s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EBADMSG;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

static int terms_read(struct plog *l)
{
    char path[PATH_MAX], *buf;
    size_t len;
    snprintf(path, sizeof(path), "%s/terms", l->dir);
    int rc = sys_read_small(path, 1 << 20, &buf, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    const char *p = buf;
    while (*p) {
        struct plog_term t;
        if (parse_u64(&p, &t.term) < 0 || *p++ != ' ' || parse_u64(&p, &t.start) < 0 ||
            *p++ != '\n' ||
            (l->nterms &&
             (t.term <= l->terms[l->nterms - 1].term || t.start < l->terms[l->nterms - 1].start))) {
            rc = -EBADMSG;
            break;
        }
        struct plog_term *nt = realloc(l->terms, (l->nterms + 1) * sizeof(*nt));
        if (!nt) {
            rc = -ENOMEM;
            break;
        }
        l->terms = nt;
        l->terms[l->nterms++] = t;
    }
    free(buf);
    return rc;
}

/* Reads up to 3 numbers from a small "A B C\n" file; -ENOENT if missing. */
static int read_numbers(const char *dir, const char *name, uint64_t *v, int n)
{
    char path[PATH_MAX], *buf;
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int rc = sys_read_small(path, 128, &buf, &len);
    if (rc < 0)
        return rc;
    const char *p = buf;
    for (int i = 0; i < n && rc == 0; i++)
        if (parse_u64(&p, &v[i]) < 0 || *p++ != (i == n - 1 ? '\n' : ' '))
            rc = -EBADMSG;
    if (rc == 0 && *p)
        rc = -EBADMSG;
    free(buf);
    return rc;
}

int plog_hardstate_write(struct plog *l, uint64_t term, uint64_t vote)
{
    char buf[48];
    int len = snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 "\n", term, vote);
    int rc = sys_write_atomic(l->dir, "raftstate", buf, (size_t)len);
    if (rc == 0) {
        l->hs_term = term;
        l->hs_vote = vote;
    }
    return rc;
}

static int start_write(const char *dir, const struct plog_start *st)
{
    char buf[80];
    int len = snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", st->off, st->pos,
                       st->term);
    return sys_write_atomic(dir, "start", buf, (size_t)len);
}

int plog_checkpoint_write(const char *dir, uint64_t off)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", off);
    return sys_write_atomic(dir, "checkpoint", buf, (size_t)len);
}

static uint64_t checkpoint_read(const char *dir)
{
    char path[PATH_MAX], *buf;
    size_t len;
    uint64_t off = 0;
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    if (sys_read_small(path, 64, &buf, &len) < 0)
        return 0;
    const char *p = buf;
    if (parse_u64(&p, &off) < 0 || *p != '\n')
        off = 0; /* unreadable: verify everything, slower but safe */
    free(buf);
    return off;
}

/* --------------------------------------------------------------- segments */

static int segs_push(struct plog *l, const struct segment *s)
{
    if (l->nsegs == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 8;
        struct segment *n = realloc(l->segs, ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        l->segs = n;
        l->cap = ncap;
    }
    l->segs[l->nsegs++] = *s;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the base offsets of the .log files in dir, sorted. */
static int list_bases(const char *dir, uint64_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t base;
        if (seg_parse_name(de->d_name, &base) < 0)
            continue;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            uint64_t *nv = realloc(v, cap * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[cnt++] = base;
    }
    closedir(d);
    if (rc < 0) {
        free(v);
        return rc;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_u64);
    *out = v;
    *n = cnt;
    return 0;
}

static void remove_pair(const char *dir, uint64_t base)
{
    static const char *const ext[] = {"idx", "aux", "log"}; /* seg_remove's order */
    for (int i = 0; i < 3; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%020" PRIu64 ".%s", dir, base, ext[i]);
        sysio.unlink(p);
    }
}

static int open_log(struct plog *l, const char *dir, bool create, bool raft)
{
    uint64_t *bases = NULL;
    size_t nb = 0;
    int rc;
    memset(l, 0, sizeof(*l));
    l->raft = raft;
    l->dir = strdup(dir);
    if (!l->dir)
        return -ENOMEM;

    rc = create ? sysio.mkdir(dir, 0755) : 0;
    if (rc < 0 && rc != -EEXIST)
        goto err;
    if ((rc = list_bases(dir, &bases, &nb)) < 0)
        goto err;
    if ((rc = terms_read(l)) < 0)
        goto err;
    l->ckpt_off = checkpoint_read(dir);
    uint64_t v[3];
    if ((rc = read_numbers(dir, "start", v, 3)) == 0)
        l->start = (struct plog_start){.off = v[0], .pos = v[1], .term = v[2]};
    else if (rc != -ENOENT)
        goto err;
    if (raft && (rc = read_numbers(dir, "raftstate", v, 2)) == 0) {
        l->hs_term = v[0];
        l->hs_vote = v[1];
    } else if (raft && rc != -ENOENT) {
        goto err;
    }
    rc = 0;

    for (size_t i = 0; i < nb; i++) {
        struct segment s;
        rc = seg_open(&s, dir, bases[i]);
        if (rc < 0) {
            struct stat st;
            char p[PATH_MAX];
            snprintf(p, sizeof(p), "%s/%020" PRIu64 ".log", dir, bases[i]);
            bool edge = i == 0 || i == nb - 1;
            bool empty_last = i == nb - 1 && stat(p, &st) == 0 && st.st_size == 0;
            /* A lone .log at either end is a removal cut short (retention
             * removes the oldest, truncation the newest; .idx goes first);
             * an empty last one is a roll cut short.  Anything else is
             * damage we must not paper over. */
            if ((rc == -ENOENT && edge) || empty_last) {
                remove_pair(dir, bases[i]);
                rc = 0;
                continue;
            }
            goto err;
        }
        if ((rc = segs_push(l, &s)) < 0) {
            seg_close(&s);
            goto err;
        }
    }
    l->rec.segments = l->nsegs;

    /* Recover from the checkpoint on; drop segments that became unreachable. */
    for (size_t i = 0; i < l->nsegs; i++) {
        struct segment *s = &l->segs[i];
        if (i + 1 < l->nsegs && l->segs[i + 1].base_off <= l->ckpt_off)
            continue;
        uint64_t from = l->ckpt_off > s->base_off ? l->ckpt_off - s->base_off : 0;
        uint64_t bytes_before = s->bytes, ver, reb;
        rc = seg_recover(s, from, !l->raft, s->last_ts, &ver, &reb);
        if (rc < 0)
            goto err;
        l->rec.verified += ver;
        l->rec.rebuilt += reb;
        l->rec.dropped_bytes += bytes_before - s->bytes;
        if (i + 1 < l->nsegs && (l->segs[i + 1].base_off != s->base_off + s->count ||
                                 l->segs[i + 1].base_pos != s->base_pos + s->bytes)) {
            for (size_t j = l->nsegs; j-- > i + 1;) {
                l->rec.dropped_bytes += l->segs[j].bytes;
                seg_remove(&l->segs[j], dir);
            }
            l->nsegs = i + 1;
        }
    }

    /* A sealed segment's .log spans exactly up to the next one's base.  A
     * file cut short (or grown) is damage: its length is taken from the
     * index, so that the records past the cut fail their checks when read
     * (plog_verify) and are repaired or refused, never served short. */
    for (size_t i = 0; i + 1 < l->nsegs; i++) {
        struct segment *s = &l->segs[i];
        uint64_t want = l->segs[i + 1].base_pos - s->base_pos;
        if (l->segs[i + 1].base_pos >= s->base_pos && s->bytes != want) {
            s->bytes = want;
            l->rec.short_logs++;
        }
    }

    /* A reset discards the whole log before its start: segments that begin
     * below it are what one cut short left (every segment made since begins
     * at or after it), and so are terms that begin below it. */
    while (l->nsegs > 0 && l->segs[0].base_off < l->start.off) {
        seg_remove(&l->segs[0], dir);
        memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof(l->segs[0]));
        l->nsegs--;
    }
    size_t keep = 0;
    for (size_t i = 0; i < l->nterms; i++)
        if (l->terms[i].start >= l->start.off)
            l->terms[keep++] = l->terms[i];
    if (keep != l->nterms) {
        l->nterms = keep;
        if ((rc = terms_write(l)) < 0)
            goto err;
    }
    if (l->nsegs == 0) {
        struct segment s;
        if ((rc = seg_create(&s, dir, l->start.off, l->start.pos, false)) < 0)
            goto err;
        if ((rc = segs_push(l, &s)) < 0) {
            seg_close(&s);
            goto err;
        }
    }
    /* A term whose first entry a crash took back (the terms file is synced
     * when the term begins, its entry later) describes nothing: gone, as a
     * truncation would drop it, so that an entry of an earlier term may be
     * appended there. */
    size_t nt = l->nterms;
    while (nt > 1 && l->terms[nt - 1].start >= plog_next_off(l))
        nt--;
    if (nt != l->nterms) {
        l->nterms = nt;
        if ((rc = terms_write(l)) < 0)
            goto err;
    }
    if (l->ckpt_off > plog_next_off(l))
        l->ckpt_off = plog_next_off(l);
    free(bases);
    return 0;

err:
    free(bases);
    plog_close(l);
    return rc;
}

int plog_open(struct plog *l, const char *dir, bool create)
{
    return open_log(l, dir, create, false);
}

int plog_open_raft(struct plog *l, const char *dir, bool create)
{
    return open_log(l, dir, create, true);
}

int plog_reset(struct plog *l, uint64_t off, uint64_t pos, uint64_t term)
{
    if (off < plog_first_off(l) || pos < plog_first_pos(l))
        return -EINVAL; /* a log start only moves forward */
    struct plog_start st = {.off = off, .pos = pos, .term = term};
    int rc;
    /* Entries at or beyond the new start go first, durably: afterwards every
     * segment that begins below the start holds only what the reset drops,
     * and one that begins at or after it holds nothing (see plog_open). */
    if (off < plog_next_off(l) &&
        ((rc = plog_truncate(l, off)) < 0 || (rc = seg_sync(plog_active(l), true)) < 0))
        return rc;
    if ((rc = start_write(l->dir, &st)) < 0)
        return rc;
    l->start = st;
    /* Newest first, keeping the oldest until the new segment exists, so the
     * log is never without one; a crash part-way leaves segments that begin
     * below the start, which plog_open removes. */
    while (l->nsegs > 1) {
        if ((rc = seg_remove(&l->segs[l->nsegs - 1], l->dir)) < 0)
            return rc;
        l->nsegs--;
    }
    struct segment *old = &l->segs[0];
    if (old->base_off == off) {
        /* The same name: empty it.  The same offset at another position
         * would mean two logs disagree on committed bytes. */
        if (old->base_pos != pos)
            return -EINVAL;
        if ((rc = seg_truncate(old, 0)) < 0)
            return rc;
    } else {
        struct segment s;
        if ((rc = seg_create(&s, l->dir, off, pos, false)) < 0)
            return rc; /* the old segment stays: a reopen finishes the reset */
        seg_remove(old, l->dir);
        *old = s;
    }
    l->nterms = 0;
    if ((rc = terms_write(l)) < 0)
        return rc;
    l->ckpt_off = off;
    return plog_checkpoint_write(l->dir, off);
}

void plog_close(struct plog *l)
{
    for (size_t i = 0; i < l->nsegs; i++)
        seg_close(&l->segs[i]);
    free(l->segs);
    free(l->terms);
    free(l->dir);
    memset(l, 0, sizeof(*l));
}

uint64_t plog_bytes(const struct plog *l)
{
    return plog_end_pos(l) - plog_first_pos(l);
}

/* ------------------------------------------------------------------ append */

static int roll(struct plog *l, bool indexed)
{
    struct segment *a = plog_active(l);
    if (a->count == 0)
        return 0;
    struct segment s;
    int rc = seg_create(&s, l->dir, a->base_off + a->count, a->base_pos + a->bytes, indexed);
    if (rc < 0)
        return rc;
    rc = segs_push(l, &s);
    if (rc < 0) {
        seg_remove(&s, l->dir);
        return rc;
    }
    return 0;
}

int plog_roll(struct plog *l)
{
    return roll(l, plog_active(l)->indexed);
}

static size_t seg_for_off(const struct plog *l, uint64_t off);

/* A format 1 active segment takes plain records only: entries of other
 * kinds start a format 2 segment (an empty format 1 one is upgraded). */
static int need_format2(struct plog *l)
{
    struct segment *a = plog_active(l);
    if (a->version >= 2)
        return 0;
    if (a->count > 0)
        return plog_roll(l);
    return seg_upgrade(a, l->dir); /* empty: in place */
}

static int append(struct plog *l, uint64_t term, int64_t ts, const struct iovec *iov, int iovcnt,
                  const uint32_t *lens, const struct seg_item *items, size_t n,
                  uint64_t segment_bytes, int64_t segment_ms)
{
    int rc;
    if (n == 0)
        return 0;
    uint64_t total = 0;
    bool plain = true, opaque = false;
    for (size_t i = 0; i < n; i++) {
        total += items ? items[i].len : lens[i];
        if (items && (items[i].kind != SEG_RECORD || items[i].aux_len))
            plain = false;
        if (items && items[i].kind == SEG_RECORD && (items[i].opaque || items[i].aux_len))
            opaque = true;
    }
    /* Records that are not plain lines go to an indexed segment, where
     * recovery rebuilds nothing from lines (segment.h); a Raft log never
     * rebuilds, so its segments need not say so. */
    bool indexed = opaque && !l->raft;

    if (l->nterms == 0 || l->terms[l->nterms - 1].term < term) {
        struct plog_term *nt = realloc(l->terms, (l->nterms + 1) * sizeof(*nt));
        if (!nt)
            return -ENOMEM;
        l->terms = nt;
        l->terms[l->nterms++] = (struct plog_term){.term = term, .start = plog_next_off(l)};
        if ((rc = terms_write(l)) < 0) {
            l->nterms--;
            return rc;
        }
    } else if (l->terms[l->nterms - 1].term > term) {
        return -EINVAL; /* a term never goes back */
    }

    struct segment *a = plog_active(l);
    if (a->count > 0 && (a->bytes + total > segment_bytes || ts - a->first_ts >= segment_ms ||
                         (indexed && !a->indexed))) {
        if ((rc = roll(l, indexed)) < 0)
            return rc;
        a = plog_active(l);
    }
    if (!plain && (rc = need_format2(l)) < 0)
        return rc;
    a = plog_active(l);
    if (indexed && !a->indexed && (rc = seg_set_indexed(a)) < 0) /* empty: in place */
        return rc;
    return items ? seg_append_items(a, iov, iovcnt, items, n, ts)
                 : seg_append(a, iov, iovcnt, lens, n, ts);
}

int plog_append(struct plog *l, uint64_t term, int64_t ts, const struct iovec *iov, int iovcnt,
                const uint32_t *lens, size_t n, uint64_t segment_bytes, int64_t segment_ms)
{
    return append(l, term, ts, iov, iovcnt, lens, NULL, n, segment_bytes, segment_ms);
}

int plog_append_items(struct plog *l, uint64_t term, int64_t ts, const struct iovec *iov,
                      int iovcnt, const struct seg_item *items, size_t n, uint64_t segment_bytes,
                      int64_t segment_ms)
{
    return append(l, term, ts, iov, iovcnt, NULL, items, n, segment_bytes, segment_ms);
}

int plog_read_aux(const struct plog *l, uint64_t off, const struct seg_entry *e, void *buf)
{
    if (off < plog_first_off(l) || off >= plog_next_off(l))
        return -ERANGE;
    return seg_read_aux(&l->segs[seg_for_off(l, off)], e, buf);
}

/* ------------------------------------------------------------------ lookup */

/* Index of the last segment whose field at `key` (base_off or base_pos) is
 * <= v: the segment holding offset or position v. */
static size_t seg_search(const struct plog *l, size_t key, uint64_t v)
{
    size_t lo = 0, hi = l->nsegs - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        uint64_t base;
        memcpy(&base, (const char *)&l->segs[mid] + key, sizeof(base));
        if (base <= v)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static size_t seg_for_off(const struct plog *l, uint64_t off)
{
    return seg_search(l, offsetof(struct segment, base_off), off);
}

static size_t seg_for_pos(const struct plog *l, uint64_t pos)
{
    return seg_search(l, offsetof(struct segment, base_pos), pos);
}

int plog_locate(const struct plog *l, uint64_t pos, size_t size, int *fd, uint64_t *fdoff,
                size_t *n)
{
    if (pos < plog_first_pos(l))
        return -ENODATA;
    *n = 0;
    if (pos >= plog_end_pos(l))
        return 0;
    const struct segment *s = &l->segs[seg_for_pos(l, pos)];
    uint64_t in = pos - s->base_pos;
    uint64_t avail = s->bytes - in;
    *fd = s->log_fd;
    *fdoff = in;
    *n = avail < size ? (size_t)avail : size;
    return 0;
}

struct segment *plog_segment_of(const struct plog *l, uint64_t off)
{
    if (off < plog_first_off(l) || off >= plog_next_off(l))
        return NULL;
    return &l->segs[seg_for_off(l, off)];
}

int plog_verify_off(const struct plog *l, uint64_t lo, uint64_t hi, uint64_t *bad)
{
    if (lo < plog_first_off(l))
        lo = plog_first_off(l);
    if (hi > plog_next_off(l))
        hi = plog_next_off(l);
    while (lo < hi) {
        struct segment *s = &l->segs[seg_for_off(l, lo)];
        uint64_t end = s->base_off + s->count < hi ? s->base_off + s->count : hi;
        uint64_t b = 0;
        int rc = seg_verify(s, lo - s->base_off, end - s->base_off, &b);
        if (rc < 0) {
            *bad = s->base_off + b;
            return rc;
        }
        if (end <= lo)
            break;
        lo = end;
    }
    return 0;
}

int plog_verify(const struct plog *l, uint64_t pos, size_t size, uint64_t *bad)
{
    if (pos < plog_first_pos(l) || size == 0)
        return 0;
    uint64_t end = pos + size;
    if (end > plog_end_pos(l))
        end = plog_end_pos(l);
    while (pos < end) {
        struct segment *s = &l->segs[seg_for_pos(l, pos)];
        uint64_t send = s->base_pos + s->bytes < end ? s->base_pos + s->bytes : end;
        if (send > s->vend) {
            /* From where the checked prefix ends, or from the record holding
             * pos; to the record holding the last byte wanted. */
            uint64_t lo, hi;
            if (pos <= s->vend)
                lo = s->vcount;
            else if (seg_find_pos(s, pos, &lo) < 0)
                lo = s->vcount;
            if (seg_find_pos(s, send - 1, &hi) < 0)
                hi = s->count;
            else
                hi++;
            uint64_t b = 0;
            int rc = seg_verify(s, lo, hi, &b);
            if (rc < 0) {
                *bad = s->base_off + b;
                return rc;
            }
        }
        if (s->base_pos + s->bytes <= pos)
            break; /* an empty segment */
        pos = s->base_pos + s->bytes;
        /* a segment whose .log is shorter than the next one's base: that
         * gap was verified as damage above */
        size_t k = seg_for_pos(l, pos);
        if (&l->segs[k] == s)
            break;
    }
    return 0;
}

int plog_entry(const struct plog *l, uint64_t off, struct seg_entry *e)
{
    if (off < plog_first_off(l) || off >= plog_next_off(l))
        return -ERANGE;
    const struct segment *s = &l->segs[seg_for_off(l, off)];
    return seg_entry(s, off - s->base_off, e);
}

uint64_t plog_offset_for_time(const struct plog *l, int64_t ts, uint64_t limit)
{
    /* The first segment whose last entry is at or after ts... */
    size_t lo = 0, hi = l->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct segment *m = &l->segs[mid];
        if (m->count > 0 && m->last_ts >= ts)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == l->nsegs)
        return limit;
    /* ...then its first entry at or after ts (append times never go back). */
    const struct segment *sg = &l->segs[lo];
    uint64_t a = 0, b = sg->count;
    while (a < b) {
        uint64_t mid = a + (b - a) / 2;
        struct seg_entry e;
        if (seg_entry(sg, mid, &e) < 0)
            return limit;
        if (e.ts >= ts)
            b = mid;
        else
            a = mid + 1;
    }
    uint64_t off = sg->base_off + a;
    if (off < plog_first_off(l))
        off = plog_first_off(l);
    return off < limit ? off : limit;
}

int plog_offset_of(const struct plog *l, uint64_t pos, uint64_t *off)
{
    if (pos < plog_first_pos(l))
        return -ENODATA;
    if (pos >= plog_end_pos(l))
        return -ERANGE;
    const struct segment *s = &l->segs[seg_for_pos(l, pos)];
    uint64_t i;
    int rc = seg_find_pos(s, pos, &i);
    if (rc == 0)
        *off = s->base_off + i;
    return rc;
}

uint64_t plog_term_at(const struct plog *l, uint64_t off)
{
    uint64_t first = plog_first_off(l);
    if (off >= plog_next_off(l) || (off < first && off + 1 != first))
        return 0;
    if (off + 1 == first && l->start.off == first)
        return l->start.term;
    uint64_t t = 0;
    for (size_t i = 0; i < l->nterms && l->terms[i].start <= off; i++)
        t = l->terms[i].term;
    return t;
}

/* -------------------------------------------------------------- truncation */

int plog_truncate(struct plog *l, uint64_t off)
{
    if (off >= plog_next_off(l))
        return 0;
    if (off < plog_first_off(l))
        return -ERANGE;
    int rc;
    while (l->nsegs > 1 && plog_active(l)->base_off >= off) {
        if ((rc = seg_remove(plog_active(l), l->dir)) < 0)
            return rc;
        l->nsegs--;
    }
    struct segment *a = plog_active(l);
    if ((rc = seg_truncate(a, off - a->base_off)) < 0)
        return rc;
    /* Terms that now start beyond the end are gone too. */
    size_t nt = l->nterms;
    while (nt > 0 && l->terms[nt - 1].start >= off && nt > 1)
        nt--;
    if (nt != l->nterms) {
        l->nterms = nt;
        if ((rc = terms_write(l)) < 0)
            return rc;
    }
    if (l->ckpt_off > off) {
        l->ckpt_off = off;
        if ((rc = plog_checkpoint_write(l->dir, off)) < 0)
            return rc;
    }
    return 0;
}

uint64_t plog_retain_point(const struct plog *l, int64_t now_ms, int64_t retention_ms,
                           int64_t retention_bytes, uint64_t durable_off)
{
    uint64_t total = plog_bytes(l);
    size_t k = 0;
    for (; k + 1 < l->nsegs; k++) {
        const struct segment *s = &l->segs[k];
        if (s->base_off + s->count > durable_off)
            break;
        bool old = retention_ms >= 0 && now_ms - s->last_ts > retention_ms;
        bool big = retention_bytes >= 0 && total - s->bytes >= (uint64_t)retention_bytes;
        if (!old && !big)
            break;
        total -= s->bytes;
    }
    return l->segs[k].base_off;
}

int plog_trim(struct plog *l, uint64_t off, size_t *deleted)
{
    size_t del = 0;
    int rc = 0;
    while (l->nsegs > 1 && l->segs[0].base_off + l->segs[0].count <= off) {
        /* Forget it first: from here on reads below its end fail cleanly. */
        struct segment gone = l->segs[0];
        memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof(gone));
        l->nsegs--;
        int r = seg_remove(&gone, l->dir);
        if (r < 0 && rc == 0)
            rc = r;
        del++;
    }
    if (deleted)
        *deleted = del;
    return rc;
}

int plog_retain(struct plog *l, int64_t now_ms, int64_t retention_ms, int64_t retention_bytes,
                uint64_t durable_off, size_t *deleted)
{
    return plog_trim(l, plog_retain_point(l, now_ms, retention_ms, retention_bytes, durable_off),
                     deleted);
}

/* -------------------------------------------------------------- durability */

static int sync_prepare(const struct plog *l, size_t first, bool index, struct plog_sync *s);

int plog_sync_prepare(const struct plog *l, uint64_t from_pos, bool index, struct plog_sync *s)
{
    return sync_prepare(l, from_pos < plog_first_pos(l) ? 0 : seg_for_pos(l, from_pos), index, s);
}

int plog_sync_prepare_off(const struct plog *l, uint64_t from_off, struct plog_sync *s)
{
    return sync_prepare(l, from_off < plog_first_off(l) ? 0 : seg_for_off(l, from_off), true, s);
}

static int sync_prepare(const struct plog *l, size_t first, bool index, struct plog_sync *s)
{
    size_t need = (l->nsegs - first) * 3;
    s->nfds = 0;
    s->fds = malloc(need * sizeof(int));
    if (!s->fds)
        return -ENOMEM;
    for (size_t i = first; i < l->nsegs; i++) {
        /* An indexed segment's entries cannot be rebuilt: always synced. */
        int files = index || l->segs[i].indexed ? 3 : 1;
        for (int k = 0; k < files; k++) {
            int src = k == 0 ? l->segs[i].log_fd : k == 1 ? l->segs[i].idx_fd : l->segs[i].aux_fd;
            if (src < 0)
                continue; /* a format 1 segment has no .aux */
            int fd = dup(src);
            if (fd < 0) {
                int rc = -errno;
                for (int j = 0; j < s->nfds; j++)
                    close(s->fds[j]);
                free(s->fds);
                s->fds = NULL;
                s->nfds = 0;
                return rc;
            }
            s->fds[s->nfds++] = fd;
        }
    }
    return 0;
}

struct sync_one {
    pthread_t th;
    int fd, rc;
    bool started;
};

static void *sync_thread(void *arg)
{
    struct sync_one *o = arg;
    o->rc = sysio.fdatasync(o->fd);
    return NULL;
}

/* The files are synced in parallel: on ext4 the fdatasyncs of files written
 * together then share journal commits instead of paying one each in turn
 * (a Raft log syncs .log, .idx and .aux at every step). */
int plog_sync_run(struct plog_sync *s)
{
    int rc = 0;
    struct sync_one extra[4];
    int nextra = 0;
    for (int i = 1; i < s->nfds && nextra < 4; i++) {
        struct sync_one *o = &extra[nextra];
        o->fd = s->fds[i];
        o->rc = 0;
        o->started = pthread_create(&o->th, NULL, sync_thread, o) == 0;
        if (!o->started)
            o->rc = sysio.fdatasync(o->fd);
        nextra++;
    }
    for (int i = 0; i < s->nfds; i++) {
        if (i >= 1 && i <= nextra)
            continue;
        int r = sysio.fdatasync(s->fds[i]);
        if (r < 0 && rc == 0)
            rc = r;
    }
    for (int i = 0; i < nextra; i++) {
        if (extra[i].started)
            pthread_join(extra[i].th, NULL);
        if (extra[i].rc < 0 && rc == 0)
            rc = extra[i].rc;
    }
    for (int i = 0; i < s->nfds; i++)
        close(s->fds[i]);
    free(s->fds);
    s->fds = NULL;
    s->nfds = 0;
    return rc;
}
