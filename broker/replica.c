/*
 * replica — see replica.h.
 *
 * THE READY LOOP (process): for each output of the core, in the order
 * raft.h prescribes:
 *   1. reset: plog_reset to the leader's start (durable when it returns);
 *      raft_reset_done once the Ready is advanced;
 *   2. entries: truncate the log after the first one's predecessor, append
 *      them (page cache), remember the last written (index, term);
 *   3. hard state: plog_hardstate_write, durable, before any message;
 *   4. messages: handed to io.send (the port copies them into frames);
 *   5. committed entries: io.committed with the new commit offset and
 *      position (they are durable here: the core applies only persisted
 *      entries);
 *   6. raft_advance; then, outside the Ready, start the sync job if entries
 *      were written since the last one.
 */
#include "broker/le.h"
#include "broker/record.h"
#include "broker/replica.h"
#include "broker/log.h"
#include "broker/sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX   256       /* entries per plog append */
#define SPLIT_BYTES (1u << 20) /* entry bytes per APPEND frame (one record may be more) */

struct sync_job {
    uv_work_t work;
    struct replica *r;
    struct plog_sync sync;
    uint64_t index, term;
    char *dir;          /* a copy: the log may be closed while the job runs */
    uint64_t trunc_gen; /* the replica's at the start */
    bool checkpoint;    /* also write the checkpoint file (at most once a second) */
    int rc;
};

/* A block of payloads handed to the core: the core's messages point into
 * them until the Ready that carries those messages is advanced, even when
 * it asks for more entries (for another follower) meanwhile. */
struct arena {
    struct arena *next;
    char data[];
};

struct replica {
    uv_loop_t *loop;
    struct plog *log;
    struct raft *raft;
    struct replica_io io;
    struct replica_options opt;
    uint64_t written_index, written_term; /* last entry in the page cache */
    uint64_t synced_index;                /* reported to raft_persisted */
    uint64_t trunc_gen;                   /* truncations so far */
    int64_t ckpt_ms;                      /* when the last checkpoint was written */
    bool sync_busy;
    bool closing;
    bool processing;
    struct arena *arena; /* payloads returned by log_entries, until advanced */
    uint8_t snap[8];     /* the log start position, as "snapshot" data */
    struct raft_conf conf; /* opt.conf points here */
    bool failed;         /* a write failed: the core restarts (reboot) */
    int64_t failed_log_ms;
    uint64_t reboots;
};

static int core_new(struct replica *r, bool rebuilding, struct raft **out);

/* ------------------------------------------------------------ payloads */

void replica_payload_encode(uint8_t *buf, int64_t ts, const void *aux, uint32_t aux_len,
                            const void *rec, uint32_t len)
{
    buf[0] = 1;
    buf[1] = 0;
    le_put64(buf + 2, (uint64_t)ts);
    le_put32(buf + 10, aux_len);
    if (aux_len)
        memcpy(buf + REPLICA_PAYLOAD_HDR, aux, aux_len);
    memcpy(buf + REPLICA_PAYLOAD_HDR + aux_len, rec, len);
}

int replica_payload_decode(const void *buf, size_t len, int64_t *ts, const uint8_t **aux,
                           uint32_t *aux_len, const uint8_t **rec, uint32_t *rec_len)
{
    const uint8_t *p = buf;
    if (len < REPLICA_PAYLOAD_HDR || p[0] != 1 || (p[1] & ~1u) != 0)
        return -EBADMSG;
    uint32_t a = le_get32(p + 10);
    if (a > len - REPLICA_PAYLOAD_HDR)
        return -EBADMSG;
    size_t rl = len - REPLICA_PAYLOAD_HDR - a;
    if (p[1] & 1) {
        /* A control entry: its control and nothing else. */
        if (rl != 0 || a != REPLICA_CTL_LEN ||
            (p[REPLICA_PAYLOAD_HDR] != REPLICA_CTL_ROLL && p[REPLICA_PAYLOAD_HDR] != REPLICA_CTL_TRIM))
            return -EBADMSG;
        *ts = (int64_t)le_get64(p + 2);
        *aux = p + REPLICA_PAYLOAD_HDR;
        *aux_len = a;
        *rec = NULL;
        *rec_len = 0;
        return 0;
    }
    if (rl == 0 || rl > UINT32_MAX || p[len - 1] != '\n')
        return -EBADMSG;
    *ts = (int64_t)le_get64(p + 2);
    *aux = p + REPLICA_PAYLOAD_HDR;
    *aux_len = a;
    *rec = p + REPLICA_PAYLOAD_HDR + a;
    *rec_len = (uint32_t)rl;
    return 0;
}

