/*
 * prodtab — see prodtab.h.
 */
#include "broker/prodtab.h"
#include "broker/record.h"
#include "broker/sysio.h"

#include <errno.h>
#include <string.h>

void prodtab_init(struct prodtab *t, uint64_t next_off)
{
    memset(t, 0, sizeof(*t));
    t->open_next = next_off;
}

static struct prodtab_ent *slot(struct prodtab *t, uint64_t id, bool make)
{
    struct prodtab_ent *old = &t->e[0];
    for (int i = 0; i < PRODTAB_MAX; i++) {
        if (t->e[i].id == id)
            return &t->e[i];
        if (t->e[i].used_ms < old->used_ms)
            old = &t->e[i];
    }
    if (!make)
        return NULL;
    memset(old, 0, sizeof(*old));
    old->id = id;
    return old;
}

void prodtab_note(struct prodtab *t, uint64_t id, uint64_t seq, uint64_t off, uint64_t term)
{
    struct prodtab_ent *pr = slot(t, id, true);
    pr->seq = seq;
    pr->off = off;
    pr->term = term;
    pr->used_ms = sys_now_ms();
}

void prodtab_note_aux(struct prodtab *t, const uint8_t *aux, uint32_t len, uint64_t off,
                      uint64_t term)
{
    uint64_t id, seq;
    if (aux_get_producer(aux, len, &id, &seq) == 0)
        prodtab_note(t, id, seq, off, term);
}

bool prodtab_lookup(struct prodtab *t, const struct plog *l, uint64_t id, int64_t oldest,
                    uint64_t *seq, uint64_t *off, uint64_t *term)
{
    struct prodtab_ent *pr = slot(t, id, false);
    if (pr && pr->seq && pr->off >= plog_first_off(l) && pr->off < plog_next_off(l) &&
        plog_term_at(l, pr->off) == pr->term) {
        *seq = pr->seq;
        *off = pr->off;
        *term = pr->term;
        pr->used_ms = sys_now_ms();
        return true;
    }
    if (pr && !pr->seq)
        return false; /* searched before and found none */
    /* Not known, or cut off: search the tail.  What was written since this
     * process opened the log passed through prodtab_note; only older
     * records, recent enough to be resent, are read. */
    uint64_t lo = plog_first_off(l), hi = plog_next_off(l);
    if (!pr && hi > t->open_next)
        hi = t->open_next; /* never seen since: not in what was written since */
    if (hi > lo && hi - lo > PRODTAB_SCAN)
        lo = hi - PRODTAB_SCAN;
    uint8_t buf[512];
    for (uint64_t o = hi; o > lo; o--) {
        struct seg_entry e;
        uint64_t pid, s;
        if (plog_entry(l, o - 1, &e) < 0)
            continue;
        if (e.ts < oldest)
            break;
        /* The producer field comes first in side data: 512 bytes hold it. */
        struct seg_entry head = e;
        if (head.aux_len > sizeof(buf))
            head.aux_len = (uint32_t)sizeof(buf);
        if (!e.aux_len || plog_read_aux(l, o - 1, &head, buf) < 0 ||
            aux_get_producer(buf, head.aux_len, &pid, &s))
            continue;
        if (pid != id)
            continue;
        prodtab_note(t, id, s, o - 1, plog_term_at(l, o - 1));
        *seq = s;
        *off = o - 1;
        *term = plog_term_at(l, o - 1);
        return true;
    }
    pr = slot(t, id, true);
    pr->used_ms = sys_now_ms(); /* seq 0: none */
    return false;
}

#define FIND_SCAN 4096 /* records searched back for an earlier batch of a producer */

/* Producer id's record at offset o: its sequence, or 0. */
static uint64_t seq_at(const struct plog *l, uint64_t o, uint64_t id)
{
    struct seg_entry e;
    uint8_t buf[64];
    uint64_t pid, s;
    if (plog_entry(l, o, &e) < 0 || !e.aux_len)
        return 0;
    struct seg_entry head = e;
    if (head.aux_len > sizeof(buf))
        head.aux_len = (uint32_t)sizeof(buf);
    if (plog_read_aux(l, o, &head, buf) < 0 || aux_get_producer(buf, head.aux_len, &pid, &s) ||
        pid != id)
        return 0;
    return s;
}

/* The offset of producer id's record of sequence seq, searched back from
 * offset `from` (that producer's record of sequence from_seq >= seq): first
 * where it is when the producer's records lie back to back (one batch, or a
 * partition only it writes), then at most FIND_SCAN records back. */
static bool find_seq(const struct plog *l, uint64_t id, uint64_t seq, uint64_t from,
                     uint64_t from_seq, uint64_t *off)
{
    if (from_seq == seq) {
        *off = from;
        return true;
    }
    uint64_t back = from_seq - seq;
    if (back <= from - plog_first_off(l) && seq_at(l, from - back, id) == seq) {
        *off = from - back;
        return true;
    }
    uint64_t lo = plog_first_off(l);
    if (from - lo > FIND_SCAN)
        lo = from - FIND_SCAN;
    uint8_t buf[512];
    for (uint64_t o = from; o > lo; o--) {
        struct seg_entry e;
        uint64_t pid, s;
        if (plog_entry(l, o - 1, &e) < 0 || !e.aux_len)
            continue;
        struct seg_entry head = e;
        if (head.aux_len > sizeof(buf))
            head.aux_len = (uint32_t)sizeof(buf);
        if (plog_read_aux(l, o - 1, &head, buf) < 0 || aux_get_producer(buf, head.aux_len, &pid, &s))
            continue;
        if (pid == id && s == seq) {
            *off = o - 1;
            return true;
        }
        if (pid == id && s < seq)
            return false; /* passed it: not there */
    }
    return false;
}

int prodtab_check(struct prodtab *t, const struct plog *l, uint64_t id, int64_t oldest_ms,
                  uint64_t seq, uint32_t n, uint32_t *skip, uint64_t *end_off, uint64_t *term)
{
    uint64_t last, off, tm;
    bool kafka = id & PRODUCER_KAFKA;
    *skip = 0;
    if (!prodtab_lookup(t, l, id, oldest_ms, &last, &off, &tm))
        return 0; /* a new producer (or one forgotten: taken as it comes) */
    if (last >= seq) {
        if (last - seq >= (uint64_t)n - 1) {
            /* All there: answered with where this write's last record is
             * (an earlier batch of a Kafka producer than its last: searched
             * back for it, for the offset its client is told; a node's own
             * write just waits for the producer's last record, later or
             * not, which is cheaper and as safe). */
            uint64_t at;
            if (kafka && find_seq(l, id, seq + n - 1, off, last, &at)) {
                *end_off = at + 1;
                *term = plog_term_at(l, at);
            } else {
                *end_off = off + 1;
                *term = tm;
            }
            return 1;
        }
        if (kafka)
            return -EILSEQ;
        *skip = (uint32_t)(last - seq + 1);
        return 0;
    }
    if (kafka && seq != last + 1)
        return -EILSEQ;
    return 0;
}
