/*
 * internal — what server.c (connections, framing, order of answers) and
 * api.c (one handler per Kafka API) share.  Not for other modules.
 */
#ifndef MK_KAFKA_INTERNAL_H
#define MK_KAFKA_INTERNAL_H

#include "broker/kafka/codec.h"
#include "broker/kafka/kafka.h"

#include <stdbool.h>
#include <stdint.h>

/* Kafka's error codes that we answer with. */
enum {
    KERR_NONE = 0,
    KERR_OFFSET_OUT_OF_RANGE = 1,
    KERR_CORRUPT_MESSAGE = 2,
    KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    KERR_LEADER_NOT_AVAILABLE = 5,
    KERR_NOT_LEADER = 6,
    KERR_REQUEST_TIMED_OUT = 7,
    KERR_MESSAGE_TOO_LARGE = 10,
    KERR_INVALID_TOPIC = 17,
    KERR_RECORD_LIST_TOO_LARGE = 18,
    KERR_NOT_ENOUGH_REPLICAS = 19,
    KERR_INVALID_REQUIRED_ACKS = 21,
    KERR_UNSUPPORTED_VERSION = 35,
    KERR_TOPIC_ALREADY_EXISTS = 36,
    KERR_INVALID_PARTITIONS = 37,
    KERR_INVALID_REPLICATION_FACTOR = 38,
    KERR_INVALID_REQUEST = 42,
    KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    KERR_POLICY_VIOLATION = 44,
    KERR_OUT_OF_ORDER_SEQUENCE = 45,
    KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    KERR_KAFKA_STORAGE_ERROR = 56,
    KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    KERR_INVALID_RECORD = 87,
    KERR_UNKNOWN = -1,
};

struct kconn;

/* One request, from its frame to its answer.  Handlers fill `out` (the
 * response body: the header is written already) and call kreq_done; one
 * whose work is asynchronous takes a hold (kreq_hold) per piece of work and
 * lets go of each (kreq_release) as it ends.  A request outlives its
 * connection while it holds work: its answer then goes nowhere. */
struct kreq {
    struct kreq *next;
    struct kconn *c; /* NULL once the connection is gone */
    struct kafka *k;
    struct kreq_hdr h;
    uint8_t *frame; /* the request, header included (owned) */
    size_t frame_len;
    struct kr body; /* over frame, after the header */
    struct kw out;  /* size placeholder + response header + body */
    bool done;      /* out is complete */
    bool no_reply;  /* Produce with acks 0: nothing is sent */
    int holds;
    void (*abort)(struct kreq *r);      /* ends a request that only waits, when
                                           its connection goes (set while waiting) */
    void *state;                        /* the handler's */
    void (*state_free)(struct kreq *r); /* called once, before the request is freed */
};

struct kafka {
    struct broker *b;
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool stopping;
    int handles; /* open libuv handles (listener, connections, timers) */
    struct kconn *conns;
    char host[16];
    uint16_t port;
    char adv_host[256];
    uint16_t adv_port;
    /* counters, for the status line */
    uint64_t accepted, requests, bad_frames, unsupported;
};

/* server.c */
void kreq_done(struct kreq *r);
void kreq_hold(struct kreq *r);
void kreq_release(struct kreq *r);
/* Starts a response body afresh (a handler that redoes its work). */
void kreq_reset_out(struct kreq *r);
/* A timer owned by k (closed and freed by kafka_timer_free). */
uv_timer_t *kafka_timer_new(struct kafka *k, void *data);
void kafka_timer_free(uv_timer_t *t);

/* groups_api.c */
int kapi_find_coordinator(struct kreq *r);
int kapi_join_group(struct kreq *r);
int kapi_sync_group(struct kreq *r);
int kapi_heartbeat(struct kreq *r);
int kapi_leave_group(struct kreq *r);
int kapi_offset_commit(struct kreq *r);
int kapi_offset_fetch(struct kreq *r);

/* api.c */
/* The handler of r's API: 0 when it took the request (answered now or
 * later), -EPROTO when the request must close the connection (a version
 * we never advertised, a body that does not parse). */
int kapi_dispatch(struct kreq *r);
/* Whether requests of api/version use the v2 header (tags) and the
 * answer the v1 header (ApiVersions never does). */
bool kapi_flexible_request(int16_t api, int16_t version);
bool kapi_flexible_response(int16_t api, int16_t version);
/* Whether (api, version) is one we know at all (else: close). */
bool kapi_known(int16_t api, int16_t version);

#endif