/* ------------------------------------------------------------ the log, as Raft reads it */

static uint64_t log_first(void *ctx)
{
    struct replica *r = ctx;
    return plog_first_off(r->log) + 1;
}

static uint64_t log_last(void *ctx)
{
    struct replica *r = ctx;
    return plog_next_off(r->log);
}

static int log_term(void *ctx, uint64_t index, uint64_t *term)
{
    struct replica *r = ctx;
    if (index == 0) {
        *term = 0;
        return 0;
    }
    uint64_t off = index - 1;
    if (off + 1 < plog_first_off(r->log) || off >= plog_next_off(r->log))
        return -ENOENT;
    *term = plog_term_at(r->log, off);
    return 0;
}

static char *arena_alloc(struct replica *r, size_t need)
{
    struct arena *a = malloc(sizeof(*a) + (need ? need : 1));
    if (!a)
        return NULL;
    a->next = r->arena;
    r->arena = a;
    return a->data;
}

static void arena_free(struct replica *r)
{
    while (r->arena) {
        struct arena *a = r->arena;
        r->arena = a->next;
        free(a);
    }
}

static int log_entries(void *ctx, uint64_t lo, uint64_t hi, struct raft_entry *out)
{
    struct replica *r = ctx;
    struct plog *l = r->log;
    if (lo < log_first(r) || hi > log_last(r) + 1)
        return -ENOENT;
    /* Nothing damaged is sent: checked first (once per entry since open). */
    uint64_t bad;
    int vrc = plog_verify_off(l, lo - 1, hi - 1, &bad);
    if (vrc < 0) {
        if (vrc == -EBADMSG && r->io.damaged)
            r->io.damaged(r->io.ctx, bad);
        return -EIO;
    }
    /* Sizes first: one block holds every payload of the call. */
    size_t need = 0;
    for (uint64_t i = lo; i < hi; i++) {
        struct seg_entry e;
        int rc = plog_entry(l, i - 1, &e);
        if (rc < 0)
            return -ENOENT;
        if (seg_kind_of(&e) == SEG_RECORD || seg_kind_of(&e) == SEG_CONTROL)
            need += REPLICA_PAYLOAD_HDR + e.aux_len + e.len;
        else
            need += e.aux_len;
    }
    char *block = arena_alloc(r, need);
    if (!block)
        return -ENOMEM;
    size_t at = 0;
    for (uint64_t i = lo; i < hi; i++) {
        uint64_t off = i - 1;
        struct seg_entry e;
        int rc = plog_entry(l, off, &e);
        if (rc < 0)
            return -ENOENT;
        struct raft_entry *o = &out[i - lo];
        o->index = i;
        o->term = plog_term_at(l, off);
        uint8_t *p = (uint8_t *)block + at;
        if (seg_kind_of(&e) == SEG_RECORD) {
            int fd;
            uint64_t fdoff;
            size_t n;
            if ((rc = plog_locate(l, e.pos, e.len, &fd, &fdoff, &n)) < 0 || n != e.len)
                return -EIO;
            p[0] = 1;
            p[1] = 0;
            le_put64(p + 2, (uint64_t)e.ts);
            le_put32(p + 10, e.aux_len);
            if ((rc = plog_read_aux(l, off, &e, p + REPLICA_PAYLOAD_HDR)) < 0 ||
                (rc = sys_pread_all(fd, p + REPLICA_PAYLOAD_HDR + e.aux_len, e.len, (off_t)fdoff)) <
                    0)
                return -EIO;
            o->type = RAFT_ENTRY_NORMAL;
            o->len = REPLICA_PAYLOAD_HDR + e.aux_len + e.len;
        } else if (seg_kind_of(&e) == SEG_CONTROL) {
            p[0] = 1;
            p[1] = 1; /* CONTROL */
            le_put64(p + 2, (uint64_t)e.ts);
            le_put32(p + 10, e.aux_len);
            if ((rc = plog_read_aux(l, off, &e, p + REPLICA_PAYLOAD_HDR)) < 0)
                return -EIO;
            o->type = RAFT_ENTRY_NORMAL;
            o->len = REPLICA_PAYLOAD_HDR + e.aux_len;
        } else {
            if ((rc = plog_read_aux(l, off, &e, p)) < 0)
                return -EIO;
            o->type = seg_kind_of(&e) == SEG_CONF ? RAFT_ENTRY_CONF : RAFT_ENTRY_NOOP;
            o->len = e.aux_len;
        }
        o->buf = p;
        at += o->len;
    }
    return 0;
}

