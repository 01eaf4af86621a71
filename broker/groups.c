/*
 * groups — see groups.h.
 *
 * A GROUP'S LIFE (Kafka's classic protocol)
 *   EMPTY        no members (committed offsets may exist)
 *   PREPARING    a rebalance: joins are held until every member known
 *                joined again, or the rebalance timeout passed (those that
 *                did not are dropped); a group that was empty waits
 *                INITIAL_DELAY_MS for its first members to arrive together
 *   COMPLETING   joins answered with the new generation; syncs are held
 *                until the leader's brings the assignments
 *   STABLE       every member has its assignment; heartbeats keep members
 *   Any join, leave or session timeout starts a new rebalance; members
 *   learn of it from their heartbeat (REBALANCE_IN_PROGRESS) and join
 *   again.
 */
#include "broker/groups.h"
#include "broker/internal.h"
#include "broker/log.h"
#include "broker/record.h"
#include "broker/sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define TICK_MS          100
#define INITIAL_DELAY_MS 300
#define SESSION_MIN_MS   1000
#define SESSION_MAX_MS   300000
#define META_MAX         4096 /* bytes of a commit's metadata string */
#define KEY_VERSION      1

enum gstate { G_EMPTY, G_PREPARING, G_COMPLETING, G_STABLE };
static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable"};

struct member {
    struct member *next;
    char *id, *client_id, *host;
    int32_t session_ms, rebalance_ms;
    int64_t seen_ms; /* last join, sync or heartbeat */
    struct group_protocol *protos;
    size_t nprotos;
    /* a held join, a held sync */
    group_join_cb join_cb;
    void *join_arg;
    group_sync_cb sync_cb;
    void *sync_arg;
    uint8_t *assign;
    size_t assign_len;
};

struct group {
    struct group *next;
    char *name;
    enum gstate state;
    int32_t generation;
    char *protocol_type;
    char *protocol; /* chosen at the last join completion */
    char *leader;
    struct member *members;
    int64_t deadline_ms; /* PREPARING: when the join phase ends */
    bool initial;        /* PREPARING from EMPTY: waits the whole delay */
};

/* One committed offset. */
struct coff {
    struct coff *next;
    char *group, *topic, *meta;
    int32_t partition;
    int64_t offset;
};

struct waiter_c { /* groups_coordinator while the topic is being made */
    struct waiter_c *next;
    groups_where_cb cb;
    void *arg;
};

struct groups {
    struct broker *b;
    uv_loop_t *loop;
    uv_timer_t timer;
    bool closing;
    struct group *groups;
    struct coff **offs; /* hash buckets */
    size_t nbuckets, noffs;
    uint64_t loaded; /* offsets partition read up to here */
    uint64_t loaded_id; /* ... of the topic with this id (a new topic starts over) */
    bool creating;
    struct waiter_c *where;
    int inflight;      /* commits whose write is under way */
    bool timer_closed; /* freed once this and no commit in flight */
};

static void tick(uv_timer_t *t);

/* ------------------------------------------------------------ helpers */

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

static struct part *offsets_part(const struct groups *gs)
{
    struct topic *t = topic_find(gs->b, GROUPS_TOPIC);
    return t ? topic_part(t, 0) : NULL;
}

/* Whether this node coordinates: it holds the offsets partition's log and
 * leads it (a single node always does). */
static int coordinating(const struct groups *gs)
{
    struct part *p = offsets_part(gs);
    if (!p)
        return GERR_COORDINATOR_NOT_AVAILABLE;
    if (!part_replicated(p))
        return GERR_NONE;
    struct part_info pi;
    part_info(p, &pi);
    if (!pi.leader)
        return GERR_COORDINATOR_NOT_AVAILABLE;
    return pi.leader == broker_config(gs->b)->node_id && !part_remote(p) ? GERR_NONE
                                                                           : GERR_NOT_COORDINATOR;
}

/* ------------------------------------------------------------ the offset map */

static uint64_t hash_key(const char *g, const char *t, int32_t p)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = g; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = t; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (h ^ (uint32_t)p) * 1099511628211ull;
}

static struct coff *coff_find(const struct groups *gs, const char *g, const char *t, int32_t p)
{
    if (!gs->nbuckets)
        return NULL;
    for (struct coff *c = gs->offs[hash_key(g, t, p) % gs->nbuckets]; c; c = c->next)
        if (c->partition == p && !strcmp(c->group, g) && !strcmp(c->topic, t))
            return c;
    return NULL;
}

