/*
 * api — one handler per Kafka API, over broker.h.
 *
 * WHAT WE ADVERTISE (ApiVersions), the same on every node: every API from
 * version 0 (librdkafka 2.0 tests features against single old versions;
 * kafka-clients.md 2) except Fetch, from 4.  Versions we advertise but do
 * not decode (Produce 0-2: message formats v0/v1, which Kafka 4 dropped
 * too) are answered with UNSUPPORTED_VERSION in their own layout.  Only
 * ApiVersions v3 is flexible among them.
 *
 * RECORDS
 *   A Kafka record's value is what the partition file shows for it, with
 *   one '\n' after it; its key, headers and the producer's timestamp are
 *   its side data (record.h).  Records written through the mount have no
 *   side data: Kafka sees them with a null key, no headers and their
 *   append time.  Fetch answers uncompressed batches, one per partition.
 */
#include "broker/groups.h"
#include "broker/kafka/compress.h"
#include "broker/kafka/internal.h"
#include "broker/log.h"
#include "broker/record.h"
#include "broker/sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    API_PRODUCE = 0,
    API_FETCH = 1,
    API_LIST_OFFSETS = 2,
    API_METADATA = 3,
    API_API_VERSIONS = 18,
    API_CREATE_TOPICS = 19,
    API_DELETE_TOPICS = 20,
    API_INIT_PRODUCER_ID = 22,
    API_OFFSET_COMMIT = 8,
    API_OFFSET_FETCH = 9,
    API_FIND_COORDINATOR = 10,
    API_JOIN_GROUP = 11,
    API_HEARTBEAT = 12,
    API_LEAVE_GROUP = 13,
    API_SYNC_GROUP = 14,
};

struct api {
    int16_t key, min, max;
    int16_t flex; /* first flexible version; INT16_MAX: none we serve */
    int (*handle)(struct kreq *r);
};

static int h_produce(struct kreq *r);
static int h_fetch(struct kreq *r);
static int h_list_offsets(struct kreq *r);
static int h_metadata(struct kreq *r);
static int h_api_versions(struct kreq *r);
static int h_create_topics(struct kreq *r);
static int h_delete_topics(struct kreq *r);
static int h_init_producer_id(struct kreq *r);

static const struct api apis[] = {
    {API_PRODUCE, 0, 7, INT16_MAX, h_produce},
    {API_FETCH, 4, 11, INT16_MAX, h_fetch},
    {API_LIST_OFFSETS, 0, 3, INT16_MAX, h_list_offsets},
    {API_METADATA, 0, 6, INT16_MAX, h_metadata},
    {API_API_VERSIONS, 0, 3, 3, h_api_versions},
    {API_CREATE_TOPICS, 0, 4, INT16_MAX, h_create_topics},
    {API_DELETE_TOPICS, 0, 3, INT16_MAX, h_delete_topics},
    {API_INIT_PRODUCER_ID, 0, 1, INT16_MAX, h_init_producer_id},
    {API_OFFSET_COMMIT, 0, 7, INT16_MAX, kapi_offset_commit},
    {API_OFFSET_FETCH, 0, 5, INT16_MAX, kapi_offset_fetch},
    {API_FIND_COORDINATOR, 0, 2, INT16_MAX, kapi_find_coordinator},
    {API_JOIN_GROUP, 0, 5, INT16_MAX, kapi_join_group},
    {API_HEARTBEAT, 0, 3, INT16_MAX, kapi_heartbeat},
    {API_LEAVE_GROUP, 0, 1, INT16_MAX, kapi_leave_group},
    {API_SYNC_GROUP, 0, 3, INT16_MAX, kapi_sync_group},
};
#define NAPIS (sizeof(apis) / sizeof(apis[0]))

static const struct api *api_of(int16_t key)
{
    for (size_t i = 0; i < NAPIS; i++)
        if (apis[i].key == key)
            return &apis[i];
    return NULL;
}

bool kapi_known(int16_t key, int16_t version)
{
    const struct api *a = api_of(key);
    /* ApiVersions answers any version (too new: error 35, v0 layout). */
    return a && version >= 0 && (key == API_API_VERSIONS || (version >= a->min && version <= a->max));
}

bool kapi_flexible_request(int16_t key, int16_t version)
{
    const struct api *a = api_of(key);
    return a && version >= a->flex && !(key == API_API_VERSIONS && version > a->max);
}

bool kapi_flexible_response(int16_t key, int16_t version)
{
    return key != API_API_VERSIONS && kapi_flexible_request(key, version);
}

int kapi_dispatch(struct kreq *r)
{
    return api_of(r->h.api_key)->handle(r);
}

/* ------------------------------------------------------------ helpers */

/* A topic by a (not NUL-terminated) name from the wire; NULL if unknown or
 * not a valid name. */
static struct topic *find_topic(struct kafka *k, const uint8_t *name, int32_t len, char *buf)
{
    if (len <= 0 || len > 249)
        return NULL;
    memcpy(buf, name, (size_t)len);
    buf[len] = '\0';
    return topic_find(k->b, buf);
}

/* The high watermark Kafka clients see: the commit point, less the
 * entries at its end that show nothing (a new Raft leader's NOOP, a
 * segment roll): a consumer that read every record is then at the end
 * (kcat -e stops), and the next record's batch starts past them. */
static uint64_t kafka_hwm(struct part *p, const struct part_info *pi)
{
    uint64_t h = pi->next_off;
    struct part_entry e;
    for (int i = 0; i < 64 && h > pi->first_off; i++, h--)
        if (part_entry(p, h - 1, &e, NULL, 0) < 0 || e.record)
            break;
    return h;
}

static int32_t node_id(const struct kafka *k)
{
    return (int32_t)broker_config(k->b)->node_id;
}

/* The errno of a broker call as a Kafka error. */
static int16_t kerr_of(int rc)
{
    switch (rc) {
    case 0:
        return KERR_NONE;
    case -ENOENT:
    case -ESTALE:
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    case -EAGAIN:
        return KERR_LEADER_NOT_AVAILABLE;
    case -ETIMEDOUT:
        return KERR_REQUEST_TIMED_OUT;
    case -EREMOTE:
        return KERR_NOT_LEADER;
    case -EMSGSIZE:
    case -EFBIG:
        return KERR_MESSAGE_TOO_LARGE;
    case -ENOSPC:
    case -EIO:
    case -EDQUOT:
        return KERR_KAFKA_STORAGE_ERROR;
    case -EEXIST:
        return KERR_TOPIC_ALREADY_EXISTS;
    case -EILSEQ:
        return KERR_OUT_OF_ORDER_SEQUENCE;
    case -EINVAL:
    case -ENAMETOOLONG:
        return KERR_INVALID_TOPIC;
    default:
        return KERR_UNKNOWN;
    }
}

/* ------------------------------------------------------------ ApiVersions */

