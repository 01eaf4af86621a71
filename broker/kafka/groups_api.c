/*
 * groups_api — the Kafka APIs of consumer groups, over broker/groups.h:
 * FindCoordinator 0-2, JoinGroup 0-5, SyncGroup 0-3, Heartbeat 0-3,
 * LeaveGroup 0-1, OffsetCommit 0-7, OffsetFetch 0-5 (none flexible).
 * Group ids, member ids, topic names and protocol names arrive as
 * length-counted bytes; they are copied into NUL-terminated strings, and
 * one holding a NUL byte is refused (INVALID_REQUEST for the request).
 */
#include "broker/groups.h"
#include "broker/kafka/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated copy of a wire string (NULL stays NULL); NULL with
 * *bad set when it holds a NUL byte or memory is short. */
static char *str_of(const uint8_t *s, int32_t len, bool *bad)
{
    if (len < 0)
        return NULL;
    if (len > 0 && memchr(s, '\0', (size_t)len)) {
        *bad = true;
        return NULL;
    }
    char *out = malloc((size_t)len + 1);
    if (!out) {
        *bad = true;
        return NULL;
    }
    if (len > 0) /* an empty string may have no bytes to point to */
        memcpy(out, s, (size_t)len);
    out[len] = '\0';
    return out;
}

static char *read_str(struct kr *in, bool *bad)
{
    const uint8_t *s;
    int32_t len = kr_string(in, &s);
    if (in->err)
        return NULL;
    char *v = str_of(s, len, bad);
    return v ? v : (len < 0 ? NULL : v);
}

static struct groups *gs_of(struct kreq *r)
{
    return broker_groups(r->k->b);
}

/* ------------------------------------------------------------ FindCoordinator */

static void on_where(void *arg, int err, uint32_t node)
{
    struct kreq *r = arg;
    struct kw *w = &r->out;
    int16_t v = r->h.api_version;
    char host[256] = "";
    uint16_t port = 0;
    if (!err && !broker_node_kafka(r->k->b, node, host, sizeof(host), &port))
        err = GERR_COORDINATOR_NOT_AVAILABLE; /* its Kafka address is not known here yet */
    if (v >= 1)
        kw_i32(w, 0);
    kw_i16(w, (int16_t)err);
    if (v >= 1)
        kw_string(w, NULL, -1);
    kw_i32(w, err ? -1 : (int32_t)node);
    kw_string(w, err ? "" : host, err ? 0 : (int32_t)strlen(host));
    kw_i32(w, err ? -1 : port);
    kreq_done(r);
    kreq_release(r);
}

int kapi_find_coordinator(struct kreq *r)
{
    struct kr *in = &r->body;
    const uint8_t *key;
    kr_string(in, &key);
    int8_t type = r->h.api_version >= 1 ? kr_i8(in) : 0;
    if (in->err)
        return -EPROTO;
    kreq_hold(r);
    if (type != 0 || !gs_of(r)) {
        on_where(r, GERR_COORDINATOR_NOT_AVAILABLE, 0); /* transactions: not served */
        return 0;
    }
    groups_coordinator(gs_of(r), on_where, r);
    return 0;
}

/* ------------------------------------------------------------ JoinGroup */

static void on_joined(void *arg, const struct group_joined *j)
{
    struct kreq *r = arg;
    struct kw *w = &r->out;
    int16_t v = r->h.api_version;
    if (v >= 2)
        kw_i32(w, 0);
    kw_i16(w, (int16_t)j->err);
    kw_i32(w, j->generation);
    kw_string(w, j->protocol, (int32_t)strlen(j->protocol));
    kw_string(w, j->leader, (int32_t)strlen(j->leader));
    kw_string(w, j->member_id, (int32_t)strlen(j->member_id));
    kw_array(w, (int32_t)j->nmembers);
    for (size_t i = 0; i < j->nmembers; i++) {
        kw_string(w, j->members[i].member_id, (int32_t)strlen(j->members[i].member_id));
        if (v >= 5)
            kw_string(w, NULL, -1); /* group instance id: no static members */
        kw_bytes(w, j->members[i].meta, (int32_t)j->members[i].meta_len);
    }
    kreq_done(r);
    kreq_release(r);
}

