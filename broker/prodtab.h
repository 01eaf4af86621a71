/*
 * prodtab — who wrote last into a partition log: per producer id, the
 * sequence of its last record there and where it is.  A write sent again
 * (a node's forwarded write after a timeout, a Kafka producer's retry) is
 * recognised by its sequence and stored once.
 *
 * A small table (PRODTAB_MAX producers, least recently used out) fed by
 * every record with a producer field (record.h) as it is written.  An entry
 * is trusted only while the log still holds that offset in that term;
 * otherwise (a truncation, a restart, an evicted entry) the tail of the log
 * is searched for the producer's last record: at most PRODTAB_SCAN records
 * back, none older than `oldest_ms`.
 *
 * Loop thread only.
 */
#ifndef MK_PRODTAB_H
#define MK_PRODTAB_H

#include "broker/plog.h"

#include <stdbool.h>
#include <stdint.h>

#define PRODTAB_MAX  64
#define PRODTAB_SCAN 65536

struct prodtab_ent {
    uint64_t id, seq, off, term;
    int64_t used_ms;
};

struct prodtab {
    struct prodtab_ent e[PRODTAB_MAX];
    uint64_t open_next; /* the log's end when this process opened it */
};

/* Starts empty over a log that ends at next_off now. */
void prodtab_init(struct prodtab *t, uint64_t next_off);

/* Record `off` (term `term`) of producer id has sequence seq (nonzero). */
void prodtab_note(struct prodtab *t, uint64_t id, uint64_t seq, uint64_t off, uint64_t term);

/* Feeds every record of side data aux (the producer field, if any). */
void prodtab_note_aux(struct prodtab *t, const uint8_t *aux, uint32_t len, uint64_t off,
                      uint64_t term);

/* The last record of producer id in l: its sequence, offset and term; false
 * when none is known (the search found none, or only records older than
 * oldest_ms). */
bool prodtab_lookup(struct prodtab *t, const struct plog *l, uint64_t id, int64_t oldest_ms,
                    uint64_t *seq, uint64_t *off, uint64_t *term);

/* Where a write of n records of producer id, sequences seq.., stands:
 *   0        to be stored, from its record *skip on (the ones before are
 *            there already: a resend of a node's write, cut short)
 *   1        all there already: *end_off is the offset after the
 *            producer's last record, *term its term
 *   -EILSEQ  a Kafka producer's batch (PRODUCER_KAFKA) that does not follow
 *            its last one: a gap, or an overlap (Kafka's
 *            OUT_OF_ORDER_SEQUENCE_NUMBER) */
int prodtab_check(struct prodtab *t, const struct plog *l, uint64_t id, int64_t oldest_ms,
                  uint64_t seq, uint32_t n, uint32_t *skip, uint64_t *end_off, uint64_t *term);

#endif