static void write_api_list(struct kw *w, bool compact)
{
    if (compact)
        kw_compact_array(w, (int32_t)NAPIS);
    else
        kw_array(w, (int32_t)NAPIS);
    for (size_t i = 0; i < NAPIS; i++) {
        kw_i16(w, apis[i].key);
        kw_i16(w, apis[i].min);
        kw_i16(w, apis[i].max);
        if (compact)
            kw_empty_tags(w);
    }
}

static int h_api_versions(struct kreq *r)
{
    int16_t v = r->h.api_version;
    struct kw *w = &r->out;
    if (v > 3) {
        /* KIP-511: error 35 in the v0 layout, with our ranges, so that the
         * client steps down. */
        kw_i16(w, KERR_UNSUPPORTED_VERSION);
        write_api_list(w, false);
        kreq_done(r);
        return 0;
    }
    int16_t err = KERR_NONE;
    if (v == 3) {
        const uint8_t *s;
        kr_compact_string(&r->body, &s); /* client software name */
        kr_compact_string(&r->body, &s); /* and version */
        kr_skip_tags(&r->body);
        if (r->body.err)
            err = KERR_INVALID_REQUEST;
    }
    kw_i16(w, err);
    write_api_list(w, v == 3);
    if (v >= 1)
        kw_i32(w, 0); /* throttle */
    if (v == 3)
        kw_empty_tags(w);
    kreq_done(r);
    return 0;
}

/* ------------------------------------------------------------ Metadata */

struct meta_state {
    int creating; /* auto-creations in flight */
};

static void write_partition_meta(struct kafka *k, struct kw *w, int16_t v, struct topic *t,
                                 uint32_t i)
{
    struct part *p = topic_part(t, i);
    struct part_info pi;
    part_info(p, &pi);
    int32_t leader = part_replicated(p) ? (pi.leader ? (int32_t)pi.leader : -1) : node_id(k);
    kw_i16(w, leader < 0 ? KERR_LEADER_NOT_AVAILABLE : KERR_NONE);
    kw_i32(w, (int32_t)i);
    kw_i32(w, leader);
    int32_t ids[32];
    int nids = 0;
    if (part_replicated(p)) {
        char list[256];
        part_list(p, 'r', list, sizeof(list));
        for (char *q = list; *q && nids < 32;) {
            ids[nids++] = (int32_t)strtol(q, &q, 10);
            if (*q == ',')
                q++;
        }
    } else {
        ids[nids++] = node_id(k);
    }
    kw_array(w, nids);
    for (int j = 0; j < nids; j++)
        kw_i32(w, ids[j]);
    if (part_replicated(p)) {
        char list[256];
        int32_t isr[32];
        int n = 0;
        part_list(p, 'i', list, sizeof(list));
        if (!list[0]) /* only the leader knows: the replicas, as far as we can tell */
            part_list(p, 'r', list, sizeof(list));
        for (char *q = list; *q && n < 32;) {
            isr[n++] = (int32_t)strtol(q, &q, 10);
            if (*q == ',')
                q++;
        }
        kw_array(w, n);
        for (int j = 0; j < n; j++)
            kw_i32(w, isr[j]);
    } else {
        kw_array(w, 1);
        kw_i32(w, node_id(k));
    }
    if (v >= 5)
        kw_array(w, 0); /* offline replicas */
}

static void write_topic_meta(struct kafka *k, struct kw *w, int16_t v, struct topic *t,
                             const uint8_t *name, int32_t name_len, int16_t err)
{
    kw_i16(w, err);
    kw_string(w, name, name_len);
    if (v >= 1) /* is_internal: the committed offsets' topic */
        kw_i8(w, name_len == (int32_t)strlen(GROUPS_TOPIC) && !memcmp(name, GROUPS_TOPIC, (size_t)name_len));
    if (!t) {
        kw_array(w, 0);
        return;
    }
    uint32_t n = topic_partitions(t);
    kw_array(w, (int32_t)n);
    for (uint32_t i = 0; i < n; i++)
        write_partition_meta(k, w, v, t, i);
}

/* Writes the whole answer (the topics asked for are parsed again). */
static void metadata_answer(struct kreq *r)
{
    struct kafka *k = r->k;
    int16_t v = r->h.api_version;
    struct kw *w = &r->out;
    struct kr in = r->body;
    if (v >= 3)
        kw_i32(w, 0); /* throttle */
    /* Brokers: every node whose Kafka address is known here (a node tells
     * its own to the others when they connect). */
    const struct mk_config *cfg = broker_config(k->b);
    uint32_t ids[MK_MAX_PEERS];
    size_t nids = 0;
    if (cfg->npeers)
        for (size_t i = 0; i < cfg->npeers; i++)
            ids[nids++] = cfg->peers[i].id;
    else
        ids[nids++] = cfg->node_id;
    size_t count_at = w->len;
    kw_i32(w, 0);
    int32_t listed = 0;
    bool controller_listed = false;
    uint32_t controller = broker_controller(k->b);
    for (size_t i = 0; i < nids; i++) {
        char host[256];
        uint16_t port;
        if (!broker_node_kafka(k->b, ids[i], host, sizeof(host), &port))
            continue;
        kw_i32(w, (int32_t)ids[i]);
        kw_string(w, host, (int32_t)strlen(host));
        kw_i32(w, port);
        if (v >= 1)
            kw_string(w, NULL, -1); /* rack */
        listed++;
        controller_listed |= ids[i] == controller;
    }
    kw_put_i32_at(w, count_at, listed);
    if (v >= 2) {
        char id[32];
        int n = snprintf(id, sizeof(id), "mk-%016" PRIx64, broker_cluster_id(k->b));
        kw_string(w, id, n);
    }
    if (v >= 1) /* the controller must be a listed broker (admin clients send to it) */
        kw_i32(w, controller_listed ? (int32_t)controller : node_id(k));
    int32_t nt = kr_array(&in, 2);
    bool all = nt < 0 || (v == 0 && nt == 0);
    if (all) {
        size_t n = topic_count(k->b);
        kw_array(w, (int32_t)n);
        for (size_t i = 0; i < n; i++) {
            struct topic *t = topic_at(k->b, i);
            write_topic_meta(k, w, v, t, (const uint8_t *)topic_name(t),
                             (int32_t)strlen(topic_name(t)), KERR_NONE);
        }
    } else {
        kw_array(w, nt);
        char buf[256];
        for (int32_t i = 0; i < nt; i++) {
            const uint8_t *name;
            int32_t len = kr_string(&in, &name);
            struct topic *t = find_topic(k, name, len, buf);
            int16_t err = KERR_NONE;
            if (!t)
                err = len > 0 && len <= 249 && topic_name_check(buf) == 0 ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                                                                      : KERR_INVALID_TOPIC;
            write_topic_meta(k, w, v, t, name, len < 0 ? 0 : len, err);
        }
    }
    kreq_done(r);
}

