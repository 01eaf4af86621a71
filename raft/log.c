/*
 * raft/log.c -- the core's view of the log: durable storage + unstable tail.
 * See log.h for the invariants.
 */
#include "raft/log.h"

#include <stdlib.h>
#include <string.h>

struct rlog_blk {
    size_t refs;
    unsigned char data[];
};

static void blk_unref(struct rlog_blk *b)
{
    if (b && --b->refs == 0)
        free(b);
}

int rlog_init(struct rlog *l, const struct raft_log_ops *ops)
{
    memset(l, 0, sizeof(*l));
    l->ops = *ops;
    l->u_off = ops->last_index(ops->ctx) + 1;
    uint64_t first = ops->first_index(ops->ctx);
    l->snap_index = first - 1;
    if (first > 1 && ops->term(ops->ctx, first - 1, &l->snap_term) != 0)
        return -EINVAL;
    return 0;
}

static void drop_front(struct rlog *l, size_t k)
{
    for (size_t i = 0; i < k; i++)
        blk_unref(l->blks[l->head + i]);
    l->head += k;
    l->n -= k;
    l->u_off += k;
    if (l->n == 0)
        l->head = 0;
}

static void drop_back(struct rlog *l, size_t k)
{
    for (size_t i = 0; i < k; i++)
        blk_unref(l->blks[l->head + l->n - 1 - i]);
    l->n -= k;
    if (l->n == 0)
        l->head = 0;
}

void rlog_free(struct rlog *l)
{
    drop_back(l, l->n);
    free(l->ents);
    free(l->blks);
    l->ents = NULL;
    l->blks = NULL;
    l->cap = 0;
}

uint64_t rlog_last(const struct rlog *l)
{
    return l->u_off + l->n - 1;
}

uint64_t rlog_first(const struct rlog *l)
{
    if (l->reset_pending)
        return l->snap_index + 1;
    uint64_t f = l->ops.first_index(l->ops.ctx);
    /* Storage can be momentarily behind a completed reset's bookkeeping
     * only if the caller broke the contract; never report below it. */
    return f > l->snap_index + 1 ? f : l->snap_index + 1;
}

int rlog_term(const struct rlog *l, uint64_t index, uint64_t *term)
{
    if (index == 0) {
        *term = 0;
        return 0;
    }
    if (index > rlog_last(l))
        return -ENOENT;
    if (index >= l->u_off) {
        *term = l->ents[l->head + (index - l->u_off)].term;
        return 0;
    }
    if (index == l->snap_index) {
        *term = l->snap_term;
        return 0;
    }
    if (l->reset_pending || index < l->snap_index)
        return -ENOENT;
    return l->ops.term(l->ops.ctx, index, term);
}

uint64_t rlog_term0(const struct rlog *l, uint64_t index)
{
    uint64_t t = 0;
    if (rlog_term(l, index, &t) != 0)
        return 0;
    return t;
}

static int reserve(struct rlog *l, size_t extra)
{
    if (l->head + l->n + extra <= l->cap)
        return 0;
    if (l->head > 0 && l->n + extra <= l->cap && l->head >= l->cap / 2) {
        memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
        memmove(l->blks, l->blks + l->head, l->n * sizeof(*l->blks));
        l->head = 0;
        return 0;
    }
    if (l->head > 0) {
        memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
        memmove(l->blks, l->blks + l->head, l->n * sizeof(*l->blks));
        l->head = 0;
    }
    size_t cap = l->cap ? l->cap : 64;
    while (cap < l->n + extra)
        cap *= 2;
    struct raft_entry *e = realloc(l->ents, cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    l->ents = e;
    struct rlog_blk **b = realloc(l->blks, cap * sizeof(*b));
    if (!b)
        return -ENOMEM;
    l->blks = b;
    l->cap = cap;
    return 0;
}

/* One block holding all payloads; refs = number of entries using it. */
static struct rlog_blk *blk_new(size_t bytes, size_t refs)
{
    struct rlog_blk *b = malloc(sizeof(*b) + (bytes ? bytes : 1));
    if (b)
        b->refs = refs;
    return b;
}

int rlog_append_bufs(struct rlog *l, uint64_t term, uint8_t type, const struct raft_buf *bufs,
                     size_t n)
{
    if (n == 0)
        return 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += bufs[i].len;
    int rv = reserve(l, n);
    if (rv != 0)
        return rv;
    struct rlog_blk *b = NULL;
    if (bytes > 0 && !(b = blk_new(bytes, n)))
        return -ENOMEM;
    uint64_t index = rlog_last(l) + 1;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct raft_entry *e = &l->ents[l->head + l->n];
        e->term = term;
        e->index = index + i;
        e->type = type;
        e->len = bufs[i].len;
        e->buf = NULL;
        if (bufs[i].len) {
            memcpy(b->data + off, bufs[i].buf, bufs[i].len);
            e->buf = b->data + off;
            off += bufs[i].len;
        }
        l->blks[l->head + l->n] = b;
        l->n++;
    }
    /* Entries without payload hold no reference. */
    if (b) {
        size_t empty = 0;
        for (size_t i = 0; i < n; i++)
            if (bufs[i].len == 0) {
                empty++;
                l->blks[l->head + l->n - n + i] = NULL;
            }
        b->refs -= empty;
    }
    return 0;
}