/* About the payload bytes of entries [lo, hi): their record bytes (byte
 * positions are contiguous) and a header and side data estimate each. */
static size_t log_bytes(void *ctx, uint64_t lo, uint64_t hi)
{
    struct replica *r = ctx;
    struct seg_entry a, b;
    if (hi <= lo || plog_entry(r->log, lo - 1, &a) < 0 || plog_entry(r->log, hi - 2, &b) < 0)
        return 0;
    return (size_t)(b.pos + b.len - a.pos) + (size_t)(hi - lo) * (REPLICA_PAYLOAD_HDR + 32);
}

/* The "state" a follower behind the log start is reset to: the byte
 * position of the leader's first retained record. */
static int log_snapshot(void *ctx, const void **data, size_t *len)
{
    struct replica *r = ctx;
    le_put64(r->snap, plog_first_pos(r->log));
    *data = r->snap;
    *len = sizeof(r->snap);
    return 0;
}

/* ------------------------------------------------------------ writing entries */

/* Appends entries [0, n) of one term (at most BATCH_MAX). */
static int append_batch(struct replica *r, const struct raft_entry *es, size_t n)
{
    struct seg_item items[BATCH_MAX];
    struct iovec iov[BATCH_MAX];
    int iovcnt = 0;
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &es[i];
        struct seg_item *it = &items[i];
        memset(it, 0, sizeof(*it));
        if (e->type == RAFT_ENTRY_NORMAL) {
            const uint8_t *aux, *rec;
            uint32_t alen, rlen;
            if (replica_payload_decode(e->buf, e->len, &it->ts, &aux, &alen, &rec, &rlen) < 0)
                return -EBADMSG;
            if (rlen == 0) {
                it->kind = SEG_CONTROL;
                it->aux = aux;
                it->aux_len = alen;
                if (r->io.control)
                    r->io.control(r->io.ctx, e->index - 1, e->term, aux[0], le_get64(aux + 1));
                continue;
            }
            it->kind = SEG_RECORD;
            it->len = rlen;
            if (alen && r->io.appended)
                r->io.appended(r->io.ctx, e->index - 1, e->term, aux, alen);
            it->aux = alen ? aux : NULL;
            it->aux_len = alen;
            iov[iovcnt++] = (struct iovec){(void *)rec, rlen};
        } else {
            it->kind = e->type == RAFT_ENTRY_CONF ? SEG_CONF : SEG_NOOP;
            it->aux = e->len ? e->buf : NULL;
            it->aux_len = (uint32_t)e->len;
        }
    }
    return plog_append_items(r->log, es[0].term, sys_now_ms(), iov, iovcnt, items, n,
                             (uint64_t)r->opt.segment_bytes, r->opt.segment_ms);
}

static bool is_roll(const struct raft_entry *e)
{
    const uint8_t *p = e->buf;
    return e->type == RAFT_ENTRY_NORMAL && e->len == REPLICA_PAYLOAD_HDR + REPLICA_CTL_LEN &&
           (p[1] & 1) && p[REPLICA_PAYLOAD_HDR] == REPLICA_CTL_ROLL;
}

static int write_entries(struct replica *r, const struct raft_entry *es, size_t n)
{
    uint64_t off = es[0].index - 1;
    int rc;
    if (off < plog_next_off(r->log)) {
        /* A conflicting (never committed) suffix goes first. */
        if ((rc = plog_truncate(r->log, off)) < 0)
            return rc;
        r->trunc_gen++;
        if (r->synced_index > off)
            r->synced_index = off;
    } else if (off > plog_next_off(r->log)) {
        return -EINVAL; /* a gap: the core never asks for one */
    }
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (i + k < n && k < BATCH_MAX && es[i + k].term == es[i].term && !is_roll(&es[i + k - 1]))
            k++;
        if ((rc = append_batch(r, es + i, k)) < 0)
            return rc;
        /* A ROLL entry ends its segment, on every replica alike. */
        if (is_roll(&es[i + k - 1]) && (rc = plog_roll(r->log)) < 0)
            return rc;
        i += k;
    }
    r->written_index = es[n - 1].index;
    r->written_term = es[n - 1].term;
    return 0;
}