static void on_auto_created(void *arg, int status)
{
    struct kreq *r = arg;
    struct meta_state *st = r->state;
    if (status < 0 && status != -EEXIST)
        mk_log(MK_WARN, "kafka: creating a topic on request: %s", strerror(-status));
    if (--st->creating == 0)
        metadata_answer(r);
    kreq_release(r);
}

static void state_free_plain(struct kreq *r)
{
    free(r->state);
    r->state = NULL;
}

static int h_metadata(struct kreq *r)
{
    struct kafka *k = r->k;
    int16_t v = r->h.api_version;
    struct kr in = r->body;
    int32_t nt = kr_array(&in, 2);
    /* Parse it all once: a body that does not parse closes the connection. */
    bool auto_create = true; /* AllowAutoTopicCreation: true unless v4+ says otherwise */
    {
        struct kr scan = in;
        for (int32_t i = 0; i < nt; i++) {
            const uint8_t *s;
            kr_string(&scan, &s);
        }
        if (v >= 4)
            auto_create = kr_i8(&scan) != 0;
        if (scan.err)
            return -EPROTO;
    }
    /* Topics asked for that do not exist are made (Kafka's default
     * auto.create.topics.enable), with num.partitions partitions, before
     * the answer; v0-v3 requests do not ask for it, nor do consumers. */
    struct meta_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -EPROTO;
    r->state = st;
    r->state_free = state_free_plain;
    st->creating = 1;
    kreq_hold(r);
    if (auto_create && nt > 0) {
        char buf[256];
        for (int32_t i = 0; i < nt; i++) {
            const uint8_t *name;
            int32_t len = kr_string(&in, &name);
            if (find_topic(k, name, len, buf) || len <= 0 || len > 249 || topic_name_check(buf) != 0)
                continue;
            struct broker_change_req cr = {.kind = BC_CREATE,
                                           .topic = buf,
                                           .own = *broker_root_owner(k->b)};
            cr.own.mode = 0755;
            st->creating++;
            kreq_hold(r);
            if (broker_change(k->b, &cr, on_auto_created, r) < 0) {
                st->creating--;
                kreq_release(r);
            }
        }
    }
    on_auto_created(r, 0);
    return 0;
}

/* ------------------------------------------------------------ Produce */

struct prod_part {
    int32_t index;
    int16_t err;
    int64_t base_offset;
    int64_t log_start;
};
struct prod_topic {
    const uint8_t *name;
    int32_t name_len;
    int32_t nparts;
    struct prod_part *parts;
};
struct prod_state {
    int32_t ntopics;
    struct prod_topic *topics;
    int pending;
    int16_t acks;
};

static void prod_state_free(struct kreq *r)
{
    struct prod_state *st = r->state;
    if (!st)
        return;
    for (int32_t i = 0; i < st->ntopics; i++)
        free(st->topics[i].parts);
    free(st->topics);
    free(st);
    r->state = NULL;
}

static void produce_answer(struct kreq *r)
{
    struct prod_state *st = r->state;
    int16_t v = r->h.api_version;
    struct kw *w = &r->out;
    kw_array(w, st->ntopics);
    for (int32_t i = 0; i < st->ntopics; i++) {
        struct prod_topic *t = &st->topics[i];
        kw_string(w, t->name, t->name_len);
        kw_array(w, t->nparts);
        for (int32_t j = 0; j < t->nparts; j++) {
            struct prod_part *pp = &t->parts[j];
            kw_i32(w, pp->index);
            kw_i16(w, pp->err);
            kw_i64(w, pp->err ? -1 : pp->base_offset);
            if (v >= 2)
                kw_i64(w, -1); /* log append time: we keep CreateTime */
            if (v >= 5)
                kw_i64(w, pp->err ? -1 : pp->log_start);
        }
    }
    if (v >= 1)
        kw_i32(w, 0); /* throttle, last in Produce */
    kreq_done(r);
}

/* One partition's append in flight. */
struct prod_op {
    struct kreq *r;
    struct prod_part *pp;
    struct part *p;
};

static void on_produced(void *arg, int status, uint64_t first)
{
    struct prod_op *op = arg;
    struct kreq *r = op->r;
    struct prod_state *st = r->state;
    op->pp->err = kerr_of(status);
    op->pp->base_offset = (int64_t)first;
    struct part_info pi;
    part_info(op->p, &pi);
    op->pp->log_start = (int64_t)pi.first_off;
    part_unref(op->p);
    free(op);
    if (--st->pending == 0 && st->acks != 0)
        produce_answer(r);
    else if (st->pending == 0)
        kreq_done(r);
    kreq_release(r);
}

/* Turns one batch into records and appends them; 0 when on_produced will
 * be called, else the Kafka error for the partition. */
