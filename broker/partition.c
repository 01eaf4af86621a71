/*
 * partition — a partition: its log plus the commit point and group commit.
 *
 * WHY A SEPARATE COMMIT POINT
 *   The log end moves as soon as records are written to the page cache; the
 *   commit point (Kafka's high watermark) moves only once they are durable
 *   (fsync=always) — later, in a cluster, once a majority has them.  Readers
 *   and stat see [first, commit) only, so nothing is ever shown that a crash
 *   could take back.
 *
 * GROUP COMMIT
 *   At most one fdatasync job per partition runs in the thread pool.  Appends
 *   that arrive meanwhile are written to the page cache at once and queue a
 *   waiter; when the job ends, every waiter it covered is answered and, if
 *   more are queued, one new job covers them all.  So N concurrent writers
 *   share ~1 fdatasync per round trip instead of paying N (Redis's
 *   before-sleep fsync, with the reply after it).
 *
 *   If fdatasync fails, the bytes past the commit point are cut off again and
 *   every waiter gets the error: a write either becomes durable or reports
 *   failure and leaves nothing behind.
 *
 * INDEX CHECKPOINTS
 *   The .idx files are not synced per write.  Once a second the housekeeping
 *   timer syncs logs and indexes up to the commit point and writes the
 *   checkpoint file, which bounds what recovery must verify at start.
 */
#include "broker/internal.h"
#include "broker/pgroup.h"
#include "broker/prodtab.h"
#include "broker/record.h"
#include "broker/sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void job_start(struct part *p, struct part_job *j);

static void answer(struct waiter *w, int status)
{
    if (w->pcb)
        w->pcb(w->arg, status, w->first_off);
    else
        w->cb(w->arg, status);
    free(w);
}

/* The term every record of a single node is written in.  The Raft layer will
 * pass the leader's term here. */
#define SINGLE_NODE_TERM 1