/* ------------------------------------------------------------ syncing */

static void sync_work(uv_work_t *w)
{
    struct sync_job *j = w->data;
    j->rc = plog_sync_run(&j->sync);
    /* Everything up to the job's entries is durable, index and side data
     * included: recovery need not look below it.  The checkpoint costs a
     * file's atomic replacement (three fsyncs): once a second at most, so
     * that recovery verifies at most the last second's entries. */
    if (j->rc == 0 && j->checkpoint)
        j->rc = plog_checkpoint_write(j->dir, j->index);
}

static void process(struct replica *r);
static void replica_free(struct replica *r);

static void sync_after(uv_work_t *w, int status)
{
    struct sync_job *j = w->data;
    struct replica *r = j->r;
    r->sync_busy = false;
    if (status < 0 && j->rc == 0)
        j->rc = status;
    free(j->dir);
    if (r->closing) {
        free(j);
        replica_free(r);
        return;
    }
    if (j->trunc_gen != r->trunc_gen) {
        /* A truncation ran meanwhile: the job's checkpoint may name entries
         * that were replaced since; put back the truncation's. */
        int rc = plog_checkpoint_write(r->log->dir, r->log->ckpt_off);
        if (rc < 0)
            mk_log(MK_ERROR, "%s: checkpoint: %s", r->log->dir, strerror(-rc));
        j->rc = -ESTALE; /* and what it synced was overtaken: the next job
                            covers everything from the truncation on */
    }
    if (j->rc == -ESTALE) {
        /* nothing to report */
    } else if (j->rc < 0) {
        /* Not durable: nothing is reported; the next job retries. */
        mk_log(MK_ERROR, "%s: fdatasync failed: %s", r->log->dir, strerror(-j->rc));
    } else {
        if (j->index > r->synced_index)
            r->synced_index = j->index;
        if (j->checkpoint && j->index > r->log->ckpt_off && j->index <= plog_next_off(r->log))
            r->log->ckpt_off = j->index;
        raft_persisted(r->raft, j->index, j->term);
    }
    free(j);
    process(r);
}

static void start_sync(struct replica *r)
{
    if (r->sync_busy || r->closing || r->written_index <= r->synced_index)
        return;
    if (r->opt.no_sync) {
        /* fsync=never: the page cache counts as durable (benchmarks). */
        r->synced_index = r->written_index;
        raft_persisted(r->raft, r->written_index, r->written_term);
        process(r);
        return;
    }
    struct sync_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    /* From the first entry not known durable on (index synced_index + 1,
     * offset synced_index), by offset: a segment of NOOPs has no bytes. */
    if (plog_sync_prepare_off(r->log, r->synced_index, &j->sync) < 0) {
        free(j);
        return;
    }
    j->r = r;
    j->dir = strdup(r->log->dir);
    if (!j->dir) {
        plog_sync_run(&j->sync);
        free(j);
        return;
    }
    j->trunc_gen = r->trunc_gen;
    int64_t now = sys_now_ms();
    if (now - r->ckpt_ms >= 1000) {
        j->checkpoint = true;
        r->ckpt_ms = now;
    }
    j->index = r->written_index;
    j->term = r->written_term;
    j->work.data = j;
    r->sync_busy = true;
    if (uv_queue_work(r->loop, &j->work, sync_work, sync_after) < 0) {
        r->sync_busy = false;
        plog_sync_run(&j->sync);
        free(j->dir);
        free(j);
    }
}

/* ------------------------------------------------------------ the Ready loop */

/* Sends m, an APPEND of more than SPLIT_BYTES of entries as several: each
 * a valid APPEND of its own (its previous entry is the last of the one
 * before), in order on the one connection.  So the core may put many small
 * records in one APPEND (max_msg_entries) while no frame grows past what
 * the port carries. */