static int16_t produce_batch(struct kreq *r, struct part *p, struct prod_part *pp,
                             const uint8_t *recs, int32_t len)
{
    const struct mk_config *cfg = broker_config(r->k->b);
    if (len < 0 || !recs)
        return KERR_INVALID_RECORD;
    struct kbatch b;
    size_t used;
    int rc = kbatch_parse(recs, (size_t)len, &b, &used);
    if (rc == -EPROTO)
        return KERR_INVALID_RECORD; /* v0/v1 message sets: not with Produce v3+ */
    if (rc < 0)
        return KERR_CORRUPT_MESSAGE;
    if (used != (size_t)len)
        return KERR_INVALID_RECORD; /* one batch per partition (Produce v3+) */
    if (b.attributes & (KBATCH_ATTR_TRANSACTIONAL | KBATCH_ATTR_CONTROL))
        return KERR_INVALID_RECORD; /* no transactions here */
    if ((b.attributes & KBATCH_ATTR_CODEC) == KCODEC_ZSTD && r->h.api_version < 7)
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (b.count == 0)
        return KERR_INVALID_RECORD;
    struct krec_iter it;
    size_t max_out = (size_t)b.count * ((size_t)cfg->message_max_bytes + 64) + 4096;
    if (max_out > (256u << 20))
        max_out = 256u << 20;
    rc = kbatch_records_begin(&it, &b, max_out);
    if (rc < 0) {
        kbatch_records_end(&it);
        return rc == -ENOTSUP ? KERR_UNSUPPORTED_COMPRESSION_TYPE
               : rc == -EMSGSIZE ? KERR_RECORD_LIST_TOO_LARGE
                                 : KERR_CORRUPT_MESSAGE;
    }
    /* One pass, into buffers sized by what the records' bytes bound: a
     * record takes at least 7 bytes of the (decompressed) blob besides its
     * key, value and headers, and its side data at most 31 more than its
     * key and headers. */
    size_t blob = it.r.len;
    if ((size_t)b.count > blob / 7 + 1) {
        kbatch_records_end(&it);
        return KERR_CORRUPT_MESSAGE;
    }
    size_t cap_data = blob + (size_t)b.count, cap_aux = blob + 31 * (size_t)b.count;
    uint8_t *data = malloc(cap_data + 1), *aux = malloc(cap_aux + 1);
    struct part_rec *pr = malloc(((size_t)b.count + 1) * sizeof(*pr));
    struct prod_op *op = malloc(sizeof(*op));
    if (!data || !aux || !pr || !op) {
        free(data);
        free(aux);
        free(pr);
        free(op);
        kbatch_records_end(&it);
        return KERR_UNKNOWN;
    }
    size_t data_len = 0, aat = 0;
    int32_t n = 0;
    struct krecord rec;
    int16_t bad = KERR_NONE;
    while ((rc = kbatch_records_next(&it, &rec)) == 1) {
        int32_t vlen = rec.value_len < 0 ? 0 : rec.value_len;
        if ((uint32_t)vlen > cfg->message_max_bytes ||
            (size_t)(rec.key_len < 0 ? 0 : rec.key_len) + rec.headers_len > cfg->message_max_bytes) {
            bad = KERR_MESSAGE_TOO_LARGE;
            break;
        }
        if (n >= b.count) { /* the iterator counts too: never reached */
            bad = KERR_CORRUPT_MESSAGE;
            break;
        }
        if (vlen)
            memcpy(data + data_len, rec.value, (size_t)vlen);
        data[data_len + (size_t)vlen] = '\n';
        data_len += (size_t)vlen + 1;
        struct rec_kafka rk = {.flags = (uint8_t)((rec.key_len >= 0 ? RK_KEY : 0) |
                                                  (rec.value_len < 0 ? RK_VALUE_NULL : 0)),
                               .ts = b.base_ts + rec.ts_delta,
                               .key = rec.key,
                               .key_len = rec.key_len < 0 ? 0 : (uint32_t)rec.key_len,
                               .nheaders = rec.nheaders,
                               .headers = rec.headers,
                               .headers_len = (uint32_t)rec.headers_len};
        size_t alen = aux_put_kafka(aux + aat, &rk);
        pr[n++] = (struct part_rec){.len = (uint32_t)vlen + 1, .aux = aux + aat, .aux_len = (uint32_t)alen};
        aat += alen;
    }
    if (rc < 0 && !bad)
        bad = KERR_CORRUPT_MESSAGE;
    if (bad) {
        free(data);
        free(aux);
        free(pr);
        free(op);
        kbatch_records_end(&it);
        return bad;
    }
    kbatch_records_end(&it);
    struct iovec iov = {data, data_len};
    struct prod_state *st = r->state;
    op->r = r;
    op->pp = pp;
    op->p = p;
    part_ref(p);
    st->pending++;
    kreq_hold(r);
    /* An idempotent producer's batch: its sequences, checked and kept. */
    struct part_producer prod = {
        .id = PRODUCER_KAFKA | ((uint64_t)b.producer_id << 16) | (uint16_t)b.producer_epoch,
        .seq = (uint64_t)(uint32_t)b.base_seq + 1};
    bool idem = b.producer_id >= 0 && b.producer_id < (1ll << 47) && b.base_seq >= 0;
    rc = part_append_recs(p, &iov, 1, pr, (size_t)n, idem ? &prod : NULL, on_produced, op);
    free(data);
    free(aux);
    free(pr);
    if (rc < 0) {
        st->pending--;
        part_unref(p);
        free(op);
        r->holds--; /* never handed out */
        return kerr_of(rc);
    }
    return KERR_NONE;
}

static int h_produce(struct kreq *r)
{
    struct kafka *k = r->k;
    int16_t v = r->h.api_version;
    struct kr *in = &r->body;
    struct prod_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -EPROTO;
    r->state = st;
    r->state_free = prod_state_free;
    if (v >= 3) {
        const uint8_t *tid;
        kr_string(in, &tid); /* transactional id */
    }
    st->acks = kr_i16(in);
    kr_i32(in); /* timeout: the file system's durability decides */
    st->ntopics = kr_array(in, 6);
    if (in->err || st->ntopics < 0)
        return -EPROTO;
    st->topics = calloc((size_t)st->ntopics + 1, sizeof(*st->topics));
    if (!st->topics)
        return -EPROTO;
    /* Parse everything before touching anything. */
    struct kr scan = *in;
    for (int32_t i = 0; i < st->ntopics; i++) {
        struct prod_topic *t = &st->topics[i];
        t->name_len = kr_string(&scan, &t->name);
        t->nparts = kr_array(&scan, 8);
        if (scan.err || t->nparts < 0)
            return -EPROTO;
        t->parts = calloc((size_t)t->nparts + 1, sizeof(*t->parts));
        if (!t->parts)
            return -EPROTO;
        for (int32_t j = 0; j < t->nparts; j++) {
            t->parts[j].index = kr_i32(&scan);
            const uint8_t *recs;
            kr_bytes(&scan, &recs);
        }
        if (t->name_len < 0)
            t->name_len = 0;
    }
    if (scan.err)
        return -EPROTO;
    r->no_reply = st->acks == 0;
    kreq_hold(r); /* until every partition is under way */
    st->pending = 1;
    char buf[256];
    for (int32_t i = 0; i < st->ntopics; i++) {
        struct prod_topic *t = &st->topics[i];
        kr_string(in, &t->name);
        kr_array(in, 8);
        struct topic *tp = find_topic(k, t->name, t->name_len, buf);
        for (int32_t j = 0; j < t->nparts; j++) {
            struct prod_part *pp = &t->parts[j];
            kr_i32(in);
            const uint8_t *recs;
            int32_t len = kr_bytes(in, &recs);
            if (v < 3) {
                pp->err = KERR_UNSUPPORTED_VERSION;
            } else if (st->acks != 0 && st->acks != 1 && st->acks != -1) {
                pp->err = KERR_INVALID_REQUIRED_ACKS;
            } else if (!tp || pp->index < 0 || (uint32_t)pp->index >= topic_partitions(tp)) {
                pp->err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                pp->err = produce_batch(r, topic_part(tp, (uint32_t)pp->index), pp, recs, len);
            }
        }
    }
    if (--st->pending == 0) {
        if (st->acks != 0)
            produce_answer(r);
        else
            kreq_done(r);
    }
    kreq_release(r);
    return 0;
}

/* ------------------------------------------------------------ Fetch */

/* A watch on one partition of a waiting Fetch. */
struct fwatch {
    struct part_watch w; /* first: the callback gets &w */
    struct kreq *r;
    struct part *p; /* held */
};

struct fetch_state {
    uv_timer_t *timer;
    struct fwatch *watches;
    int nwatch, capwatch;
    bool waiting;
    bool expired;
    uint64_t deadline; /* uv_now at which the wait is over (0: not waited yet) */
    uint8_t *aux;
    size_t aux_cap;
    uint8_t *bytes;
    size_t bytes_cap;
};

static void fetch_disarm(struct fetch_state *st)
{
    for (int i = 0; i < st->nwatch; i++) {
        part_unwatch(&st->watches[i].w);
        part_unref(st->watches[i].p);
    }
    st->nwatch = 0;
}