int part_open(struct broker *b, struct topic *t, uint32_t id, bool create, struct part **out)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/%" PRIu32, t->dir, id) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    struct part *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    /* In a cluster the log is a Raft log, on the replicas' nodes only. */
    bool raft = b->cfg.npeers && t->rf;
    p->local = topic_has_replica(t, id, b->cfg.node_id);
    int rc = !p->local ? 0 : raft ? plog_open_raft(&p->log, dir, create) : plog_open(&p->log, dir, create);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->b = b;
    p->t = t;
    p->id = id;
    p->refs = 1;
    p->ctime_ms = t->created_ms;
    b->rec.partitions++;
    if (!p->local) {
        /* Another node's: reads and writes go there (pgroup). */
        rc = b->cluster ? pgroup_open(b->cluster, p) : 0;
        if (rc < 0) {
            free(p);
            return rc;
        }
        *out = p;
        return 0;
    }
    p->term = p->log.nterms ? p->log.terms[p->log.nterms - 1].term : SINGLE_NODE_TERM;
    if (p->term < SINGLE_NODE_TERM)
        p->term = SINGLE_NODE_TERM;
    /* After recovery everything on disk was verified durable or cut off
     * (a Raft log: pgroup_open sets the commit point it knows). */
    p->commit_pos = plog_end_pos(&p->log);
    p->commit_off = plog_next_off(&p->log);
    p->mtime_ms = plog_active(&p->log)->last_ts;
    b->rec.segments += p->log.rec.segments;
    b->rec.verified += p->log.rec.verified;
    b->rec.rebuilt += p->log.rec.rebuilt;
    b->rec.dropped_bytes += p->log.rec.dropped_bytes;
    if (raft && b->cluster && (rc = pgroup_open(b->cluster, p)) < 0) {
        plog_close(&p->log);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void part_ref(struct part *p)
{
    p->refs++;
}

void part_unref(struct part *p)
{
    if (--p->refs > 0)
        return;
    if (p->g)
        pgroup_close(p, -ESTALE);
    if (p->local)
        plog_close(&p->log);
    free(p->prod);
    free(p);
}

bool part_deleted(const struct part *p)
{
    return p->t == NULL;
}

struct topic *part_topic(const struct part *p)
{
    return p->t;
}

static void fail_waiters(struct part *p, int status)
{
    struct waiter *w = p->wq_head;
    p->wq_head = p->wq_tail = NULL;
    while (w) {
        struct waiter *next = w->next;
        answer(w, status);
        w = next;
    }
}

void part_detach(struct part *p)
{
    p->t = NULL;
    part_notify(p);
    if (p->g)
        pgroup_close(p, -ESTALE);
    /* Waiters stay: their records were written; the running job answers
     * them (durable or not, the topic is gone either way). */
    part_unref(p);
}

void part_list(const struct part *p, char which, char *buf, size_t n)
{
    if (p->g)
        pgroup_list(p->g, which, buf, n);
    else
        snprintf(buf, n, "%" PRIu32, p->b->cfg.node_id);
}

void part_info(const struct part *p, struct part_info *o)
{
    o->id = p->id;
    o->first_off = p->local ? plog_first_off(&p->log) : 0;
    o->next_off = p->commit_off;
    o->first_pos = p->local ? plog_first_pos(&p->log) : 0;
    o->end_pos = p->commit_pos;
    o->term = p->term;
    o->leader = p->b->cfg.node_id;
    o->segments = p->local ? p->log.nsegs : 0;
    o->mtime_ms = p->mtime_ms;
    o->ctime_ms = p->ctime_ms;
    if (p->g)
        pgroup_info(p->g, o);
}

/* ------------------------------------------------------------ watches */

void part_watch(struct part *p, struct part_watch *w, void (*cb)(struct part_watch *w))
{
    part_unwatch(w);
    w->cb = cb;
    w->next = p->watch;
    if (p->watch)
        p->watch->pprev = &w->next;
    w->pprev = &p->watch;
    p->watch = w;
}

void part_unwatch(struct part_watch *w)
{
    if (!w->pprev)
        return;
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    w->next = NULL;
    w->pprev = NULL;
}

void part_notify(struct part *p)
{
    /* The list moves to a local head first: a callback may arm its watch
     * again (on the new list) or take back one still waiting here. */
    struct part_watch *list = p->watch, *w;
    p->watch = NULL;
    if (list)
        list->pprev = &list;
    while ((w = list)) {
        list = w->next;
        if (list)
            list->pprev = &list;
        w->next = NULL;
        w->pprev = NULL;
        w->cb(w);
    }
}

/* ------------------------------------------------------------ group commit */

static void answer_committed(struct part *p)
{
    while (p->wq_head && p->wq_head->end_pos <= p->commit_pos) {
        struct waiter *w = p->wq_head;
        p->wq_head = w->next;
        if (!p->wq_head)
            p->wq_tail = NULL;
        answer(w, 0);
    }
}

static void job_work(uv_work_t *req)
{
    struct part_job *j = req->data;
    j->rc = plog_sync_run(&j->sync);
    if (j->rc == 0 && j->checkpoint)
        j->rc = plog_checkpoint_write(j->p->log.dir, j->off);
}

static void sync_done(struct part *p, struct part_job *j)
{
    p->sync_busy = false;
    if (j->rc == 0) {
        if (j->pos > p->commit_pos) {
            p->commit_pos = j->pos;
            p->commit_off = j->off;
            p->mtime_ms = sys_now_ms();
            part_notify(p);
        }
        answer_committed(p);
        /* Answering may have queued new waiters and started their job. */
        if (p->wq_head && !p->sync_busy)
            job_start(p, &p->sync);
        return;
    }
    /* Not durable: take back everything past the commit point. */
    mk_log(MK_ERROR, "%s: fdatasync failed: %s; %" PRIu64 " uncommitted bytes undone", p->log.dir,
           strerror(-j->rc), plog_end_pos(&p->log) - p->commit_pos);
    int rc = plog_truncate(&p->log, p->commit_off);
    if (rc < 0)
        mk_log(MK_ERROR, "%s: cannot undo: %s", p->log.dir, strerror(-rc));
    if (p->prod) /* it may name records that are gone: searched again */
        prodtab_init(p->prod, plog_next_off(&p->log));
    fail_waiters(p, j->rc);
}

static void job_after(uv_work_t *req, int status)
{
    struct part_job *j = req->data;
    struct part *p = j->p;
    if (status < 0 && j->rc == 0)
        j->rc = status;
    if (j == &p->sync) {
        sync_done(p, j);
    } else {
        p->flush_busy = false;
        if (j->rc == 0 && j->off > p->log.ckpt_off && j->off <= plog_next_off(&p->log))
            p->log.ckpt_off = j->off;
        else if (j->rc < 0)
            mk_log(MK_WARN, "%s: checkpoint failed: %s", p->log.dir, strerror(-j->rc));
    }
    broker_job_end(p->b);
    part_unref(p);
}

/* The first byte position not known durable: where the checkpointed index
 * ends (everything below the checkpoint was fdatasynced, logs and indexes). */
static uint64_t unsynced_from(const struct part *p)
{
    struct seg_entry e;
    if (plog_entry(&p->log, p->log.ckpt_off, &e) == 0)
        return e.pos;
    return p->commit_pos;
}

/* Queues job j: the sync job makes [commit_pos, end) durable; the flush job
 * makes logs and indexes from the checkpoint to the commit point durable and
 * records the checkpoint. */
static void job_start(struct part *p, struct part_job *j)
{
    int rc;
    j->p = p;
    j->work.data = j;
    j->rc = 0;
    if (j == &p->sync) {
        j->pos = plog_end_pos(&p->log);
        j->off = plog_next_off(&p->log);
        j->checkpoint = false;
        rc = plog_sync_prepare(&p->log, p->commit_pos, false, &j->sync);
        if (rc == 0)
            p->sync_busy = true;
    } else {
        uint64_t from = unsynced_from(p);
        j->pos = p->commit_pos;
        j->off = p->commit_off;
        j->checkpoint = true;
        rc = plog_sync_prepare(&p->log, from, true, &j->sync);
        if (rc == 0)
            p->flush_busy = true;
    }
    if (rc == 0) {
        part_ref(p);
        broker_job_start(p->b);
        rc = uv_queue_work(p->b->loop, &j->work, job_work, job_after);
        if (rc < 0) {
            plog_sync_run(&j->sync);
            broker_job_end(p->b);
            part_unref(p);
        }
    }
    if (rc < 0) {
        if (j == &p->sync) {
            p->sync_busy = false;
            j->rc = rc;
            sync_done(p, j);
        } else {
            p->flush_busy = false;
        }
    }
}

static int add_waiter(struct part *p, part_done_cb cb, part_placed_cb pcb, uint64_t first_off,
                      void *arg)
{
    struct waiter *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->end_pos = plog_end_pos(&p->log);
    w->cb = cb;
    w->pcb = pcb;
    w->first_off = first_off;
    w->arg = arg;
    w->next = NULL;
    if (p->wq_tail)
        p->wq_tail->next = w;
    else
        p->wq_head = w;
    p->wq_tail = w;
    if (!p->sync_busy)
        job_start(p, &p->sync);
    return 0;
}

/* Appends to this node's own log (a single node): records as lens, or as
 * items with side data; answers cb or pcb once they are committed. */
static int append_local(struct part *p, const struct iovec *iov, int iovcnt, const uint32_t *lens,
                        const struct seg_item *items, size_t n, part_done_cb cb,
                        part_placed_cb pcb, void *arg)
{
    const struct mk_config *c = &p->b->cfg;
    int64_t now = sys_now_ms();
    int64_t ts = now > plog_active(&p->log)->last_ts ? now : plog_active(&p->log)->last_ts;
    uint64_t before = plog_next_off(&p->log);
    uint64_t seg_bytes = (uint64_t)topic_config_get(&p->t->conf, c, TOPIC_SEGMENT_BYTES);
    int64_t seg_ms = topic_config_get(&p->t->conf, c, TOPIC_SEGMENT_MS);
    int rc = items ? plog_append_items(&p->log, p->term, ts, iov, iovcnt, items, n, seg_bytes, seg_ms)
                   : plog_append(&p->log, p->term, ts, iov, iovcnt, lens, n, seg_bytes, seg_ms);
    if (rc < 0)
        return rc;
    if (c->fsync == MK_FSYNC_NEVER) {
        /* Committed as soon as it is in the page cache (no waiters exist
         * in this mode: part_sync syncs directly). */
        p->commit_pos = plog_end_pos(&p->log);
        p->commit_off = plog_next_off(&p->log);
        p->mtime_ms = now;
        part_notify(p);
        if (pcb)
            pcb(arg, 0, before);
        else
            cb(arg, 0);
        return 0;
    }
    rc = add_waiter(p, cb, pcb, before, arg);
    if (rc < 0) {
        /* Cannot wait for it, so it must not stay; records appended before
         * it belong to other waiters (a running job may be syncing them). */
        plog_truncate(&p->log, before);
        if (p->prod)
            prodtab_init(p->prod, plog_next_off(&p->log));
    }
    return rc;
}

int part_append(struct part *p, const struct iovec *iov, int iovcnt, const uint32_t *lens, size_t n,
                part_done_cb cb, void *arg)
{
    if (!p->t)
        return -ESTALE;
    if (p->g)
        return pgroup_append(p, iov, iovcnt, lens, n, cb, arg);
    if (p->b->cfg.npeers && p->t->rf)
        return -EAGAIN; /* a cluster's partition before the port is up */
    if (n == 0) {
        cb(arg, 0);
        return 0;
    }
    return append_local(p, iov, iovcnt, lens, NULL, n, cb, NULL, arg);
}

/* Fills items from recs and checks the record bytes: each ends in '\n';
 * one holding another '\n' is opaque. */
static int recs_to_items(const struct iovec *iov, int iovcnt, const struct part_rec *recs,
                         size_t n, struct seg_item *items)
{
    int vi = 0;
    size_t voff = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t left = recs[i].len, newlines = 0;
        uint8_t last = 0;
        if (left == 0)
            return -EINVAL;
        while (left) {
            while (vi < iovcnt && voff == iov[vi].iov_len) {
                vi++;
                voff = 0;
            }
            if (vi >= iovcnt)
                return -EINVAL;
            const uint8_t *b = (const uint8_t *)iov[vi].iov_base + voff;
            size_t k = iov[vi].iov_len - voff < left ? iov[vi].iov_len - voff : left;
            for (const uint8_t *q = b; (q = memchr(q, '\n', (size_t)(b + k - q))); q++)
                newlines++;
            last = b[k - 1];
            voff += k;
            left -= (uint32_t)k;
        }
        if (last != '\n')
            return -EINVAL;
        items[i] = (struct seg_item){.len = recs[i].len,
                                     .kind = SEG_RECORD,
                                     .aux = recs[i].aux,
                                     .aux_len = recs[i].aux_len,
                                     .opaque = newlines > 1 || recs[i].aux_len};
    }
    return 0;
}

