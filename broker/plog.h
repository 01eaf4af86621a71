/*
 * plog — a partition log: the ordered segments of one partition, its
 * term-start list and its recovery checkpoint.  This is the storage the Raft
 * layer will drive later (DESIGN.md §2: the partition log is the Raft log), so
 * it speaks in record offsets and terms: append a batch with its term, term at
 * an offset, read by position or offset, truncate a suffix, first/next offset.
 * It knows nothing about commit points or acknowledgements (partition.c).
 *
 * Files in the partition directory (formats in segment.c and plog.c):
 *   %020llu.log / .aux / .idx   segments
 *   terms                term-start list, "TERM START_OFFSET" per line
 *   checkpoint           "OFFSET": index entries below it are durable
 *   raftstate            "TERM VOTE": Raft's hard state (Raft logs only)
 *   start                "OFFSET POSITION TERM": where plog_reset made the
 *                        log start (absent: never reset)
 *
 * Loop thread only, except plog_flush_run() (thread pool, see below).
 */
#ifndef MK_PLOG_H
#define MK_PLOG_H

#include "broker/segment.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct plog_term {
    uint64_t term;
    uint64_t start; /* first offset written in this term */
};

/* Where a reset made the log start: its first offset and byte position, and
 * the term of the entry just before it (0 0 0: never reset). */
struct plog_start {
    uint64_t off, pos, term;
};

struct plog_recovery {
    uint64_t verified;      /* entries whose checksums were checked */
    uint64_t rebuilt;       /* entries rebuilt from .log lines */
    uint64_t dropped_bytes; /* torn bytes cut from the .log tail */
    size_t segments;        /* segments found */
    size_t short_logs;      /* sealed .log files shorter or longer than their index */
};

struct plog {
    char *dir;            /* owned */
    struct segment *segs; /* sorted by base offset; the last is active */
    size_t nsegs, cap;
    struct plog_term *terms; /* ascending; empty means term 0 */
    size_t nterms;
    uint64_t ckpt_off;         /* entries below this offset are durable */
    bool raft;                 /* a Raft log: recovery rebuilds nothing */
    uint64_t hs_term, hs_vote; /* Raft hard state (raftstate), 0 0 if none */
    struct plog_start start;   /* the log start set by plog_reset (start) */
    struct plog_recovery rec;  /* what opening found */
};

/* Opens the log in dir, creating dir and an empty first segment when create
 * is set and dir does not exist yet.  Recovers the tail beyond the
 * checkpoint (see segment.c).  The caller frees with plog_close. */
int plog_open(struct plog *l, const char *dir, bool create);

/* The same for a partition replicated by Raft: recovery never rebuilds
 * entries from .log lines (see seg_recover), and the hard state is read. */
int plog_open_raft(struct plog *l, const char *dir, bool create);

/* Makes Raft's hard state durable (raftstate, replaced atomically) before
 * the caller sends a vote or an acknowledgement that depends on it. */
int plog_hardstate_write(struct plog *l, uint64_t term, uint64_t vote);

/* Discards the whole log and makes it start, durably, at offset off and
 * byte position pos, with `term` the term of the entry at off - 1 (a Raft
 * reset to the leader's log start: a follower behind the leader's first
 * retained record).  Positions below pos are never served.  The `start`
 * file is written first, so a crash part-way leaves a log that plog_open
 * finishes resetting. */
int plog_reset(struct plog *l, uint64_t off, uint64_t pos, uint64_t term);
void plog_close(struct plog *l);

static inline struct segment *plog_active(const struct plog *l)
{
    return &l->segs[l->nsegs - 1];
}
static inline uint64_t plog_first_off(const struct plog *l)
{
    return l->segs[0].base_off;
}
static inline uint64_t plog_next_off(const struct plog *l)
{
    return plog_active(l)->base_off + plog_active(l)->count;
}
static inline uint64_t plog_first_pos(const struct plog *l)
{
    return l->segs[0].base_pos;
}
static inline uint64_t plog_end_pos(const struct plog *l)
{
    return plog_active(l)->base_pos + plog_active(l)->bytes;
}
uint64_t plog_bytes(const struct plog *l);

/* Appends n records (bytes = concatenation of iov, lengths lens[] including
 * each '\n') in term `term` with timestamp ts, first rolling to a new segment
 * when the active one would pass segment_bytes or is older than segment_ms.
 * Page cache only; durability is plog_sync's job.  On failure nothing is
 * appended. */
int plog_append(struct plog *l, uint64_t term, int64_t ts, const struct iovec *iov, int iovcnt,
                const uint32_t *lens, size_t n, uint64_t segment_bytes, int64_t segment_ms);