int kapi_join_group(struct kreq *r)
{
    struct kr *in = &r->body;
    int16_t v = r->h.api_version;
    bool bad = false;
    struct group_join j = {0};
    char *group = read_str(in, &bad);
    j.session_timeout_ms = kr_i32(in);
    j.rebalance_timeout_ms = v >= 1 ? kr_i32(in) : -1;
    char *member = read_str(in, &bad);
    if (v >= 5) {
        const uint8_t *s;
        kr_string(in, &s); /* static membership: not served, taken as dynamic */
    }
    char *ptype = read_str(in, &bad);
    int32_t np = kr_array(in, 6);
    struct group_protocol *ps = np > 0 ? calloc((size_t)np, sizeof(*ps)) : NULL;
    char **names = np > 0 ? calloc((size_t)np, sizeof(*names)) : NULL;
    for (int32_t i = 0; i < np && !in->err && (!np || (ps && names)); i++) {
        names[i] = read_str(in, &bad);
        const uint8_t *meta;
        int32_t ml = kr_bytes(in, &meta);
        ps[i] = (struct group_protocol){.name = names[i] ? names[i] : "", .meta = meta,
                                        .meta_len = ml < 0 ? 0 : (size_t)ml};
    }
    int rc = 0;
    if (in->err || np < 0 || (np > 0 && (!ps || !names))) {
        rc = -EPROTO;
    } else {
        char cid[256] = "";
        if (r->h.client_id_len > 0 && r->h.client_id_len < (int32_t)sizeof(cid) &&
            !memchr(r->h.client_id, '\0', (size_t)r->h.client_id_len))
            memcpy(cid, r->h.client_id, (size_t)r->h.client_id_len);
        j.group = group ? group : "";
        j.member_id = member ? member : "";
        j.client_id = cid;
        j.client_host = "";
        j.protocol_type = ptype ? ptype : "";
        j.protocols = ps;
        j.nprotocols = (size_t)np;
        kreq_hold(r);
        if (bad || !gs_of(r)) {
            struct group_joined e = {.err = bad ? KERR_INVALID_REQUEST : GERR_COORDINATOR_NOT_AVAILABLE,
                                     .generation = -1, .protocol = "", .leader = "",
                                     .member_id = j.member_id};
            on_joined(r, &e);
        } else {
            group_join(gs_of(r), &j, on_joined, r);
        }
    }
    for (int32_t i = 0; names && i < np; i++)
        free(names[i]);
    free(names);
    free(ps);
    free(group);
    free(member);
    free(ptype);
    return rc;
}

/* ------------------------------------------------------------ SyncGroup */

static void on_synced(void *arg, int err, const uint8_t *data, size_t len)
{
    struct kreq *r = arg;
    struct kw *w = &r->out;
    if (r->h.api_version >= 1)
        kw_i32(w, 0);
    kw_i16(w, (int16_t)err);
    kw_bytes(w, data ? data : (const uint8_t *)"", data ? (int32_t)len : 0);
    kreq_done(r);
    kreq_release(r);
}