/* A single node's idempotence: 1 (and cb answered) when the batch is there
 * already, 0 to store it, -EILSEQ out of order. */
static int local_dedup(struct part *p, const struct part_producer *prod, size_t n,
                       part_placed_cb cb, void *arg)
{
    if (!p->prod) {
        if (!(p->prod = malloc(sizeof(*p->prod))))
            return -ENOMEM;
        prodtab_init(p->prod, plog_next_off(&p->log));
    }
    uint32_t skip;
    uint64_t end, term;
    int rc = prodtab_check(p->prod, &p->log, prod->id, sys_now_ms() - KAFKA_RETRY_MS, prod->seq,
                           (uint32_t)n, &skip, &end, &term);
    if (rc != 1)
        return rc;
    if (end > p->commit_off) {
        /* Still on its way to disk: answered with the batch it repeats. */
        int wr = add_waiter(p, NULL, cb, end - n, arg);
        return wr < 0 ? wr : 1;
    }
    cb(arg, 0, end - n);
    return 1;
}

int part_append_recs(struct part *p, const struct iovec *iov, int iovcnt,
                     const struct part_rec *recs, size_t n, const struct part_producer *prod,
                     part_placed_cb cb, void *arg)
{
    if (!p->t)
        return -ESTALE;
    if (n > UINT32_MAX / 2)
        return -EINVAL;
    if (p->g)
        return pgroup_append_recs(p, iov, iovcnt, recs, n, prod ? prod->id : 0,
                                  prod ? prod->seq : 0, cb, arg);
    if (p->b->cfg.npeers && p->t->rf)
        return -EAGAIN;
    if (n == 0) {
        cb(arg, 0, plog_next_off(&p->log));
        return 0;
    }
    int rc;
    if (prod && (rc = local_dedup(p, prod, n, cb, arg)) != 0)
        return rc < 0 ? rc : 0;
    struct seg_item *items = malloc(n * sizeof(*items));
    uint8_t *side = NULL;
    if (!items)
        return -ENOMEM;
    rc = recs_to_items(iov, iovcnt, recs, n, items);
    if (rc == 0 && prod) {
        /* Each record's side data: the producer field, then its own. */
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += AUX_PRODUCER_LEN + recs[i].aux_len;
        if (!(side = malloc(total)))
            rc = -ENOMEM;
        uint8_t *at = side;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            aux_put_producer(at, prod->id, prod->seq + i);
            if (recs[i].aux_len)
                memcpy(at + AUX_PRODUCER_LEN, recs[i].aux, recs[i].aux_len);
            items[i].aux = at;
            items[i].aux_len = AUX_PRODUCER_LEN + recs[i].aux_len;
            items[i].opaque = true;
            at += items[i].aux_len;
        }
    }
    uint64_t first = plog_next_off(&p->log);
    if (rc == 0)
        rc = append_local(p, iov, iovcnt, NULL, items, n, NULL, cb, arg);
    if (rc == 0 && prod)
        prodtab_note(p->prod, prod->id, prod->seq + n - 1, first + n - 1, p->term);
    free(items);
    free(side);
    return rc;
}