/* Appends n entries of any kind (records, Raft NOOP/CONF entries, records
 * with side data): see seg_append_items.  Entries that are not records take
 * an offset but no byte position.  Otherwise as plog_append. */
int plog_append_items(struct plog *l, uint64_t term, int64_t ts, const struct iovec *iov,
                      int iovcnt, const struct seg_item *items, size_t n, uint64_t segment_bytes,
                      int64_t segment_ms);

/* Reads the side data of entry e (of record `off`, from plog_entry) into
 * buf (e->aux_len bytes). */
int plog_read_aux(const struct plog *l, uint64_t off, const struct seg_entry *e, void *buf);

/* Starts a new, empty active segment now (age-based roll). */
int plog_roll(struct plog *l);

/* Where the bytes at absolute position pos live: descriptor *fd, offset *fdoff
 * bytes (never across a segment end, never beyond end_pos).  -ENODATA below
 * the first retained position; *n = 0 at or beyond the end. */
int plog_locate(const struct plog *l, uint64_t pos, size_t size, int *fd, uint64_t *fdoff,
                size_t *n);

/* Checks the entries holding bytes [pos, pos + size), or the entries
 * [lo, hi) (offsets), against their checksums before they are served or
 * sent (seg_verify; entries already checked since open cost nothing).
 * 0; -EBADMSG with *bad the offset of the first damaged entry; or an I/O
 * error. */
int plog_verify(const struct plog *l, uint64_t pos, size_t size, uint64_t *bad);
int plog_verify_off(const struct plog *l, uint64_t lo, uint64_t hi, uint64_t *bad);

/* The segment holding offset off (first_off <= off < next_off), or NULL. */
struct segment *plog_segment_of(const struct plog *l, uint64_t off);

/* The first offset whose append time is >= ts, at most limit (limit when
 * none is below it).  O(log n): append times never go back in a log. */
uint64_t plog_offset_for_time(const struct plog *l, int64_t ts, uint64_t limit);

/* The entry of record `off`; -ERANGE outside [first, next). */
int plog_entry(const struct plog *l, uint64_t off, struct seg_entry *e);

/* Offset of the record containing position pos. */
int plog_offset_of(const struct plog *l, uint64_t pos, uint64_t *off);

/* Term of the entry at off, for first - 1 <= off < next (at first - 1: the
 * term of the log start: from the terms list, or the reset's); 0 outside. */
uint64_t plog_term_at(const struct plog *l, uint64_t off);

/* Drops every record at offset >= off (uncommitted suffix, for Raft). */
int plog_truncate(struct plog *l, uint64_t off);

/* Deletes whole sealed segments that end at or below `durable_off` and are
 * too old (last record older than retention_ms; -1 = keep) or beyond
 * retention_bytes (Kafka's rule: delete the oldest while what remains is
 * still >= retention_bytes; -1 = keep).  *deleted counts segments removed. */
int plog_retain(struct plog *l, int64_t now_ms, int64_t retention_ms, int64_t retention_bytes,
                uint64_t durable_off, size_t *deleted);

/* What plog_retain would do, without doing it: the offset the log would
 * start at (plog_first_off when nothing would go). */
uint64_t plog_retain_point(const struct plog *l, int64_t now_ms, int64_t retention_ms,
                           int64_t retention_bytes, uint64_t durable_off);

/* Deletes the leading sealed segments that end at or below offset off (a
 * replicated retention decision: every replica has the same segments). */
int plog_trim(struct plog *l, uint64_t off, size_t *deleted);

/* ---- durability, split for the thread pool -------------------------------
 * plog_sync_prepare (loop) collects duplicated descriptors of the files that
 * may hold unsynced bytes beyond position `from_pos` (the .logs, plus the
 * .idx and .aux files when `index` is set, and always those of indexed
 * segments); plog_sync_run (any thread) fdatasyncs and
 * closes them.  The checkpoint is then written with plog_checkpoint_write
 * (any thread: touches only the file) and published with l->ckpt_off = off.
 */
struct plog_sync {
    int *fds; /* malloc'ed, closed and freed by plog_sync_run */
    int nfds;
};
int plog_sync_prepare(const struct plog *l, uint64_t from_pos, bool index, struct plog_sync *s);
/* The same with every file (.log, .idx, .aux) of the segments holding
 * offsets from from_off on: for Raft logs, whose segments may hold entries
 * but no bytes (NOOPs), so that positions cannot tell them apart. */
int plog_sync_prepare_off(const struct plog *l, uint64_t from_off, struct plog_sync *s);
int plog_sync_run(struct plog_sync *s);
int plog_checkpoint_write(const char *dir, uint64_t off);

#endif