int kapi_sync_group(struct kreq *r)
{
    struct kr *in = &r->body;
    bool bad = false;
    char *group = read_str(in, &bad);
    int32_t gen = kr_i32(in);
    char *member = read_str(in, &bad);
    if (r->h.api_version >= 3) {
        const uint8_t *s;
        kr_string(in, &s);
    }
    int32_t n = kr_array(in, 6);
    struct group_assignment *a = n > 0 ? calloc((size_t)n, sizeof(*a)) : NULL;
    char **ids = n > 0 ? calloc((size_t)n, sizeof(*ids)) : NULL;
    for (int32_t i = 0; i < n && !in->err && a && ids; i++) {
        ids[i] = read_str(in, &bad);
        const uint8_t *d;
        int32_t len = kr_bytes(in, &d);
        a[i] = (struct group_assignment){.member_id = ids[i] ? ids[i] : "", .data = d,
                                         .len = len < 0 ? 0 : (size_t)len};
    }
    int rc = 0;
    if (in->err || n < 0 || (n > 0 && (!a || !ids))) {
        rc = -EPROTO;
    } else {
        kreq_hold(r);
        if (bad || !gs_of(r))
            on_synced(r, bad ? KERR_INVALID_REQUEST : GERR_COORDINATOR_NOT_AVAILABLE, NULL, 0);
        else
            group_sync(gs_of(r), group ? group : "", gen, member ? member : "", a, (size_t)n,
                       on_synced, r);
    }
    for (int32_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    free(a);
    free(group);
    free(member);
    return rc;
}

/* ------------------------------------------------------------ Heartbeat, LeaveGroup */

int kapi_heartbeat(struct kreq *r)
{
    struct kr *in = &r->body;
    bool bad = false;
    char *group = read_str(in, &bad);
    int32_t gen = kr_i32(in);
    char *member = read_str(in, &bad);
    if (r->h.api_version >= 3) {
        const uint8_t *s;
        kr_string(in, &s);
    }
    int rc = 0;
    if (in->err) {
        rc = -EPROTO;
    } else {
        int err = bad ? KERR_INVALID_REQUEST
                  : !gs_of(r) ? GERR_COORDINATOR_NOT_AVAILABLE
                              : group_heartbeat(gs_of(r), group ? group : "", gen, member ? member : "");
        if (r->h.api_version >= 1)
            kw_i32(&r->out, 0);
        kw_i16(&r->out, (int16_t)err);
        kreq_done(r);
    }
    free(group);
    free(member);
    return rc;
}

int kapi_leave_group(struct kreq *r)
{
    struct kr *in = &r->body;
    bool bad = false;
    char *group = read_str(in, &bad);
    char *member = read_str(in, &bad);
    int rc = 0;
    if (in->err) {
        rc = -EPROTO;
    } else {
        int err = bad ? KERR_INVALID_REQUEST
                  : !gs_of(r) ? GERR_COORDINATOR_NOT_AVAILABLE
                              : group_leave(gs_of(r), group ? group : "", member ? member : "");
        if (r->h.api_version >= 1)
            kw_i32(&r->out, 0);
        kw_i16(&r->out, (int16_t)err);
        kreq_done(r);
    }
    free(group);
    free(member);
    return rc;
}

/* ------------------------------------------------------------ OffsetCommit */

struct oc_topic {
    const uint8_t *name;
    int32_t name_len;
    int32_t n;
    struct group_offset *offs; /* points into the state's flat array */
};
struct oc_state {
    struct oc_topic *topics;
    int32_t ntopics;
    struct group_offset *offs;
    char **strs; /* every string the offsets point to */
    size_t nstrs;
};

static void oc_free(struct kreq *r)
{
    struct oc_state *st = r->state;
    if (!st)
        return;
    for (size_t i = 0; i < st->nstrs; i++)
        free(st->strs[i]);
    free(st->strs);
    free(st->offs);
    free(st->topics);
    free(st);
    r->state = NULL;
}

static void oc_answer(struct kreq *r)
{
    struct oc_state *st = r->state;
    struct kw *w = &r->out;
    if (r->h.api_version >= 3)
        kw_i32(w, 0);
    kw_array(w, st->ntopics);
    for (int32_t i = 0; i < st->ntopics; i++) {
        struct oc_topic *t = &st->topics[i];
        kw_string(w, t->name, t->name_len);
        kw_array(w, t->n);
        for (int32_t k = 0; k < t->n; k++) {
            kw_i32(w, t->offs[k].partition);
            kw_i16(w, (int16_t)t->offs[k].err);
        }
    }
    kreq_done(r);
}

static void on_offsets_committed(void *arg, int err)
{
    (void)err; /* each offset has its own */
    struct kreq *r = arg;
    oc_answer(r);
    kreq_release(r);
}

int kapi_offset_commit(struct kreq *r)
{
    struct kr *in = &r->body;
    int16_t v = r->h.api_version;
    bool bad = false;
    struct oc_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -EPROTO;
    r->state = st;
    r->state_free = oc_free;
    char *group = read_str(in, &bad);
    int32_t gen = -1;
    char *member = NULL;
    if (v >= 1) {
        gen = kr_i32(in);
        member = read_str(in, &bad);
    }
    if (v >= 7) {
        const uint8_t *s;
        kr_string(in, &s);
    }
    if (v >= 2 && v <= 4)
        kr_i64(in); /* retention: the offsets topic's own */
    st->ntopics = kr_array(in, 6);
    if (in->err || st->ntopics < 0)
        goto bad_req;
    /* Count the offsets first, to allocate them flat. */
    struct kr scan = *in;
    size_t total = 0;
    for (int32_t i = 0; i < st->ntopics; i++) {
        const uint8_t *s;
        kr_string(&scan, &s);
        int32_t n = kr_array(&scan, 14);
        if (scan.err || n < 0)
            goto bad_req;
        total += (size_t)n;
        for (int32_t k = 0; k < n; k++) {
            kr_i32(&scan);
            kr_i64(&scan);
            if (v >= 6)
                kr_i32(&scan);
            if (v == 1)
                kr_i64(&scan);
            kr_string(&scan, &s);
        }
    }
    if (scan.err)
        goto bad_req;
    st->topics = calloc((size_t)st->ntopics + 1, sizeof(*st->topics));
    st->offs = calloc(total + 1, sizeof(*st->offs));
    st->strs = calloc(2 * total + st->ntopics + 3, sizeof(*st->strs));
    if (!st->topics || !st->offs || !st->strs)
        goto bad_req;
    size_t at = 0;
    for (int32_t i = 0; i < st->ntopics; i++) {
        struct oc_topic *t = &st->topics[i];
        t->name_len = kr_string(in, &t->name);
        if (t->name_len < 0)
            goto bad_req; /* not nullable: the request does not parse */
        char *tname = str_of(t->name, t->name_len, &bad);
        st->strs[st->nstrs++] = tname;
        t->n = kr_array(in, 14);
        t->offs = st->offs + at;
        for (int32_t k = 0; k < t->n; k++) {
            struct group_offset *o = &st->offs[at++];
            o->topic = tname ? tname : "";
            o->partition = kr_i32(in);
            o->offset = kr_i64(in);
            if (v >= 6)
                kr_i32(in);
            if (v == 1)
                kr_i64(in);
            const uint8_t *m;
            int32_t ml = kr_string(in, &m);
            char *meta = str_of(m, ml, &bad);
            st->strs[st->nstrs++] = meta;
            o->metadata = meta;
        }
    }
    if (in->err)
        goto bad_req;
    kreq_hold(r);
    if (bad || !gs_of(r)) {
        for (size_t i = 0; i < total; i++)
            st->offs[i].err = bad ? KERR_INVALID_REQUEST : GERR_COORDINATOR_NOT_AVAILABLE;
        on_offsets_committed(r, 0);
    } else {
        group_commit(gs_of(r), group ? group : "", gen, member ? member : "", st->offs, total,
                     on_offsets_committed, r);
    }
    free(group);
    free(member);
    return 0;
bad_req:
    free(group);
    free(member);
    return -EPROTO;
}

/* ------------------------------------------------------------ OffsetFetch */

struct of_all {
    struct kw *w;
    int16_t v;
    /* topics gathered: written grouped by topic */
    struct of_ent {
        char *topic;
        int32_t partition;
        int64_t offset;
        char *meta;
    } *e;
    size_t n, cap;
};

static void gather(void *arg, const char *topic, int32_t partition, int64_t offset,
                   const char *metadata)
{
    struct of_all *a = arg;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        struct of_ent *ne = realloc(a->e, cap * sizeof(*ne));
        if (!ne)
            return;
        a->e = ne;
        a->cap = cap;
    }
    a->e[a->n++] = (struct of_ent){strdup(topic), partition, offset, strdup(metadata)};
}