static void fetch_state_free(struct kreq *r)
{
    struct fetch_state *st = r->state;
    if (!st)
        return;
    fetch_disarm(st);
    if (st->timer)
        kafka_timer_free(st->timer);
    free(st->watches);
    free(st->aux);
    free(st->bytes);
    free(st);
    r->state = NULL;
}

/* Remembers p as one to watch should the Fetch wait. */
static void fetch_candidate(struct fetch_state *st, struct kreq *r, struct part *p)
{
    if (st->nwatch == st->capwatch) {
        int cap = st->capwatch ? 2 * st->capwatch : 8;
        struct fwatch *nw = realloc(st->watches, (size_t)cap * sizeof(*nw));
        if (!nw)
            return; /* it answers at max_wait then */
        st->watches = nw;
        st->capwatch = cap;
    }
    struct fwatch *fw = &st->watches[st->nwatch++];
    memset(fw, 0, sizeof(*fw));
    fw->r = r;
    fw->p = p;
    part_ref(p);
}

/* Reads the committed bytes [pos, pos + n) of p into st->bytes. */
static int read_bytes(struct fetch_state *st, struct part *p, uint64_t pos, size_t n)
{
    if (n > st->bytes_cap) {
        uint8_t *nb = realloc(st->bytes, n);
        if (!nb)
            return -ENOMEM;
        st->bytes = nb;
        st->bytes_cap = n;
    }
    size_t got = 0;
    while (got < n) {
        int fd;
        uint64_t fdoff;
        size_t k;
        int rc = part_read(p, pos + got, n - got, &fd, &fdoff, &k);
        if (rc < 0)
            return rc;
        if (k == 0)
            return -EIO;
        ssize_t m = pread(fd, st->bytes + got, k, (off_t)fdoff);
        if (m <= 0)
            return m < 0 ? -errno : -EIO;
        got += (size_t)m;
    }
    return 0;
}

/* Writes the records field of a Fetch answer for p from offset `from`:
 * one batch of whole records up to about `max` bytes (the first record
 * always, KIP-74), read a few hundred entries at a time (their index
 * entries, side data and bytes in one read each).  *bytes: the batch's
 * size (0: none). */
static int fetch_records(struct fetch_state *st, struct part *p, uint64_t from, uint64_t to,
                         size_t max, struct kw *w, size_t *bytes)
{
    enum { CHUNK = 256 };
    struct part_entry e[CHUNK];
    size_t at[CHUNK];
    size_t at_len = w->len, est = KBATCH_HDR;
    struct kbatch_builder bb;
    bool begun = false, full = false;
    *bytes = 0;
    kw_i32(w, 0); /* the records' size, set below */
    int rc = 0;
    for (uint64_t off = from; off < to && !full;) {
        if (st->aux_cap < 65536) {
            uint8_t *na = realloc(st->aux, 65536);
            if (!na)
                return -ENOMEM;
            st->aux = na;
            st->aux_cap = 65536;
        }
        size_t n = 0;
        rc = part_entries(p, off, (size_t)(to - off), e, at, &n, st->aux, st->aux_cap);
        if (rc == -EMSGSIZE) { /* one entry's side data alone is bigger */
            struct part_entry one;
            if ((rc = part_entry(p, off, &one, NULL, 0)) < 0)
                break;
            uint8_t *na = realloc(st->aux, one.aux_len);
            if (!na)
                return -ENOMEM;
            st->aux = na;
            st->aux_cap = one.aux_len;
            continue;
        }
        if (rc < 0 || n == 0)
            break;
        /* The entries that fit, the first record always. */
        size_t k = 0;
        uint64_t pos0 = 0, posn = 0;
        for (; k < n; k++) {
            size_t cost = (size_t)e[k].len + e[k].aux_len + 24;
            if ((begun || posn) && est + cost > max) {
                full = true;
                break;
            }
            est += cost;
            if (e[k].record) {
                if (!posn)
                    pos0 = e[k].pos;
                posn = e[k].pos + e[k].len;
            }
        }
        if (posn && (rc = read_bytes(st, p, pos0, (size_t)(posn - pos0))) < 0)
            break;
        for (size_t q = 0; q < k; q++) {
            if (!e[q].record)
                continue;
            struct rec_kafka rk;
            bool has = e[q].aux_len && aux_get_kafka(st->aux + at[q], e[q].aux_len, &rk) == 0;
            int64_t ts = has ? rk.ts : e[q].ts;
            if (!begun) {
                kbatch_build_begin(&bb, w, (int64_t)(off + q), ts);
                begun = true;
            }
            const uint8_t *val = st->bytes + (e[q].pos - pos0);
            int32_t vlen = has && (rk.flags & RK_VALUE_NULL) ? -1 : (int32_t)e[q].len - 1;
            bool key = has && (rk.flags & RK_KEY);
            kbatch_build_add(&bb, (int64_t)(off + q), ts, key ? rk.key : NULL,
                             key ? (int32_t)rk.key_len : -1, vlen < 0 ? NULL : val, vlen,
                             has ? rk.nheaders : 0, has ? rk.headers : NULL, has ? rk.headers_len : 0);
        }
        off += k;
    }
    if (rc < 0 && !begun) {
        w->len = at_len;
        return rc;
    }
    if (!begun) {
        w->len = at_len;
        kw_i32(w, 0); /* only entries that show nothing (Raft's) */
        return 0;
    }
    /* What was read stands; an error further on ends the batch early. */
    if ((rc = kbatch_build_end(&bb)) < 0) {
        w->len = at_len;
        return rc;
    }
    *bytes = w->len - at_len - 4;
    kw_put_i32_at(w, at_len, (int32_t)*bytes);
    return 0;
}

static void fetch_run(struct kreq *r);

static void fetch_wake(struct kreq *r)
{
    struct fetch_state *st = r->state;
    if (!st->waiting)
        return;
    st->waiting = false;
    r->abort = NULL;
    fetch_disarm(st);
    uv_timer_stop(st->timer);
    fetch_run(r);
    kreq_release(r);
}

static void on_fetch_timer(uv_timer_t *t)
{
    struct kreq *r = t->data;
    struct fetch_state *st = r->state;
    st->expired = true;
    fetch_wake(r);
}

static void on_part_moved(struct part_watch *w)
{
    fetch_wake(((struct fwatch *)w)->r);
}

/* Its connection went: the wait is over, the answer goes nowhere. */
static void fetch_abort(struct kreq *r)
{
    struct fetch_state *st = r->state;
    st->expired = true;
    st->waiting = true; /* (it was: abort is set only while waiting) */
    fetch_wake(r);
}