int rlog_append_entries(struct rlog *l, const struct raft_entry *e, size_t n)
{
    if (n == 0)
        return 0;
    size_t bytes = 0, full = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += e[i].len;
        full += e[i].len > 0;
    }
    int rv = reserve(l, n);
    if (rv != 0)
        return rv;
    struct rlog_blk *b = NULL;
    if (bytes > 0 && !(b = blk_new(bytes, full)))
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct raft_entry *d = &l->ents[l->head + l->n];
        *d = e[i];
        d->buf = NULL;
        l->blks[l->head + l->n] = NULL;
        if (e[i].len) {
            memcpy(b->data + off, e[i].buf, e[i].len);
            d->buf = b->data + off;
            off += e[i].len;
            l->blks[l->head + l->n] = b;
        }
        l->n++;
    }
    return 0;
}

void rlog_truncate(struct rlog *l, uint64_t from)
{
    if (from > rlog_last(l))
        return;
    if (from >= l->u_off) {
        drop_back(l, (size_t)(rlog_last(l) - from + 1));
        return;
    }
    /* Below the unstable part: mask the storage suffix. */
    drop_back(l, l->n);
    l->u_off = from;
}

void rlog_stable_to(struct rlog *l, uint64_t index)
{
    if (index < l->u_off)
        return;
    if (index > rlog_last(l))
        index = rlog_last(l);
    drop_front(l, (size_t)(index - l->u_off + 1));
}

void rlog_reset(struct rlog *l, uint64_t index, uint64_t term)
{
    drop_back(l, l->n);
    l->u_off = index + 1;
    l->snap_index = index;
    l->snap_term = term;
    l->reset_pending = true;
}

const struct raft_entry *rlog_unstable(const struct rlog *l, uint64_t index)
{
    return &l->ents[l->head + (index - l->u_off)];
}

size_t rlog_bytes(const struct rlog *l, uint64_t lo, uint64_t hi)
{
    size_t sum = 0;
    uint64_t i = lo;
    if (i < l->u_off) {
        uint64_t end = hi + 1 < l->u_off ? hi + 1 : l->u_off;
        if (l->ops.bytes && !l->reset_pending)
            sum += l->ops.bytes(l->ops.ctx, i, end);
        i = end;
    }
    for (; i <= hi; i++)
        sum += rlog_unstable(l, i)->len;
    return sum;
}

int rlog_slice(const struct rlog *l, uint64_t lo, uint64_t hi, struct raft_entry *out)
{
    uint64_t i = lo;
    if (i < l->u_off) {
        uint64_t end = hi + 1 < l->u_off ? hi + 1 : l->u_off;
        if (l->reset_pending || i <= l->snap_index)
            return -ENOENT;
        int rv = l->ops.entries(l->ops.ctx, i, end, out);
        if (rv != 0)
            return rv;
        out += end - i;
        i = end;
    }
    for (; i <= hi; i++)
        *out++ = *rlog_unstable(l, i);
    return 0;
}