int part_sync(struct part *p, part_done_cb cb, void *arg)
{
    if (!p->t)
        return -ESTALE;
    if (p->b->cfg.npeers && p->t->rf) {
        /* Every write was answered only once durable on a majority. */
        cb(arg, 0);
        return 0;
    }
    if (p->b->cfg.fsync == MK_FSYNC_NEVER) {
        /* Committed bytes may sit in the page cache since the last
         * checkpoint.  An explicit fsync(2) is rare: sync in the loop. */
        struct plog_sync s;
        int rc = plog_sync_prepare(&p->log, unsynced_from(p), false, &s);
        if (rc == 0)
            rc = plog_sync_run(&s);
        cb(arg, rc);
        return 0;
    }
    if (!p->wq_head && p->commit_pos == plog_end_pos(&p->log)) {
        cb(arg, 0);
        return 0;
    }
    return add_waiter(p, cb, NULL, 0, arg);
}

int part_entry(struct part *p, uint64_t off, struct part_entry *pe, void *aux, size_t aux_cap)
{
    if (!p->t)
        return -ESTALE;
    if (!p->local)
        return -EREMOTE;
    if (off < plog_first_off(&p->log))
        return -ENODATA;
    if (off >= p->commit_off)
        return -ERANGE;
    struct seg_entry e;
    int rc = plog_entry(&p->log, off, &e);
    if (rc < 0)
        return rc;
    *pe = (struct part_entry){.record = seg_kind_of(&e) == SEG_RECORD,
                              .pos = e.pos,
                              .len = e.len,
                              .ts = e.ts,
                              .aux_len = e.aux_len};
    if (aux && e.aux_len) {
        if (e.aux_len > aux_cap)
            return -EMSGSIZE;
        if ((rc = plog_read_aux(&p->log, off, &e, aux)) < 0)
            return rc;
    }
    return 0;
}