static void send_split(struct replica *r, const struct raft_msg *m)
{
    size_t total = 0;
    for (size_t i = 0; i < m->n_entries; i++)
        total += m->entries[i].len;
    if (m->type != RAFT_MSG_APPEND || total <= SPLIT_BYTES) {
        r->io.send(r->io.ctx, m->to, m);
        return;
    }
    struct raft_msg part = *m;
    size_t i = 0;
    while (i < m->n_entries) {
        size_t n = 0, bytes = 0;
        while (i + n < m->n_entries && (n == 0 || bytes + m->entries[i + n].len <= SPLIT_BYTES))
            bytes += m->entries[i + n++].len;
        part.entries = m->entries + i;
        part.n_entries = n;
        if (i > 0) {
            part.index = m->entries[i - 1].index;
            part.log_term = m->entries[i - 1].term;
        }
        r->io.send(r->io.ctx, m->to, &part);
        i += n;
    }
}

/* Logged at most every 5 s per replica (a full disk fails every step). */
static void fail_log(struct replica *r, const char *what, uint64_t at, int rc)
{
    int64_t now = sys_now_ms();
    if (now - r->failed_log_ms < 5000)
        return;
    r->failed_log_ms = now;
    mk_log(MK_ERROR, "%s: %s %" PRIu64 ": %s: the group restarts from what its log holds%s",
           r->log->dir, what, at, strerror(-rc),
           r->reboots ? " (again; further failures within 5 s not logged)" : "");
}

/* A write of entries or of the hard state failed: the core believes in
 * entries (or a term, a vote) the log does not hold, and must not act on
 * them — a leader would answer forwarded writes it never stored, take
 * resends for new writes, and lead on a log it cannot extend.  It is
 * replaced by a new one made from what the log holds (as after a restart):
 * a follower of the term on disk, which catches up from whoever leads
 * once its writes succeed again. */
static void reboot(struct replica *r)
{
    struct raft *fresh;
    bool rebuilding = raft_rebuilding(r->raft);
    r->failed = false;
    r->reboots++;
    /* The new core takes every entry of the log for durable, as after a
     * restart: what was written and not yet synced is synced now, or, if
     * that fails too (a full disk), cut off (this node acknowledged none
     * of it, and shows none of it: only persisted entries are applied). */
    if (plog_next_off(r->log) > r->synced_index) {
        struct plog_sync s;
        int src = plog_sync_prepare_off(r->log, r->synced_index, &s);
        if (src == 0)
            src = plog_sync_run(&s);
        if (src < 0 && r->synced_index >= plog_first_off(r->log))
            src = plog_truncate(r->log, r->synced_index);
        if (src < 0) {
            /* Neither: the old core stays silent; tried again next time. */
            r->failed = true;
            return;
        }
        r->synced_index = plog_next_off(r->log);
    }
    r->written_index = plog_next_off(r->log);
    r->written_term = plog_term_at(r->log, plog_next_off(r->log) - 1);
    if (r->synced_index > r->written_index)
        r->synced_index = r->written_index;
    r->trunc_gen++; /* a sync job in flight reports nothing */
    int rc = core_new(r, rebuilding, &fresh);
    if (rc < 0) {
        mk_log(MK_ERROR, "%s: restarting the group: %s", r->log->dir, strerror(-rc));
        return; /* the old core goes on, saying nothing until the next failure */
    }
    raft_free(r->raft);
    r->raft = fresh;
}

static uint64_t end_pos_after(const struct replica *r, uint64_t off_exclusive)
{
    struct seg_entry e;
    if (off_exclusive == 0 || plog_entry(r->log, off_exclusive - 1, &e) < 0)
        return plog_first_pos(r->log);
    return e.pos + e.len;
}