/* One partition's part of the answer. */
static void fetch_partition(struct kreq *r, struct part *p, int32_t idx, int64_t off, int32_t pmax,
                            size_t *total, size_t budget)
{
    struct fetch_state *st = r->state;
    int16_t v = r->h.api_version;
    struct kw *w = &r->out;
    struct part_info pi = {0};
    int16_t err = KERR_NONE;
    if (!p)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    else if (part_remote(p))
        err = KERR_NOT_LEADER;
    if (p)
        part_info(p, &pi);
    if (!err && (off < (int64_t)pi.first_off || off > (int64_t)pi.next_off))
        err = KERR_OFFSET_OUT_OF_RANGE;
    uint64_t hwm = err ? pi.next_off : kafka_hwm(p, &pi);
    bool known = !err || err == KERR_OFFSET_OUT_OF_RANGE;
    kw_i32(w, idx);
    size_t err_at = w->len;
    kw_i16(w, err);
    kw_i64(w, known ? (int64_t)hwm : -1);
    kw_i64(w, known ? (int64_t)hwm : -1); /* last stable = high watermark */
    if (v >= 5)
        kw_i64(w, known ? (int64_t)pi.first_off : -1);
    kw_array(w, 0); /* aborted transactions */
    if (v >= 11)
        kw_i32(w, -1); /* preferred read replica: none */
    if (err || off >= (int64_t)hwm || (*total > 0 && *total >= budget)) {
        kw_i32(w, 0);
        if (!err)
            fetch_candidate(st, r, p);
        return;
    }
    size_t lim = pmax > 0 ? (size_t)pmax : 1, got = 0;
    if (*total > 0 && budget - *total < lim)
        lim = budget - *total;
    int rc = fetch_records(st, p, (uint64_t)off, hwm, lim, w, &got);
    if (rc < 0) {
        /* Damaged (EIO: being repaired) or gone: this partition fails. */
        kw_i32(w, 0);
        uint8_t e2[2] = {(uint8_t)((uint16_t)(rc == -EIO ? KERR_KAFKA_STORAGE_ERROR : kerr_of(rc)) >> 8),
                         (uint8_t)(rc == -EIO ? KERR_KAFKA_STORAGE_ERROR : kerr_of(rc))};
        memcpy(w->p + err_at, e2, 2);
        return;
    }
    *total += got;
}

/* Builds the answer; when it holds fewer than min_bytes and the wait is not
 * over, waits instead for a commit on one of the partitions or max_wait. */
static void fetch_run(struct kreq *r)
{
    struct kafka *k = r->k;
    struct fetch_state *st = r->state;
    int16_t v = r->h.api_version;
    struct kr in = r->body;
    kreq_reset_out(r);
    struct kw *w = &r->out;
    kr_i32(&in); /* replica id */
    int32_t max_wait = kr_i32(&in);
    int32_t min_bytes = kr_i32(&in);
    int32_t max_bytes = kr_i32(&in);
    kr_i8(&in); /* isolation level: what is committed is all there is */
    if (v >= 7) {
        kr_i32(&in); /* session id, epoch: no sessions (0 back) */
        kr_i32(&in);
    }
    int32_t nt = kr_array(&in, 6);
    size_t budget = max_bytes > 0 ? (size_t)max_bytes : 1, total = 0;
    kw_i32(w, 0); /* throttle */
    if (v >= 7) {
        kw_i16(w, KERR_NONE);
        kw_i32(w, 0); /* session id */
    }
    kw_array(w, nt < 0 ? 0 : nt);
    char buf[256];
    for (int32_t i = 0; i < nt && !in.err; i++) {
        const uint8_t *name;
        int32_t len = kr_string(&in, &name);
        int32_t np = kr_array(&in, 16);
        kw_string(w, name, len < 0 ? 0 : len);
        kw_array(w, np < 0 ? 0 : np);
        struct topic *t = find_topic(k, name, len, buf);
        for (int32_t j = 0; j < np && !in.err; j++) {
            int32_t idx = kr_i32(&in);
            if (v >= 9)
                kr_i32(&in); /* current leader epoch */
            int64_t off = kr_i64(&in);
            if (v >= 5)
                kr_i64(&in); /* the follower's log start */
            int32_t pmax = kr_i32(&in);
            if (in.err)
                break;
            struct part *p = t && idx >= 0 && (uint32_t)idx < topic_partitions(t)
                                 ? topic_part(t, (uint32_t)idx)
                                 : NULL;
            fetch_partition(r, p, idx, off, pmax, &total, budget);
        }
    }
    if (v >= 7) {
        int32_t nf = kr_array(&in, 6); /* forgotten topics: sessions only */
        for (int32_t i = 0; i < nf; i++) {
            const uint8_t *s;
            kr_string(&in, &s);
            int32_t n = kr_array(&in, 4);
            for (int32_t j = 0; j < n; j++)
                kr_i32(&in);
        }
    }
    if (v >= 11) {
        const uint8_t *s;
        kr_string(&in, &s); /* rack */
    }
    if (in.err) {
        r->body.err = in.err; /* h_fetch closes the connection */
        fetch_disarm(st);
        return;
    }
    bool wait = total < (size_t)(min_bytes > 0 ? min_bytes : 0) && max_wait > 0 && !st->expired &&
                r->c && st->nwatch > 0;
    if (!wait) {
        fetch_disarm(st);
        kreq_done(r);
        return;
    }
    if (!st->timer && !(st->timer = kafka_timer_new(k, r))) {
        fetch_disarm(st);
        kreq_done(r);
        return;
    }
    uint64_t now = uv_now(k->loop);
    if (!st->deadline)
        st->deadline = now + (uint64_t)max_wait;
    for (int i = 0; i < st->nwatch; i++)
        part_watch(st->watches[i].p, &st->watches[i].w, on_part_moved);
    st->waiting = true;
    r->abort = fetch_abort;
    kreq_hold(r);
    uv_timer_start(st->timer, on_fetch_timer, st->deadline > now ? st->deadline - now : 0, 0);
}

static int h_fetch(struct kreq *r)
{
    struct fetch_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -EPROTO;
    r->state = st;
    r->state_free = fetch_state_free;
    fetch_run(r);
    return r->body.err ? -EPROTO : 0;
}

/* ------------------------------------------------------------ ListOffsets */

#define TS_SLACK_MS (60 * 60 * 1000) /* producers' clocks may lag the broker's */
#define TS_SCAN_MAX 100000

/* A record's Kafka timestamp: the producer's (CreateTime) when it has one,
 * else its append time. */
static int64_t record_ts(struct part *p, uint64_t off, struct part_entry *e, bool *record)
{
    static uint8_t aux[4096];
    int rc = part_entry(p, off, e, aux, sizeof(aux));
    *record = rc == 0 && e->record;
    if (rc == -EMSGSIZE) { /* a big key or headers: the timestamp is at the front */
        rc = part_entry(p, off, e, NULL, 0);
        *record = rc == 0 && e->record;
        return e->ts;
    }
    struct rec_kafka rk;
    if (rc == 0 && e->aux_len && aux_get_kafka(aux, e->aux_len, &rk) == 0)
        return rk.ts;
    return rc == 0 ? e->ts : -1;
}