int part_entries(struct part *p, uint64_t off, size_t max, struct part_entry *out, size_t *at,
                 size_t *n, void *aux, size_t aux_cap)
{
    enum { BATCH = 256 };
    *n = 0;
    if (!p->t)
        return -ESTALE;
    if (!p->local)
        return -EREMOTE;
    if (off < plog_first_off(&p->log))
        return -ENODATA;
    if (off >= p->commit_off || !max)
        return 0;
    const struct segment *s = plog_segment_of(&p->log, off);
    if (!s)
        return -ERANGE;
    uint64_t end = s->base_off + s->count;
    if (end > p->commit_off)
        end = p->commit_off;
    if (max > end - off)
        max = (size_t)(end - off);
    if (max > BATCH)
        max = BATCH;
    struct seg_entry e[BATCH];
    int rc = seg_entries(s, off - s->base_off, max, e);
    if (rc < 0)
        return rc;
    /* As many as whose side data fits; the first always (or -EMSGSIZE). */
    size_t k = 0;
    uint64_t aux0 = e[0].aux_off, auxn = aux0;
    for (; k < max; k++) {
        if (e[k].aux_len && (e[k].aux_off != auxn || e[k].aux_off + e[k].aux_len - aux0 > aux_cap))
            break;
        if (e[k].aux_len)
            auxn = e[k].aux_off + e[k].aux_len;
        out[k] = (struct part_entry){.record = seg_kind_of(&e[k]) == SEG_RECORD,
                                     .pos = e[k].pos,
                                     .len = e[k].len,
                                     .ts = e[k].ts,
                                     .aux_len = e[k].aux_len};
        at[k] = e[k].aux_len ? (size_t)(e[k].aux_off - aux0) : 0;
    }
    if (k == 0)
        return -EMSGSIZE;
    if ((rc = seg_read_aux_range(s, aux0, (size_t)(auxn - aux0), aux)) < 0)
        return rc;
    *n = k;
    return 0;
}