static void process(struct replica *r)
{
    if (r->processing || r->closing)
        return;
    r->processing = true;
    while (raft_has_ready(r->raft)) {
        struct raft_ready rd;
        if (raft_ready(r->raft, &rd) < 0)
            break;
        bool reset = false, send = true;
        uint64_t reset_index = 0, reset_term = 0;
        if (rd.reset) {
            uint64_t pos = rd.snap.snap_len == 8 ? le_get64(rd.snap.snap_data) : 0;
            int rc = plog_reset(r->log, rd.snap.index, pos, rd.snap.log_term);
            if (rc < 0) {
                mk_log(MK_ERROR, "%s: reset to offset %" PRIu64 ": %s", r->log->dir, rd.snap.index,
                       strerror(-rc));
            } else {
                reset = true;
                reset_index = rd.snap.index;
                reset_term = rd.snap.log_term;
                r->written_index = r->synced_index = rd.snap.index;
                r->written_term = rd.snap.log_term;
            }
        }
        if (rd.n_entries && !r->failed) {
            int rc = write_entries(r, rd.entries, rd.n_entries);
            if (rc < 0) {
                fail_log(r, "writing entries", rd.entries[0].index, rc);
                send = false; /* nothing may be promised about them */
                r->failed = true;
            }
        }
        if (rd.hs_changed && !r->failed) {
            int rc = plog_hardstate_write(r->log, rd.term, rd.vote);
            if (rc < 0) {
                fail_log(r, "hard state", rd.term, rc);
                send = false; /* a vote is never granted from memory only */
                r->failed = true;
            }
        }
        if (r->failed)
            send = false; /* the core is ahead of the log: it says nothing more */
        for (size_t i = 0; send && i < rd.n_msgs; i++)
            send_split(r, &rd.msgs[i]);
        if (rd.apply_hi >= rd.apply_lo && rd.apply_hi > 0)
            r->io.committed(r->io.ctx, rd.apply_hi, end_pos_after(r, rd.apply_hi));
        if (rd.rebuilt && r->io.rebuilt)
            r->io.rebuilt(r->io.ctx); /* it votes again: the owner persists that */
        raft_advance(r->raft);
        arena_free(r); /* the messages that pointed into it are sent */
        if (reset)
            raft_reset_done(r->raft, reset_index, reset_term);
        if (r->failed) {
            reboot(r);
            break;
        }
    }
    r->processing = false;
    start_sync(r);
    if (r->io.settled && !r->closing)
        r->io.settled(r->io.ctx);
}

/* ------------------------------------------------------------ life */

/* Entries per APPEND: many (small records travel in few frames), as many as
 * stay within SPLIT_BYTES (max_msg_bytes); send_split cuts an APPEND that
 * holds more anyway (an estimate was off) into frames of at most that. */
static unsigned max_entries(uint32_t max_record)
{
    (void)max_record; /* a record of any size fits a frame on its own */
    return 4096;
}

int replica_open(struct replica **out, uv_loop_t *loop, struct plog *log,
                 const struct replica_options *opt, const struct replica_io *io)
{
    struct replica *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    r->log = log;
    r->io = *io;
    r->opt = *opt;
    if (opt->conf) {
        r->conf = *opt->conf;
        r->opt.conf = &r->conf;
    }
    /* After recovery everything in the log is durable. */
    r->written_index = r->synced_index = plog_next_off(log);
    r->written_term = plog_term_at(log, plog_next_off(log) - 1);
    int rc = core_new(r, opt->rebuilding, &r->raft);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* A core over r's log, with the hard state the log holds. */
static int core_new(struct replica *r, bool rebuilding, struct raft **out)
{
    const struct replica_options *opt = &r->opt;
    struct plog *log = r->log;
    struct raft_options ro = {
        .id = opt->id,
        .election_ticks = opt->election_ticks,
        .heartbeat_ticks = opt->heartbeat_ticks,
        .max_msg_entries = max_entries(opt->max_record),
        .max_msg_bytes = SPLIT_BYTES,
        .pre_vote = true,
        .check_quorum = true,
        .rebuilding = rebuilding,
        .seed = opt->seed + r->reboots,
        .term = log->hs_term,
        .vote = log->hs_vote,
        .conf = opt->conf,
        /* Partition membership comes from the metadata group's placement;
         * partitions write no CONF entries (yet), so opening a replica
         * never reads its log. */
        .no_conf_entries = true,
        .log = {.ctx = r,
                .first_index = log_first,
                .last_index = log_last,
                .term = log_term,
                .entries = log_entries,
                .snapshot = log_snapshot,
                .bytes = log_bytes},
    };
    return raft_new(&ro, out);
}

static void replica_free(struct replica *r)
{
    raft_free(r->raft);
    arena_free(r);
    free(r);
}

void replica_close(struct replica *r)
{
    r->closing = true;
    if (!r->sync_busy)
        replica_free(r);
}

struct raft *replica_raft(struct replica *r)
{
    return r->raft;
}

int replica_propose_control(struct replica *r, uint8_t tag, uint64_t arg, uint64_t *off,
                            uint64_t *term)
{
    uint8_t buf[REPLICA_PAYLOAD_HDR + REPLICA_CTL_LEN];
    buf[0] = 1;
    buf[1] = 1; /* CONTROL */
    le_put64(buf + 2, (uint64_t)sys_now_ms());
    le_put32(buf + 10, REPLICA_CTL_LEN);
    buf[REPLICA_PAYLOAD_HDR] = tag;
    le_put64(buf + REPLICA_PAYLOAD_HDR + 1, arg);
    struct raft_buf rb = {buf, sizeof(buf)};
    uint64_t index;
    int rc = raft_propose(r->raft, &rb, 1, &index);
    if (rc == 0) {
        if (off)
            *off = index - 1;
        if (term)
            *term = raft_term(r->raft);
        process(r);
    }
    return rc;
}

int replica_transfer(struct replica *r, uint64_t to)
{
    int rc = raft_transfer(r->raft, to);
    process(r);
    return rc;
}

void replica_tick(struct replica *r)
{
    raft_tick(r->raft);
    process(r);
}

/* Every record a message carries must be one this log can store. */
static bool payloads_ok(const struct raft_msg *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        int64_t ts;
        const uint8_t *a, *rec;
        uint32_t al, rl;
        if (e->type == RAFT_ENTRY_NORMAL &&
            replica_payload_decode(e->buf, e->len, &ts, &a, &al, &rec, &rl) < 0)
            return false;
    }
    return true;
}

