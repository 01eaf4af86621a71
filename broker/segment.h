/*
 * segment — one segment of a partition log: a `.log` file holding exactly the
 * bytes the partition file shows, and a dense `.idx` file with one fixed-size
 * entry per record.  The disk format and the recovery rules are written down
 * at the top of segment.c.
 *
 * A segment is owned by one partition log (plog.c) and used from the loop
 * thread only, except seg_sync(), which a thread-pool job may run while the
 * loop keeps appending (fdatasync of a file being appended to is safe).
 */
#ifndef MK_SEGMENT_H
#define MK_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define SEG_HDR_SIZE      32
#define SEG_ENTRY_SIZE    48 /* format 2, every new segment */
#define SEG_ENTRY_SIZE_V1 32 /* format 1, read and appended to as it is */

/* What an entry is (flags bits 0-1).  Only records have bytes in the .log;
 * the others take an offset but no byte position, so they never show in
 * the partition file and never move a record's position. */
enum seg_kind {
    SEG_RECORD = 0,  /* a record: its bytes (and '\n') in the .log */
    SEG_NOOP = 1,    /* Raft: the entry every new leader appends */
    SEG_CONF = 2,    /* Raft: a configuration (payload in .aux) */
    SEG_CONTROL = 3, /* reserved: markers with their data in .aux */
};
#define SEG_KIND_MASK 3u
#define SEG_FLAG_AUX  4u /* the entry has side data in the .aux file */

/* One entry of the index, decoded. */
struct seg_entry {
    uint64_t pos;     /* absolute byte position of the record's first byte (for
                         other kinds: of the next record) */
    int64_t ts;       /* append time, ms since the epoch */
    uint32_t len;     /* bytes in the .log, including the trailing '\n'; 0
                         for entries that are not records */
    uint32_t flags;   /* kind | SEG_FLAG_AUX */
    uint64_t aux_off; /* where its side data starts in the .aux (format 2) */
    uint32_t aux_len; /* bytes of side data (0: none) */
};

static inline enum seg_kind seg_kind_of(const struct seg_entry *e)
{
    return (enum seg_kind)(e->flags & SEG_KIND_MASK);
}

/* One entry to append: see seg_append_items. */
struct seg_item {
    uint32_t len;    /* bytes in the .log ('\n' included); 0 unless SEG_RECORD */
    uint8_t kind;    /* enum seg_kind */
    const void *aux; /* side data for the .aux file (a key and headers, a
                        Raft configuration ...), copied; NULL when aux_len 0 */
    uint32_t aux_len;
    int64_t ts; /* its timestamp; 0: the batch's (the ts argument) */
    bool opaque; /* a record that is not one plain line (its bytes hold a '\n'
                    before the last, or side data): it must never be rebuilt
                    from lines, so it goes to an indexed segment (plog.c) */
};

struct segment {
    uint64_t base_off;  /* offset of the first record (also the file name) */
    uint64_t base_pos;  /* byte position of the first byte of the .log */
    uint64_t count;     /* records in the segment */
    uint64_t bytes;     /* bytes in the .log */
    uint64_t salt;      /* random per file; seeds every checksum */
    int64_t first_ts;   /* timestamp of the first record, or creation time */
    int64_t last_ts;    /* timestamp of the last record, or creation time */
    uint8_t version;    /* index format: 1 (32-byte entries, records only) or 2 */
    uint32_t esize;     /* bytes per index entry */
    uint64_t aux_bytes; /* bytes in the .aux (format 2) */
    int log_fd;
    int idx_fd;
    int aux_fd; /* format 2 only, else -1 */
    /* Entries [0, vcount) were checked against their checksums since the
     * files were opened, or written by this process: reads below vend need
     * no check (see seg_verify).  vend and vaux are where entry vcount
     * starts in the .log and the .aux. */
    uint64_t vcount, vend, vaux;
    bool vbad; /* the entry at vcount was found damaged by this scrub pass */
    /* Indexed (header flag): recovery never rebuilds entries from lines of
     * the .log, because some records here are not one line each (a Kafka
     * record's value may hold '\n' or any byte); every append is
     * acknowledged only once its index entries are durable too. */
    bool indexed;
};

/* Creates dir/%020llu.{log,aux,idx} (format 2) for a new, empty segment and makes the
 * header and the names durable (fdatasync + fsync dir) before returning.
 * Fails with -EEXIST if the files exist.  indexed: see struct segment. */
int seg_create(struct segment *s, const char *dir, uint64_t base_off, uint64_t base_pos,
               bool indexed);

/* Makes an empty segment indexed, durably (its header flag). */
int seg_set_indexed(struct segment *s);