uint64_t part_offset_for_time(struct part *p, int64_t ts_ms)
{
    if (!p->t || !p->local)
        return p->commit_off;
    return plog_offset_for_time(&p->log, ts_ms, p->commit_off);
}

int part_read(struct part *p, uint64_t pos, size_t size, int *fd, uint64_t *fdoff, size_t *n)
{
    if (!p->t)
        return -ESTALE;
    if (!p->local)
        return -EREMOTE;
    if (pos >= p->commit_pos) {
        if (pos < plog_first_pos(&p->log))
            return -ENODATA;
        *n = 0;
        return 0;
    }
    if (size > p->commit_pos - pos)
        size = (size_t)(p->commit_pos - pos);
    /* Never served unchecked: records not checked since the files were
     * opened are checked first (once: plog_verify remembers). */
    uint64_t bad;
    int rc = plog_verify(&p->log, pos, size, &bad);
    if (rc == -EBADMSG) {
        part_damaged(p, bad);
        return -EIO;
    }
    if (rc < 0)
        return rc;
    return plog_locate(&p->log, pos, size, fd, fdoff, n);
}

int part_scrub(struct part *p, int64_t *budget, uint64_t *checked)
{
    if (!p->local || !p->t)
        return 1;
    struct plog *l = &p->log;
    for (size_t i = 0; i < l->nsegs && *budget > 0; i++) {
        struct segment *s = &l->segs[i];
        if (s->vcount >= s->count || s->vbad)
            continue;
        uint64_t left = s->base_pos + s->bytes > s->vend ? s->base_pos + s->bytes - s->vend : 0;
        uint64_t want = left < (uint64_t)*budget ? left : (uint64_t)*budget;
        uint64_t before = s->vend, bad, b;
        int rc = want ? plog_verify(l, s->vend, (size_t)want, &bad)
                      : seg_verify(s, s->vcount, s->count, &b); /* entries without bytes */
        if (!want && rc == -EBADMSG)
            bad = s->base_off + b;
        uint64_t done = s->vend - before;
        *checked += done;
        *budget -= (int64_t)(done > 4096 ? done : 4096);
        if (rc == -EBADMSG) {
            /* This segment's rest waits for the repair or the next pass;
             * the other segments are checked on. */
            s->vbad = true;
            part_damaged(p, bad);
            continue;
        }
        if (rc < 0)
            return 1;
        if (s->vcount < s->count)
            return 0;
    }
    for (size_t i = 0; i < l->nsegs; i++)
        if (l->segs[i].vcount < l->segs[i].count && !l->segs[i].vbad)
            return 0;
    return 1;
}