int replica_step(struct replica *r, const struct raft_msg *m)
{
    if (!payloads_ok(m))
        return -EBADMSG;
    int rc = raft_step(r->raft, m);
    process(r);
    return rc;
}

int replica_propose(struct replica *r, const struct iovec *iov, int iovcnt, const uint32_t *lens,
                    const uint8_t *side, const uint32_t *side_lens, size_t n, int64_t ts,
                    const struct replica_producer *prod, uint64_t *first_off, uint64_t *term)
{
    uint32_t plen = prod ? AUX_PRODUCER_LEN : 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (side_lens && side_lens[i] > UINT32_MAX - plen)
            return -EINVAL;
        total += REPLICA_PAYLOAD_HDR + plen + (side_lens ? side_lens[i] : 0) + lens[i];
    }
    uint8_t *buf = malloc(total ? total : 1);
    struct raft_buf *bufs = calloc(n ? n : 1, sizeof(*bufs));
    int rc = 0;
    if (!buf || !bufs) {
        rc = -ENOMEM;
        goto out;
    }
    /* Gather each record (it may span iov pieces) behind its header. */
    int vi = 0;
    size_t voff = 0, at = 0;
    const uint8_t *sp = side;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = buf + at;
        uint32_t slen = side_lens ? side_lens[i] : 0, alen = plen + slen;
        p[0] = 1;
        p[1] = 0;
        le_put64(p + 2, (uint64_t)ts);
        le_put32(p + 10, alen);
        uint8_t *rec = p + REPLICA_PAYLOAD_HDR + alen;
        if (prod)
            aux_put_producer(p + REPLICA_PAYLOAD_HDR, prod->id, prod->seq + i);
        if (slen) {
            memcpy(p + REPLICA_PAYLOAD_HDR + plen, sp, slen);
            sp += slen;
        }
        size_t got = 0;
        while (got < lens[i]) {
            if (vi >= iovcnt) {
                rc = -EINVAL;
                goto out;
            }
            size_t take = iov[vi].iov_len - voff;
            if (take > lens[i] - got)
                take = lens[i] - got;
            memcpy(rec + got, (const char *)iov[vi].iov_base + voff, take);
            got += take;
            voff += take;
            if (voff == iov[vi].iov_len) {
                vi++;
                voff = 0;
            }
        }
        if (lens[i] == 0 || rec[lens[i] - 1] != '\n') {
            rc = -EINVAL;
            goto out;
        }
        bufs[i] = (struct raft_buf){p, REPLICA_PAYLOAD_HDR + alen + lens[i]};
        at += REPLICA_PAYLOAD_HDR + alen + lens[i];
    }
    uint64_t index;
    rc = raft_propose(r->raft, bufs, n, &index);
    if (rc == 0) {
        if (first_off)
            *first_off = index - 1;
        if (term)
            *term = raft_term(r->raft);
    }
out:
    free(buf);
    free(bufs);
    if (rc == 0)
        process(r);
    return rc;
}