/* Opens an existing segment.  Reads and checks the header (-EBADMSG when it is
 * not ours or names another base offset) and the last entry; verifies nothing
 * else: seg_recover() does that for the unflushed tail. */
int seg_open(struct segment *s, const char *dir, uint64_t base_off);

/* Verifies the entries from index `from` on against their checksums and the
 * .log bytes, keeps the longest valid prefix, then (with `rebuild`) rebuilds
 * entries for complete '\n'-terminated lines found in the .log beyond it
 * (timestamps `rebuild_ts`), and truncates the files to what is valid, so
 * that no torn record survives.  A Raft log does not rebuild: an entry whose
 * index entry is gone was never acknowledged (followers sync the index
 * before they acknowledge), and a line alone cannot say its kind, term or
 * side data; nor does an indexed segment.  *verified and *rebuilt
 * (optional) count entries checked and added. */
int seg_recover(struct segment *s, uint64_t from, bool rebuild, int64_t rebuild_ts,
                uint64_t *verified, uint64_t *rebuilt);

/* Appends n records whose bytes are the concatenation of iov (at most 8
 * pieces) and whose lengths (each including its '\n') are lens[0..n).  Writes
 * the .log and then the .idx, both in the page cache only.  On failure (e.g.
 * -ENOSPC) both files are truncated back and the segment is unchanged. */
int seg_append(struct segment *s, const struct iovec *iov, int iovcnt, const uint32_t *lens,
               size_t n, int64_t ts);

/* Appends n entries of any kind: the .log gets the bytes of the records
 * (items[i].len each, the concatenation of iov), the .aux their side data,
 * the .idx their entries, in that order, in the page cache only.  A format
 * 1 segment takes plain records only (-EOPNOTSUPP otherwise: roll first).
 * On failure all three files are truncated back. */
int seg_append_items(struct segment *s, const struct iovec *iov, int iovcnt,
                     const struct seg_item *items, size_t n, int64_t ts);

/* Turns an empty format 1 segment into format 2 in place (creates its .aux,
 * then rewrites the header's version byte; both durable).  A crash between
 * leaves a format 1 segment and a stray .aux, which the next upgrade
 * reuses.  -EINVAL unless s is format 1 and empty. */
int seg_upgrade(struct segment *s, const char *dir);

/* Reads entry e's side data (e->aux_len bytes) into buf. */
int seg_read_aux(const struct segment *s, const struct seg_entry *e, void *buf);

/* Reads entry i (0 <= i < count). */
int seg_entry(const struct segment *s, uint64_t i, struct seg_entry *e);

/* Reads entries [i, i + n) (within the segment) with few reads. */
int seg_entries(const struct segment *s, uint64_t i, size_t n, struct seg_entry *out);

/* Reads len bytes of the .aux from off (side data of consecutive entries
 * is contiguous there). */
int seg_read_aux_range(const struct segment *s, uint64_t off, size_t len, void *buf);

/* Checks entries [lo, hi) (clamped to the segment) as recovery does: each
 * continues the previous one, fits the files, a record ends in '\n', and its
 * check matches its bytes and side data.  Entries below vcount are known
 * good and skipped; a range that starts at or below vcount moves vcount up
 * past what it checked.  0; -EBADMSG with *bad (an index) at the first
 * damaged entry (bit rot, a cut or overwritten file); or an I/O error. */
int seg_verify(struct segment *s, uint64_t lo, uint64_t hi, uint64_t *bad);

/* Writes entry i anew over damage: its record bytes (rec, e->len) and side
 * data (aux) at the places e names, and the index entry itself with a
 * fresh check; in the page cache (the caller syncs).  e must continue entry
 * i - 1 (position and aux offset). */
int seg_repair(struct segment *s, uint64_t i, const struct seg_entry *e, const void *rec,
               const void *aux);

/* Index of the record containing absolute position pos (binary search). */
int seg_find_pos(const struct segment *s, uint64_t pos, uint64_t *index);

/* Drops records [count, s->count) from both files. */
int seg_truncate(struct segment *s, uint64_t count);

/* fdatasync of the .log, and of the .idx and .aux when with_index. */
int seg_sync(const struct segment *s, bool with_index);

void seg_close(struct segment *s);

/* Closes and unlinks its files (.idx first: a .log without .idx is the
 * recognisable remains of a removal cut short). */
int seg_remove(struct segment *s, const char *dir);

/* Parses a segment file name "%020llu.log"; 0 or -EINVAL. */
int seg_parse_name(const char *name, uint64_t *base_off);

/* While on, seg_create makes its files without syncing them: the caller
 * makes many at once (a topic of many partitions) and syncs the file
 * system once (sys_syncfs) before it makes them visible.  Loop thread. */
void seg_sync_defer(bool on);

#endif