void part_scrub_reset(struct part *p)
{
    if (!p->local)
        return;
    for (size_t i = 0; i < p->log.nsegs; i++) {
        struct segment *s = &p->log.segs[i];
        s->vcount = 0;
        s->vend = s->base_pos;
        s->vaux = 0;
        s->vbad = false;
    }
}

int part_transfer(struct part *p, uint32_t to)
{
    if (!p->t)
        return -ENOENT;
    if (!p->g)
        return -EPERM;
    return pgroup_transfer(p->g, to);
}

bool part_read_elsewhere(const struct part *p)
{
    return p->g && pgroup_leader_elsewhere(p->g);
}

void part_damaged(struct part *p, uint64_t off)
{
    p->damaged++;
    if (p->damage_last != off + 1) {
        p->damage_last = off + 1;
        const struct segment *s = plog_segment_of(&p->log, off);
        struct seg_entry e = {0};
        plog_entry(&p->log, off, &e); /* its position, as far as the index says */
        mk_log(MK_ERROR,
               "%s/%" PRIu32 ": the entry at offset %" PRIu64 " (position %" PRIu64
               ", segment %020" PRIu64 ".log in %s) fails its checks: %s",
               p->t ? topic_name(p->t) : "?", p->id, off, e.pos, s ? s->base_off : 0, p->log.dir,
               p->g ? "repairing it from another replica" : "not served (EIO)");
    }
    if (p->g)
        pgroup_repair(p->g, off);
}

/* ------------------------------------------------------------ housekeeping */

void part_housekeep(struct part *p, int64_t now_ms)
{
    if (p->b->cfg.npeers && p->t && p->t->rf) {
        /* The replica syncs and checkpoints its log itself; its leader
         * decides rolls and retention for every replica. */
        if (p->g && p->local) {
            pgroup_housekeep(p->g, now_ms);
            pgroup_save_commit(p->g);
        }
        return;
    }
    const struct mk_config *c = &p->b->cfg;
    const struct topic_config *tc = p->t ? &p->t->conf : NULL;
    struct segment *a = plog_active(&p->log);

    /* Roll by age, only when nothing is waiting on the active segment. */
    if (a->count > 0 && !p->sync_busy && !p->wq_head &&
        now_ms - a->first_ts >= topic_config_get(tc, c, TOPIC_SEGMENT_MS)) {
        int rc = plog_roll(&p->log);
        if (rc < 0)
            mk_log(MK_WARN, "%s: roll failed: %s", p->log.dir, strerror(-rc));
    }

    size_t deleted = 0;
    int rc = plog_retain(&p->log, now_ms, topic_config_get(tc, c, TOPIC_RETENTION_MS),
                         topic_config_get(tc, c, TOPIC_RETENTION_BYTES), p->commit_off, &deleted);
    if (rc < 0)
        mk_log(MK_WARN, "%s: retention: %s", p->log.dir, strerror(-rc));
    if (p->log.ckpt_off < plog_first_off(&p->log))
        p->log.ckpt_off = plog_first_off(&p->log);

    if (!p->flush_busy && p->log.ckpt_off < p->commit_off)
        job_start(p, &p->flush);
}

void part_final_flush(struct part *p)
{
    if (!p->local)
        return;
    /* Called with no job running: make everything durable, checkpoint at
     * the end, so that the next start has nothing to verify. */
    struct plog_sync s;
    int rc = plog_sync_prepare(&p->log, unsynced_from(p), true, &s);
    if (rc == 0)
        rc = plog_sync_run(&s);
    if (rc == 0 && p->commit_off > p->log.ckpt_off)
        rc = plog_checkpoint_write(p->log.dir, p->commit_off);
    if (rc < 0)
        mk_log(MK_WARN, "%s: final flush failed: %s", p->log.dir, strerror(-rc));
}

int part_read_remote(struct part *p, uint64_t pos, size_t size, part_read_cb cb, void *arg)
{
    if (!p->t)
        return -ESTALE;
    if (!p->g)
        return -EINVAL; /* a single node: nobody to ask */
    return pgroup_read(p->g, pos, size, cb, arg);
}

bool part_replicated(const struct part *p)
{
    return p->g != NULL;
}

bool part_remote(const struct part *p)
{
    return p->g && !p->local;
}