/* The first offset whose record's Kafka timestamp is >= ts, and that
 * timestamp; -1 (and -1) when none is.  The index (append times, which
 * never go back) finds where to start, TS_SLACK_MS early; the records from
 * there are read in order (at most TS_SCAN_MAX, then the index's answer
 * stands). */
static int64_t offset_for_time(struct part *p, const struct part_info *pi, int64_t ts,
                               int64_t *found_ts)
{
    uint64_t hwm = kafka_hwm(p, pi);
    uint64_t o = part_offset_for_time(p, ts > TS_SLACK_MS ? ts - TS_SLACK_MS : 0);
    struct part_entry e;
    bool record;
    *found_ts = -1;
    for (uint64_t n = 0; o < hwm; o++, n++) {
        if (n == TS_SCAN_MAX) {
            uint64_t a = part_offset_for_time(p, ts);
            if (a >= hwm)
                return -1;
            *found_ts = record_ts(p, a, &e, &record);
            return (int64_t)a;
        }
        int64_t t = record_ts(p, o, &e, &record);
        if (record && t >= ts) {
            *found_ts = t;
            return (int64_t)o;
        }
    }
    return -1;
}

static int h_list_offsets(struct kreq *r)
{
    struct kafka *k = r->k;
    int16_t v = r->h.api_version;
    struct kr in = r->body;
    struct kw *w = &r->out;
    kr_i32(&in); /* replica id */
    if (v >= 2)
        kr_i8(&in); /* isolation level */
    int32_t nt = kr_array(&in, 6);
    if (v >= 2)
        kw_i32(w, 0); /* throttle */
    kw_array(w, nt < 0 ? 0 : nt);
    char buf[256];
    for (int32_t i = 0; i < nt; i++) {
        const uint8_t *name;
        int32_t len = kr_string(&in, &name);
        int32_t np = kr_array(&in, 12);
        kw_string(w, name, len < 0 ? 0 : len);
        kw_array(w, np < 0 ? 0 : np);
        struct topic *t = find_topic(k, name, len, buf);
        for (int32_t j = 0; j < np; j++) {
            int32_t idx = kr_i32(&in);
            int64_t ts = kr_i64(&in);
            if (v == 0)
                kr_i32(&in); /* max number of offsets */
            if (in.err)
                return -EPROTO;
            struct part *p = t && idx >= 0 && (uint32_t)idx < topic_partitions(t)
                                 ? topic_part(t, (uint32_t)idx)
                                 : NULL;
            int16_t err = !p ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                          : part_remote(p) ? KERR_NOT_LEADER
                                           : KERR_NONE;
            int64_t off = -1, found_ts = -1;
            if (!err) {
                struct part_info pi;
                part_info(p, &pi);
                if (ts == -1) {
                    off = (int64_t)kafka_hwm(p, &pi);
                } else if (ts == -2) {
                    off = (int64_t)pi.first_off;
                } else if (ts >= 0) {
                    off = offset_for_time(p, &pi, ts, &found_ts);
                } else {
                    err = KERR_INVALID_REQUEST;
                }
            }
            kw_i32(w, idx);
            kw_i16(w, err);
            if (v == 0) {
                if (err || off < 0) {
                    kw_array(w, 0);
                } else {
                    kw_array(w, 1);
                    kw_i64(w, off);
                }
            } else {
                kw_i64(w, err ? -1 : found_ts);
                kw_i64(w, err ? -1 : off);
            }
        }
    }
    if (in.err)
        return -EPROTO;
    kreq_done(r);
    return 0;
}

/* ------------------------------------------------------------ CreateTopics */

struct ct_topic {
    const uint8_t *name;
    int32_t name_len;
    int16_t err;
    char msg[96];
};
struct ct_state {
    int32_t n;
    struct ct_topic *t;
    int pending;
};

/* Whether topic i of the request is named by another one too. */
static bool named_twice(const struct ct_state *st, int32_t i)
{
    for (int32_t q = 0; q < st->n; q++)
        if (q != i && st->t[q].name_len == st->t[i].name_len &&
            (!st->t[i].name_len || !memcmp(st->t[q].name, st->t[i].name, (size_t)st->t[i].name_len)))
            return true;
    return false;
}

static void ct_state_free(struct kreq *r)
{
    struct ct_state *st = r->state;
    if (!st)
        return;
    free(st->t);
    free(st);
    r->state = NULL;
}

static void topics_answer(struct kreq *r, bool messages)
{
    struct ct_state *st = r->state;
    int16_t v = r->h.api_version;
    struct kw *w = &r->out;
    if ((r->h.api_key == API_CREATE_TOPICS && v >= 2) || (r->h.api_key == API_DELETE_TOPICS && v >= 1))
        kw_i32(w, 0); /* throttle */
    kw_array(w, st->n);
    for (int32_t i = 0; i < st->n; i++) {
        kw_string(w, st->t[i].name, st->t[i].name_len);
        kw_i16(w, st->t[i].err);
        if (messages)
            kw_string(w, st->t[i].err ? st->t[i].msg : NULL, st->t[i].err ? (int32_t)strlen(st->t[i].msg) : -1);
    }
    kreq_done(r);
}

struct ct_op {
    struct kreq *r;
    struct ct_topic *t;
};

static void on_topic_changed(void *arg, int status)
{
    struct ct_op *op = arg;
    struct kreq *r = op->r;
    struct ct_state *st = r->state;
    op->t->err = kerr_of(status);
    if (status < 0)
        snprintf(op->t->msg, sizeof(op->t->msg), "%s", strerror(-status));
    free(op);
    if (--st->pending == 0)
        topics_answer(r, r->h.api_key == API_CREATE_TOPICS && r->h.api_version >= 1);
    kreq_release(r);
}

static void topic_change(struct kreq *r, struct ct_topic *t, struct broker_change_req *cr)
{
    struct ct_state *st = r->state;
    struct ct_op *op = malloc(sizeof(*op));
    if (!op) {
        t->err = KERR_UNKNOWN;
        return;
    }
    op->r = r;
    op->t = t;
    st->pending++;
    kreq_hold(r);
    int rc = broker_change(r->k->b, cr, on_topic_changed, op);
    if (rc < 0) {
        st->pending--;
        r->holds--;
        free(op);
        t->err = kerr_of(rc);
        snprintf(t->msg, sizeof(t->msg), "%s", strerror(-rc));
    }
}