static int coff_grow(struct groups *gs)
{
    size_t n = gs->nbuckets ? gs->nbuckets * 2 : 256;
    struct coff **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return -ENOMEM;
    for (size_t i = 0; i < gs->nbuckets; i++) {
        for (struct coff *c = gs->offs[i], *next; c; c = next) {
            next = c->next;
            size_t k = hash_key(c->group, c->topic, c->partition) % n;
            c->next = nb[k];
            nb[k] = c;
        }
    }
    free(gs->offs);
    gs->offs = nb;
    gs->nbuckets = n;
    return 0;
}

static void coff_set(struct groups *gs, const char *g, const char *t, int32_t p, int64_t off,
                     const char *meta)
{
    struct coff *c = coff_find(gs, g, t, p);
    if (c) {
        c->offset = off;
        char *m = dup_str(meta);
        if (m) {
            free(c->meta);
            c->meta = m;
        }
        return;
    }
    if (gs->noffs >= gs->nbuckets && coff_grow(gs) < 0)
        return;
    if (!(c = calloc(1, sizeof(*c))) || !(c->group = dup_str(g)) || !(c->topic = dup_str(t)) ||
        !(c->meta = dup_str(meta))) {
        if (c) {
            free(c->group);
            free(c->topic);
        }
        free(c);
        return;
    }
    c->partition = p;
    c->offset = off;
    size_t k = hash_key(g, t, p) % gs->nbuckets;
    c->next = gs->offs[k];
    gs->offs[k] = c;
    gs->noffs++;
}

static void coff_clear(struct groups *gs)
{
    for (size_t i = 0; i < gs->nbuckets; i++) {
        for (struct coff *c = gs->offs[i], *next; c; c = next) {
            next = c->next;
            free(c->group);
            free(c->topic);
            free(c->meta);
            free(c);
        }
        gs->offs[i] = NULL;
    }
    gs->noffs = 0;
}

/* The binary key of a commit record: version u8, then group, topic and
 * metadata as u16 length + bytes, partition i32, offset i64 (big-endian,
 * like the rest of what Kafka clients might look at). */
static size_t key_encode(uint8_t *out, const char *g, const char *t, int32_t p, int64_t off,
                         const char *meta)
{
    size_t at = 0;
    out[at++] = KEY_VERSION;
    const char *strs[3] = {g, t, meta ? meta : ""};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(strs[i]);
        out[at++] = (uint8_t)(n >> 8);
        out[at++] = (uint8_t)n;
        memcpy(out + at, strs[i], n);
        at += n;
    }
    for (int i = 3; i >= 0; i--)
        out[at++] = (uint8_t)((uint32_t)p >> (8 * i));
    for (int i = 7; i >= 0; i--)
        out[at++] = (uint8_t)((uint64_t)off >> (8 * i));
    return at;
}

static int key_decode(const uint8_t *k, size_t len, char *g, char *t, char *meta, int32_t *p,
                      int64_t *off)
{
    size_t at = 0;
    if (len < 1 || k[at++] != KEY_VERSION)
        return -EBADMSG;
    char *outs[3] = {g, t, meta};
    size_t caps[3] = {256, 256, META_MAX + 1};
    for (int i = 0; i < 3; i++) {
        if (len - at < 2)
            return -EBADMSG;
        size_t n = (size_t)k[at] << 8 | k[at + 1];
        at += 2;
        if (n >= caps[i] || len - at < n)
            return -EBADMSG;
        memcpy(outs[i], k + at, n);
        outs[i][n] = '\0';
        at += n;
    }
    if (len - at != 12)
        return -EBADMSG;
    uint32_t pv = 0;
    uint64_t ov = 0;
    for (int i = 0; i < 4; i++)
        pv = pv << 8 | k[at++];
    for (int i = 0; i < 8; i++)
        ov = ov << 8 | k[at++];
    *p = (int32_t)pv;
    *off = (int64_t)ov;
    return 0;
}

/* Reads the offsets partition from where the map stops to its commit
 * point. */
static void catch_up(struct groups *gs)
{
    struct part *p = offsets_part(gs);
    if (!p || part_remote(p))
        return;
    struct topic *t = part_topic(p);
    if (t && topic_id(t) != gs->loaded_id) {
        coff_clear(gs); /* the topic was made again */
        gs->loaded = 0;
        gs->loaded_id = topic_id(t);
    }
    struct part_info pi;
    part_info(p, &pi);
    if (gs->loaded < pi.first_off)
        gs->loaded = pi.first_off;
    static uint8_t aux[8192];
    char g[256], tp[256], meta[META_MAX + 1];
    for (; gs->loaded < pi.next_off; gs->loaded++) {
        struct part_entry e;
        if (part_entry(p, gs->loaded, &e, aux, sizeof(aux)) < 0 || !e.record || !e.aux_len)
            continue;
        struct rec_kafka rk;
        int32_t part;
        int64_t off;
        if (aux_get_kafka(aux, e.aux_len, &rk) < 0 || !(rk.flags & RK_KEY) ||
            key_decode(rk.key, rk.key_len, g, tp, meta, &part, &off) < 0)
            continue;
        coff_set(gs, g, tp, part, off, meta);
    }
}