static void write_partition(struct kw *w, int16_t v, int32_t p, int64_t off, const char *meta,
                            int err)
{
    kw_i32(w, p);
    kw_i64(w, off);
    if (v >= 5)
        kw_i32(w, -1); /* leader epoch */
    kw_string(w, meta ? meta : "", meta ? (int32_t)strlen(meta) : 0);
    kw_i16(w, (int16_t)err);
}

int kapi_offset_fetch(struct kreq *r)
{
    struct kr *in = &r->body;
    int16_t v = r->h.api_version;
    bool bad = false;
    char *group = read_str(in, &bad);
    int32_t nt = kr_array(in, 6);
    if (in->err) {
        free(group);
        return -EPROTO;
    }
    struct kw *w = &r->out;
    struct groups *gs = gs_of(r);
    if (v >= 3)
        kw_i32(w, 0);
    int top_err = bad ? KERR_INVALID_REQUEST : !gs ? GERR_COORDINATOR_NOT_AVAILABLE : GERR_NONE;
    if (nt < 0) {
        /* Every committed offset of the group (v2+). */
        struct of_all a = {.w = w, .v = v};
        if (!top_err)
            top_err = group_fetch_all(gs, group ? group : "", gather, &a);
        /* Group by topic: count distinct topics. */
        int32_t ntop = 0;
        for (size_t i = 0; i < a.n; i++) {
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = !strcmp(a.e[k].topic, a.e[i].topic);
            ntop += !seen;
        }
        kw_array(w, top_err ? 0 : ntop);
        for (size_t i = 0; !top_err && i < a.n; i++) {
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = !strcmp(a.e[k].topic, a.e[i].topic);
            if (seen)
                continue;
            int32_t np = 0;
            for (size_t k = i; k < a.n; k++)
                np += !strcmp(a.e[k].topic, a.e[i].topic);
            kw_string(w, a.e[i].topic, (int32_t)strlen(a.e[i].topic));
            kw_array(w, np);
            for (size_t k = i; k < a.n; k++)
                if (!strcmp(a.e[k].topic, a.e[i].topic))
                    write_partition(w, v, a.e[k].partition, a.e[k].offset, a.e[k].meta, GERR_NONE);
        }
        for (size_t i = 0; i < a.n; i++) {
            free(a.e[i].topic);
            free(a.e[i].meta);
        }
        free(a.e);
    } else {
        kw_array(w, nt);
        for (int32_t i = 0; i < nt; i++) {
            const uint8_t *name;
            int32_t len = kr_string(in, &name);
            if (len < 0) { /* not nullable: the request does not parse */
                free(group);
                return -EPROTO;
            }
            char *topic = str_of(name, len, &bad);
            int32_t np = kr_array(in, 4);
            kw_string(w, name, len < 0 ? 0 : len);
            kw_array(w, np < 0 ? 0 : np);
            for (int32_t k = 0; k < np; k++) {
                int32_t p = kr_i32(in);
                int64_t off = -1;
                const char *meta = "";
                int err = top_err;
                if (!err)
                    err = group_fetch(gs, group ? group : "", topic ? topic : "", p, &off, &meta);
                write_partition(w, v, p, err ? -1 : off, err ? "" : meta, err);
            }
            free(topic);
        }
        if (in->err) {
            free(group);
            return -EPROTO;
        }
    }
    if (v >= 2)
        kw_i16(w, (int16_t)top_err);
    kreq_done(r);
    free(group);
    return 0;
}