static int h_create_topics(struct kreq *r)
{
    struct kafka *k = r->k;
    struct kr *in = &r->body;
    struct ct_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -EPROTO;
    r->state = st;
    r->state_free = ct_state_free;
    st->n = kr_array(in, 2 + 4 + 2 + 4 + 4);
    if (in->err || st->n < 0)
        return -EPROTO;
    st->t = calloc((size_t)st->n + 1, sizeof(*st->t));
    if (!st->t)
        return -EPROTO;
    struct kr scan = *in;
    int32_t *parts = calloc((size_t)st->n + 1, sizeof(*parts));
    int16_t *rfs = calloc((size_t)st->n + 1, sizeof(*rfs));
    bool *bad_cfg = calloc((size_t)st->n + 1, sizeof(*bad_cfg));
    if (!parts || !rfs || !bad_cfg) {
        free(parts);
        free(rfs);
        free(bad_cfg);
        return -EPROTO;
    }
    for (int32_t i = 0; i < st->n; i++) {
        st->t[i].name_len = kr_string(&scan, &st->t[i].name);
        parts[i] = kr_i32(&scan);
        rfs[i] = kr_i16(&scan);
        int32_t na = kr_array(&scan, 8);
        for (int32_t j = 0; j < na; j++) {
            kr_i32(&scan);
            int32_t nb = kr_array(&scan, 4);
            for (int32_t q = 0; q < nb; q++)
                kr_i32(&scan);
        }
        if (na > 0)
            bad_cfg[i] = true; /* manual assignments: not supported */
        int32_t nc = kr_array(&scan, 4);
        for (int32_t j = 0; j < nc; j++) {
            const uint8_t *s;
            kr_string(&scan, &s);
            kr_string(&scan, &s);
        }
        if (st->t[i].name_len < 0)
            st->t[i].name_len = 0;
    }
    kr_i32(&scan); /* timeout */
    bool validate_only = r->h.api_version >= 1 && kr_i8(&scan) != 0;
    if (scan.err) {
        free(parts);
        free(rfs);
        free(bad_cfg);
        return -EPROTO;
    }
    st->pending = 1;
    kreq_hold(r);
    uint32_t nodes = broker_config(k->b)->npeers ? (uint32_t)broker_config(k->b)->npeers : 1;
    for (int32_t i = 0; i < st->n; i++) {
        struct ct_topic *t = &st->t[i];
        char name[256], num[16];
        if (t->name_len <= 0 || t->name_len > 249) {
            t->err = KERR_INVALID_TOPIC;
            snprintf(t->msg, sizeof(t->msg), "a topic name is 1 to 249 characters");
            continue;
        }
        memcpy(name, t->name, (size_t)t->name_len);
        name[t->name_len] = '\0';
        if (named_twice(st, i)) {
            t->err = KERR_INVALID_REQUEST; /* Kafka's answer to a name given twice */
            snprintf(t->msg, sizeof(t->msg), "a topic named twice in one request");
        } else if (topic_name_check(name) != 0) {
            t->err = KERR_INVALID_TOPIC;
            snprintf(t->msg, sizeof(t->msg), "a topic name is [a-zA-Z0-9._-], not . or ..");
        } else if (parts[i] == 0 || parts[i] < -1) {
            t->err = KERR_INVALID_PARTITIONS;
            snprintf(t->msg, sizeof(t->msg), "partitions must be at least 1");
        } else if (rfs[i] == 0 || rfs[i] < -1 || (rfs[i] > 0 && (uint32_t)rfs[i] > nodes)) {
            t->err = KERR_INVALID_REPLICATION_FACTOR;
            snprintf(t->msg, sizeof(t->msg), "replication factor must be 1 to %u", nodes);
        } else if (bad_cfg[i]) {
            t->err = KERR_INVALID_REQUEST;
            snprintf(t->msg, sizeof(t->msg), "manual replica assignments are not supported");
        } else if (topic_find(k->b, name)) {
            t->err = KERR_TOPIC_ALREADY_EXISTS;
            snprintf(t->msg, sizeof(t->msg), "topic '%.60s' already exists", name);
        } else if (!validate_only) {
            struct broker_change_req cr = {.kind = BC_CREATE, .topic = name, .own = *broker_root_owner(k->b)};
            cr.own.mode = 0755;
            if (parts[i] > 0) {
                snprintf(num, sizeof(num), "%d", parts[i]);
                cr.value = num;
            }
            topic_change(r, t, &cr);
        }
    }
    free(parts);
    free(rfs);
    free(bad_cfg);
    if (--st->pending == 0)
        topics_answer(r, r->h.api_version >= 1);
    kreq_release(r);
    return 0;
}

static int h_delete_topics(struct kreq *r)
{
    struct kafka *k = r->k;
    struct kr *in = &r->body;
    struct ct_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -EPROTO;
    r->state = st;
    r->state_free = ct_state_free;
    st->n = kr_array(in, 2);
    if (in->err || st->n < 0)
        return -EPROTO;
    st->t = calloc((size_t)st->n + 1, sizeof(*st->t));
    if (!st->t)
        return -EPROTO;
    for (int32_t i = 0; i < st->n; i++) {
        st->t[i].name_len = kr_string(in, &st->t[i].name);
        if (st->t[i].name_len < 0)
            st->t[i].name_len = 0;
    }
    kr_i32(in);
    if (in->err)
        return -EPROTO;
    st->pending = 1;
    kreq_hold(r);
    char name[256];
    for (int32_t i = 0; i < st->n; i++) {
        struct ct_topic *t = &st->t[i];
        if (named_twice(st, i)) {
            t->err = KERR_INVALID_REQUEST;
            continue;
        }
        if (!find_topic(k, t->name, t->name_len, name)) {
            t->err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        struct broker_change_req cr = {.kind = BC_DELETE, .topic = name};
        topic_change(r, t, &cr);
    }
    if (--st->pending == 0)
        topics_answer(r, false);
    kreq_release(r);
    return 0;
}

/* ------------------------------------------------------------ InitProducerId */

/* Producer ids are unique without asking anyone: (seconds << 8 | count)
 * << 8 | node id, never going back in this process; below 2^47, so that an
 * id and its epoch fit a producer field (record.h).  Restarted within the
 * same second, a node could hand out an id again: the counter starts from
 * the clock, and two restarts in one second are not a case we guard. */
static int64_t new_producer_id(struct kafka *k)
{
    static uint64_t last;
    uint64_t units = (uint64_t)(sys_now_ms() / 1000) << 8;
    if (units <= last)
        units = last + 1;
    last = units;
    return (int64_t)(((units << 8) | (node_id(k) & 0xff)) & ((1ull << 47) - 1));
}

static int h_init_producer_id(struct kreq *r)
{
    struct kr *in = &r->body;
    const uint8_t *tid;
    int32_t tlen = kr_string(in, &tid);
    kr_i32(in); /* transaction timeout */
    if (in->err)
        return -EPROTO;
    struct kw *w = &r->out;
    kw_i32(w, 0); /* throttle */
    if (tlen >= 0) {
        /* Transactions are not served (no AddPartitionsToTxn & co.). */
        kw_i16(w, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        kw_i64(w, -1);
        kw_i16(w, -1);
    } else {
        kw_i16(w, KERR_NONE);
        kw_i64(w, new_producer_id(r->k));
        kw_i16(w, 0);
    }
    kreq_done(r);
    return 0;
}