/* ------------------------------------------------------------ open/close */

int groups_open(struct groups **out, struct broker *b, uv_loop_t *loop)
{
    struct groups *gs = calloc(1, sizeof(*gs));
    if (!gs)
        return -ENOMEM;
    gs->b = b;
    gs->loop = loop;
    uv_timer_init(loop, &gs->timer);
    gs->timer.data = gs;
    uv_timer_start(&gs->timer, tick, TICK_MS, TICK_MS);
    *out = gs;
    return 0;
}

static void member_free(struct member *m)
{
    for (size_t i = 0; i < m->nprotos; i++) {
        free((void *)m->protos[i].name);
        free((void *)m->protos[i].meta);
    }
    free(m->protos);
    free(m->id);
    free(m->client_id);
    free(m->host);
    free(m->assign);
    free(m);
}

static void answer_join(struct group *g, struct member *m, int err);
static void answer_sync(struct member *m, int err);

static void group_free(struct group *g)
{
    while (g->members) {
        struct member *m = g->members;
        g->members = m->next;
        answer_join(g, m, GERR_COORDINATOR_NOT_AVAILABLE);
        answer_sync(m, GERR_COORDINATOR_NOT_AVAILABLE);
        member_free(m);
    }
    free(g->name);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

static void groups_free(struct groups *gs)
{
    coff_clear(gs);
    free(gs->offs);
    free(gs);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct groups *gs = h->data;
    gs->timer_closed = true;
    if (!gs->inflight)
        groups_free(gs);
}

void groups_close(struct groups *gs)
{
    gs->closing = true;
    while (gs->groups) {
        struct group *g = gs->groups;
        gs->groups = g->next;
        group_free(g);
    }
    while (gs->where) {
        struct waiter_c *w = gs->where;
        gs->where = w->next;
        w->cb(w->arg, GERR_COORDINATOR_NOT_AVAILABLE, 0);
        free(w);
    }
    uv_close((uv_handle_t *)&gs->timer, on_timer_closed);
}

/* ------------------------------------------------------------ the coordinator */

static void answer_where(struct groups *gs, void *arg, groups_where_cb cb)
{
    int err = coordinating(gs);
    if (err == GERR_NOT_COORDINATOR || err == GERR_NONE) {
        struct part_info pi;
        part_info(offsets_part(gs), &pi);
        uint32_t node = part_replicated(offsets_part(gs)) ? pi.leader : broker_config(gs->b)->node_id;
        cb(arg, GERR_NONE, node);
        return;
    }
    cb(arg, err, 0);
}

static void on_offsets_topic(void *arg, int status)
{
    struct groups *gs = arg;
    gs->creating = false;
    if (status < 0 && status != -EEXIST)
        mk_log(MK_WARN, "groups: making %s: %s", GROUPS_TOPIC, strerror(-status));
    struct waiter_c *w = gs->where;
    gs->where = NULL;
    while (w) {
        struct waiter_c *next = w->next;
        answer_where(gs, w->arg, w->cb);
        free(w);
        w = next;
    }
}

void groups_coordinator(struct groups *gs, groups_where_cb cb, void *arg)
{
    if (offsets_part(gs)) {
        answer_where(gs, arg, cb);
        return;
    }
    struct waiter_c *w = malloc(sizeof(*w));
    if (!w) {
        cb(arg, GERR_COORDINATOR_NOT_AVAILABLE, 0);
        return;
    }
    w->cb = cb;
    w->arg = arg;
    w->next = gs->where;
    gs->where = w;
    if (gs->creating)
        return;
    gs->creating = true;
    struct broker_change_req cr = {.kind = BC_CREATE, .topic = GROUPS_TOPIC, .value = "1"};
    cr.own = *broker_root_owner(gs->b);
    cr.own.mode = 0755;
    if (broker_change(gs->b, &cr, on_offsets_topic, gs) < 0) {
        gs->creating = false;
        on_offsets_topic(gs, -EAGAIN);
    }
}

/* ------------------------------------------------------------ membership */

static struct group *group_get(struct groups *gs, const char *name, bool make)
{
    for (struct group *g = gs->groups; g; g = g->next)
        if (!strcmp(g->name, name))
            return g;
    if (!make)
        return NULL;
    struct group *g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    g->next = gs->groups;
    gs->groups = g;
    return g;
}

static struct member *member_get(struct group *g, const char *id)
{
    for (struct member *m = g->members; m; m = m->next)
        if (!strcmp(m->id, id))
            return m;
    return NULL;
}

static size_t nmembers(const struct group *g)
{
    size_t n = 0;
    for (struct member *m = g->members; m; m = m->next)
        n++;
    return n;
}

static bool all_joined(const struct group *g)
{
    for (const struct member *m = g->members; m; m = m->next)
        if (!m->join_cb)
            return false;
    return g->members != NULL;
}

static void answer_join(struct group *g, struct member *m, int err)
{
    if (!m->join_cb)
        return;
    group_join_cb cb = m->join_cb;
    m->join_cb = NULL;
    struct group_joined j = {.err = err, .generation = -1, .protocol = "", .leader = "",
                             .member_id = m->id};
    if (!err) {
        j.generation = g->generation;
        j.protocol = g->protocol;
        j.leader = g->leader;
    }
    cb(m->join_arg, &j);
}

static void answer_sync(struct member *m, int err)
{
    if (!m->sync_cb)
        return;
    group_sync_cb cb = m->sync_cb;
    m->sync_cb = NULL;
    cb(m->sync_arg, err, err ? NULL : m->assign, err ? 0 : m->assign_len);
}

static void remove_member(struct group *g, struct member *m, int err)
{
    for (struct member **at = &g->members; *at; at = &(*at)->next) {
        if (*at == m) {
            *at = m->next;
            break;
        }
    }
    answer_join(g, m, err);
    answer_sync(m, err);
    if (g->leader && !strcmp(g->leader, m->id)) {
        free(g->leader);
        g->leader = NULL;
    }
    member_free(m);
}

/* A new rebalance: held syncs learn of it; joins are awaited. */
static void prepare(struct groups *gs, struct group *g)
{
    int64_t now = (int64_t)uv_now(gs->loop);
    if (g->state == G_EMPTY)
        g->initial = true;
    if (g->initial) {
        /* The first members: each one that comes gives the others time. */
        g->deadline_ms = now + INITIAL_DELAY_MS;
    } else if (g->state != G_PREPARING) {
        /* Fixed when the rebalance starts (Kafka's rule): joins that keep
         * coming cannot hold it open. */
        int32_t longest = 0;
        for (struct member *m = g->members; m; m = m->next)
            if (m->rebalance_ms > longest)
                longest = m->rebalance_ms;
        g->deadline_ms = now + longest;
    }
    if (g->state == G_PREPARING)
        return;
    for (struct member *m = g->members; m; m = m->next)
        answer_sync(m, GERR_REBALANCE_IN_PROGRESS);
    g->state = G_PREPARING;
}

/* The protocol every member supports, in the first member's order of
 * preference; NULL when there is none. */
static const char *common_protocol(const struct group *g)
{
    const struct member *first = g->members;
    if (!first)
        return NULL;
    for (size_t i = 0; i < first->nprotos; i++) {
        bool all = true;
        for (const struct member *m = first->next; m && all; m = m->next) {
            bool has = false;
            for (size_t k = 0; k < m->nprotos && !has; k++)
                has = !strcmp(m->protos[k].name, first->protos[i].name);
            all = has;
        }
        if (all)
            return first->protos[i].name;
    }
    return NULL;
}

static const struct group_protocol *proto_of(const struct member *m, const char *name)
{
    for (size_t i = 0; i < m->nprotos; i++)
        if (!strcmp(m->protos[i].name, name))
            return &m->protos[i];
    return NULL;
}

/* Ends the join phase: members that did not join again are dropped, the
 * generation moves on, and every held join is answered. */
static void complete(struct groups *gs, struct group *g)
{
    (void)gs;
    for (struct member *m = g->members, *next; m; m = next) {
        next = m->next;
        if (!m->join_cb)
            remove_member(g, m, GERR_UNKNOWN_MEMBER_ID);
    }
    g->generation++;
    g->initial = false;
    if (!g->members) {
        g->state = G_EMPTY;
        free(g->protocol);
        g->protocol = NULL;
        return;
    }
    const char *proto = common_protocol(g);
    char *p = dup_str(proto);
    free(g->protocol);
    g->protocol = p;
    if (!g->leader || !member_get(g, g->leader)) {
        free(g->leader);
        g->leader = dup_str(g->members->id);
    }
    g->state = G_COMPLETING;
    size_t n = nmembers(g);
    struct group_member_info *info = calloc(n, sizeof(*info));
    size_t k = 0;
    for (struct member *m = g->members; m && info; m = m->next) {
        const struct group_protocol *gp = proto_of(m, g->protocol);
        info[k++] = (struct group_member_info){.member_id = m->id,
                                               .meta = gp ? gp->meta : NULL,
                                               .meta_len = gp ? gp->meta_len : 0};
        free(m->assign);
        m->assign = NULL;
        m->assign_len = 0;
    }
    /* Answer every held join; the leader gets the members. */
    for (struct member *m = g->members; m;) {
        struct member *next = m->next;
        if (m->join_cb) {
            group_join_cb cb = m->join_cb;
            m->join_cb = NULL;
            bool leader = !strcmp(m->id, g->leader);
            struct group_joined j = {.err = info ? GERR_NONE : GERR_UNKNOWN,
                                     .generation = g->generation,
                                     .protocol = g->protocol,
                                     .leader = g->leader,
                                     .member_id = m->id,
                                     .members = leader ? info : NULL,
                                     .nmembers = leader && info ? n : 0};
            m->seen_ms = uv_now(gs->loop);
            cb(m->join_arg, &j);
        }
        m = next;
    }
    free(info);
}

static char *new_member_id(const char *client_id)
{
    uint8_t r[8];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        memset(r, 0, sizeof(r));
    char *id = NULL;
    if (asprintf(&id, "%.100s-%02x%02x%02x%02x-%02x%02x-%02x%02x", client_id && *client_id ? client_id : "member",
                 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) < 0)
        return NULL;
    return id;
}

static int set_protocols(struct member *m, const struct group_join *j)
{
    struct group_protocol *ps = calloc(j->nprotocols ? j->nprotocols : 1, sizeof(*ps));
    if (!ps)
        return -ENOMEM;
    for (size_t i = 0; i < j->nprotocols; i++) {
        ps[i].name = strdup(j->protocols[i].name);
        uint8_t *meta = malloc(j->protocols[i].meta_len ? j->protocols[i].meta_len : 1);
        if (meta && j->protocols[i].meta_len)
            memcpy(meta, j->protocols[i].meta, j->protocols[i].meta_len);
        ps[i].meta = meta;
        ps[i].meta_len = j->protocols[i].meta_len;
        if (!ps[i].name || !meta) {
            for (size_t k = 0; k <= i; k++) {
                free((void *)ps[k].name);
                free((void *)ps[k].meta);
            }
            free(ps);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < m->nprotos; i++) {
        free((void *)m->protos[i].name);
        free((void *)m->protos[i].meta);
    }
    free(m->protos);
    m->protos = ps;
    m->nprotos = j->nprotocols;
    return 0;
}

static void join_fail(const struct group_join *j, group_join_cb cb, void *arg, int err)
{
    struct group_joined r = {.err = err, .generation = -1, .protocol = "", .leader = "",
                             .member_id = j->member_id ? j->member_id : ""};
    cb(arg, &r);
}

/* Whether m's protocols leave the group a protocol in common. */
static bool shares_protocol(const struct group *g, const struct member *skip,
                            const struct group_join *j)
{
    for (size_t i = 0; i < j->nprotocols; i++) {
        bool all = true;
        for (const struct member *m = g->members; m && all; m = m->next)
            if (m != skip)
                all = proto_of(m, j->protocols[i].name) != NULL;
        if (all)
            return true;
    }
    return false;
}

void group_join(struct groups *gs, const struct group_join *j, group_join_cb cb, void *arg)
{
    int err = coordinating(gs);
    if (err) {
        join_fail(j, cb, arg, err);
        return;
    }
    if (!j->group[0] || strlen(j->group) > 255) {
        join_fail(j, cb, arg, GERR_INVALID_GROUP_ID);
        return;
    }
    if (j->session_timeout_ms < SESSION_MIN_MS || j->session_timeout_ms > SESSION_MAX_MS) {
        join_fail(j, cb, arg, GERR_INVALID_SESSION_TIMEOUT);
        return;
    }
    struct group *g = group_get(gs, j->group, true);
    if (!g) {
        join_fail(j, cb, arg, GERR_UNKNOWN);
        return;
    }
    struct member *m = NULL;
    if (j->member_id && j->member_id[0]) {
        m = member_get(g, j->member_id);
        if (!m) {
            join_fail(j, cb, arg, GERR_UNKNOWN_MEMBER_ID);
            return;
        }
    }
    if (!j->nprotocols || (g->members && g->protocol_type && j->protocol_type &&
                           strcmp(g->protocol_type, j->protocol_type)) ||
        (g->members && !shares_protocol(g, m, j))) {
        join_fail(j, cb, arg, GERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m || !(m->id = new_member_id(j->client_id)) || !(m->client_id = dup_str(j->client_id)) ||
            !(m->host = dup_str(j->client_host))) {
            if (m) {
                free(m->id);
                free(m->client_id);
            }
            free(m);
            join_fail(j, cb, arg, GERR_UNKNOWN);
            return;
        }
        /* Last: the leader is the longest standing member. */
        struct member **at = &g->members;
        while (*at)
            at = &(*at)->next;
        *at = m;
    }
    if (set_protocols(m, j) < 0) {
        join_fail(j, cb, arg, GERR_UNKNOWN);
        return;
    }
    if (!g->protocol_type || !g->members->next) {
        char *pt = dup_str(j->protocol_type);
        free(g->protocol_type);
        g->protocol_type = pt;
    }
    m->session_ms = j->session_timeout_ms;
    m->rebalance_ms = j->rebalance_timeout_ms > 0 ? j->rebalance_timeout_ms : j->session_timeout_ms;
    m->seen_ms = uv_now(gs->loop);
    answer_join(g, m, GERR_UNKNOWN_MEMBER_ID); /* a join that replaces a held one */
    m->join_cb = cb;
    m->join_arg = arg;
    answer_sync(m, GERR_REBALANCE_IN_PROGRESS);
    prepare(gs, g);
    if (!g->initial && all_joined(g))
        complete(gs, g); /* everyone is back: no need to wait */
    /* else the tick completes it (the first members come together) */
}

void group_sync(struct groups *gs, const char *group, int32_t generation, const char *member_id,
                const struct group_assignment *a, size_t n, group_sync_cb cb, void *arg)
{
    int err = coordinating(gs);
    struct group *g = err ? NULL : group_get(gs, group, false);
    struct member *m = g ? member_get(g, member_id) : NULL;
    if (!err && !m)
        err = GERR_UNKNOWN_MEMBER_ID;
    else if (!err && generation != g->generation)
        err = GERR_ILLEGAL_GENERATION;
    else if (!err && g->state == G_PREPARING)
        err = GERR_REBALANCE_IN_PROGRESS;
    if (err) {
        cb(arg, err, NULL, 0);
        return;
    }
    m->seen_ms = uv_now(gs->loop);
    answer_sync(m, GERR_REBALANCE_IN_PROGRESS); /* an older one held */
    m->sync_cb = cb;
    m->sync_arg = arg;
    if (g->state == G_STABLE) {
        answer_sync(m, GERR_NONE);
        return;
    }
    if (strcmp(member_id, g->leader) != 0)
        return; /* held for the leader's */
    for (size_t i = 0; i < n; i++) {
        struct member *x = member_get(g, a[i].member_id);
        if (!x)
            continue;
        uint8_t *d = malloc(a[i].len ? a[i].len : 1);
        if (!d)
            continue;
        if (a[i].len)
            memcpy(d, a[i].data, a[i].len);
        free(x->assign);
        x->assign = d;
        x->assign_len = a[i].len;
    }
    g->state = G_STABLE;
    for (struct member *x = g->members; x; x = x->next)
        answer_sync(x, GERR_NONE);
}

/* The member of a request on this coordinator: 0 with *g and *m, or the
 * error to answer. */
static int find_member(struct groups *gs, const char *group, const char *member_id,
                       struct group **g, struct member **m)
{
    int err = coordinating(gs);
    if (err)
        return err;
    *g = group_get(gs, group, false);
    *m = *g ? member_get(*g, member_id) : NULL;
    return *m ? GERR_NONE : GERR_UNKNOWN_MEMBER_ID;
}

int group_heartbeat(struct groups *gs, const char *group, int32_t generation,
                    const char *member_id)
{
    struct group *g;
    struct member *m;
    int err = find_member(gs, group, member_id, &g, &m);
    if (err)
        return err;
    if (generation != g->generation)
        return GERR_ILLEGAL_GENERATION;
    m->seen_ms = uv_now(gs->loop);
    return g->state == G_PREPARING ? GERR_REBALANCE_IN_PROGRESS : GERR_NONE;
}

int group_leave(struct groups *gs, const char *group, const char *member_id)
{
    struct group *g;
    struct member *m;
    int err = find_member(gs, group, member_id, &g, &m);
    if (err)
        return err;
    remove_member(g, m, GERR_UNKNOWN_MEMBER_ID);
    if (g->members)
        prepare(gs, g);
    else {
        g->state = G_EMPTY;
        g->generation++;
    }
    return GERR_NONE;
}

static void tick(uv_timer_t *t)
{
    struct groups *gs = t->data;
    int64_t now = (int64_t)uv_now(gs->loop);
    bool coord = coordinating(gs) == GERR_NONE;
    for (struct group **at = &gs->groups; *at;) {
        struct group *g = *at;
        if (!coord && g->members) {
            /* Not the coordinator any more: members find the new one. */
            while (g->members)
                remove_member(g, g->members, GERR_NOT_COORDINATOR);
            g->state = G_EMPTY;
        }
        for (struct member *m = g->members, *next; m; m = next) {
            next = m->next;
            /* A member with a held join is waiting for us, not late. */
            if (!m->join_cb && now - m->seen_ms > m->session_ms) {
                mk_log(MK_INFO, "group %s: member %s left (no heartbeat for %d ms)", g->name, m->id,
                       m->session_ms);
                remove_member(g, m, GERR_UNKNOWN_MEMBER_ID);
                if (g->members)
                    prepare(gs, g);
                else if (g->state != G_PREPARING) {
                    g->state = G_EMPTY;
                    g->generation++;
                }
            }
        }
        if (g->state == G_PREPARING && (now >= g->deadline_ms || (!g->initial && all_joined(g))))
            complete(gs, g);
        /* An empty group is kept, as Kafka keeps it: its generation goes
         * on counting, so a member of an old generation is never taken for
         * one of a new one. */
        at = &g->next;
    }
}

/* ------------------------------------------------------------ commits */

struct commit_op {
    struct groups *gs;
    struct group_offset *offs;
    size_t n;
    void (*cb)(void *arg, int err);
    void *arg;
};

static void on_committed(void *arg, int status, uint64_t first)
{
    (void)first;
    struct commit_op *op = arg;
    int err = status == 0 ? GERR_NONE : status == -EREMOTE ? GERR_NOT_COORDINATOR
                                                            : GERR_REQUEST_TIMED_OUT;
    for (size_t i = 0; i < op->n; i++)
        if (!op->offs[i].err)
            op->offs[i].err = err;
    struct groups *gs = op->gs;
    if (status == 0 && !gs->closing)
        catch_up(gs);
    op->cb(op->arg, err);
    free(op);
    if (--gs->inflight == 0 && gs->timer_closed)
        groups_free(gs); /* closed meanwhile */
}

/* A group name as a key=value value: %XX outside [A-Za-z0-9._-]. */
static size_t escape(char *out, size_t cap, const char *g)
{
    size_t at = 0;
    for (const char *s = g; *s && at + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
            c == '_' || c == '-')
            out[at++] = (char)c;
        else
            at += (size_t)snprintf(out + at, cap - at, "%%%02X", c);
    }
    if (cap)
        out[at < cap ? at : cap - 1] = '\0';
    return at;
}

/* The line a commit shows in the mount (escaped group). */
static size_t commit_line(char *out, size_t cap, const char *g, const char *t, int32_t p, int64_t off)
{
    size_t at = (size_t)snprintf(out, cap, "commit group=");
    at += escape(out + at, cap - at, g);
    at += (size_t)snprintf(out + at, cap - at, " topic=%s partition=%d offset=%" PRId64 "\n", t, p,
                           off);
    return at < cap ? at : cap;
}

void group_commit(struct groups *gs, const char *group, int32_t generation,
                  const char *member_id, struct group_offset *offs, size_t n,
                  void (*cb)(void *arg, int err), void *arg)
{
    int err = coordinating(gs);
    struct group *g = err ? NULL : group_get(gs, group, false);
    if (!err && (generation >= 0 || (member_id && member_id[0]))) {
        struct member *m = g ? member_get(g, member_id) : NULL;
        if (!m)
            err = GERR_UNKNOWN_MEMBER_ID;
        else if (generation != g->generation)
            err = GERR_ILLEGAL_GENERATION;
        else if (g->state == G_COMPLETING)
            err = GERR_REBALANCE_IN_PROGRESS;
        else
            m->seen_ms = uv_now(gs->loop);
    } else if (!err && g && g->members) {
        err = GERR_UNKNOWN_MEMBER_ID; /* an active group takes its members' commits only */
    }
    if (!err && (!group[0] || strlen(group) > 255))
        err = GERR_INVALID_GROUP_ID; /* as join refuses it: a longer name would not read back */
    if (err) {
        for (size_t i = 0; i < n; i++)
            offs[i].err = err;
        cb(arg, err);
        return;
    }
    /* One record per offset: its line, its key. */
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        offs[i].err = GERR_NONE;
        if (offs[i].metadata && strlen(offs[i].metadata) > META_MAX)
            offs[i].err = GERR_OFFSET_METADATA_TOO_LARGE;
        else if (strlen(offs[i].topic) > 255)
            offs[i].err = GERR_UNKNOWN_TOPIC_OR_PARTITION;
        cap += 64 + 3 * strlen(group) + 2 * strlen(offs[i].topic) + 20 +
               (offs[i].metadata ? strlen(offs[i].metadata) : 0);
    }
    char *lines = malloc(cap + 1);
    uint8_t *aux = malloc(cap + 64 * n + 1);
    struct part_rec *recs = calloc(n ? n : 1, sizeof(*recs));
    struct commit_op *op = malloc(sizeof(*op));
    if (!lines || !aux || !recs || !op) {
        free(lines);
        free(aux);
        free(recs);
        free(op);
        cb(arg, GERR_UNKNOWN);
        return;
    }
    size_t at = 0, aat = 0, nr = 0;
    uint8_t key[600 + META_MAX];
    for (size_t i = 0; i < n; i++) {
        if (offs[i].err)
            continue;
        size_t len = commit_line(lines + at, cap + 1 - at, group, offs[i].topic, offs[i].partition,
                                 offs[i].offset);
        size_t klen = key_encode(key, group, offs[i].topic, offs[i].partition, offs[i].offset,
                                 offs[i].metadata);
        struct rec_kafka rk = {.flags = RK_KEY, .ts = sys_now_ms(), .key = key, .key_len = (uint32_t)klen};
        size_t alen = aux_put_kafka(aux + aat, &rk);
        recs[nr++] = (struct part_rec){.len = (uint32_t)len, .aux = aux + aat, .aux_len = (uint32_t)alen};
        at += len;
        aat += alen;
    }
    *op = (struct commit_op){.gs = gs, .offs = offs, .n = n, .cb = cb, .arg = arg};
    struct iovec iov = {lines, at};
    if (nr)
        gs->inflight++;
    int rc = nr ? part_append_recs(offsets_part(gs), &iov, 1, recs, nr, NULL, on_committed, op) : 0;
    if (nr && rc < 0)
        gs->inflight--;
    free(lines);
    free(aux);
    free(recs);
    if (!nr) {
        free(op);
        cb(arg, GERR_NONE);
    } else if (rc < 0) {
        op->cb = NULL;
        for (size_t i = 0; i < n; i++)
            if (!offs[i].err)
                offs[i].err = rc == -EREMOTE ? GERR_NOT_COORDINATOR : GERR_UNKNOWN;
        free(op);
        cb(arg, rc == -EREMOTE ? GERR_NOT_COORDINATOR : GERR_UNKNOWN);
    }
}

int group_fetch(struct groups *gs, const char *group, const char *topic, int32_t partition,
                int64_t *offset, const char **metadata)
{
    int err = coordinating(gs);
    if (err)
        return err;
    catch_up(gs);
    struct coff *c = coff_find(gs, group, topic, partition);
    *offset = c ? c->offset : -1;
    *metadata = c ? c->meta : "";
    return GERR_NONE;
}

int group_fetch_all(struct groups *gs, const char *group,
                    void (*fn)(void *arg, const char *topic, int32_t partition, int64_t offset,
                               const char *metadata),
                    void *arg)
{
    int err = coordinating(gs);
    if (err)
        return err;
    catch_up(gs);
    for (size_t i = 0; i < gs->nbuckets; i++)
        for (struct coff *c = gs->offs[i]; c; c = c->next)
            if (!strcmp(c->group, group))
                fn(arg, c->topic, c->partition, c->offset, c->meta);
    return GERR_NONE;
}

char *groups_status(const struct groups *gs)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    for (const struct group *g = gs->groups; g; g = g->next) {
        char name[3 * 256 + 1], proto[3 * 256 + 1], leader[3 * 400 + 1];
        escape(name, sizeof(name), g->name);
        escape(proto, sizeof(proto), g->protocol ? g->protocol : "");
        escape(leader, sizeof(leader), g->leader ? g->leader : "");
        fprintf(f,
                "group=%s group.state=%s group.generation=%d group.protocol=%s group.leader=%s "
                "group.members=%zu\n",
                name, state_names[g->state], g->generation, proto, leader, nmembers(g));
    }
    fclose(f);
    return buf;
}
