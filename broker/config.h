/*
 * config — mount options and per-topic settings, under Kafka's names.
 */
#ifndef MK_CONFIG_H
#define MK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mk_fsync { MK_FSYNC_ALWAYS, MK_FSYNC_NEVER };

#define MK_MAX_PEERS 16 /* nodes of a cluster (RAFT_MAX_SERVERS) */

/* One node of the cluster (-o peer=ID@HOST:PORT): where it listens, and for
 * this node's own entry also the source address it connects from. */
struct mk_peer {
    uint32_t id;
    char host[16]; /* dotted IPv4 */
    uint16_t port;
};

struct mk_config {
    uint32_t num_partitions;            /* num.partitions: partitions of a new topic */
    int64_t segment_bytes;              /* log.segment.bytes */
    int64_t segment_ms;                 /* log.segment.ms */
    int64_t retention_ms;               /* log.retention.ms, -1 = forever */
    int64_t retention_bytes;            /* log.retention.bytes, -1 = no limit */
    uint32_t message_max_bytes;         /* message.max.bytes: longest record, '\n' excluded */
    enum mk_fsync fsync;                /* fsync=always|never */
    uint32_t node_id;                   /* node.id */
    struct mk_peer peers[MK_MAX_PEERS]; /* peer=..., in the order given */
    size_t npeers;                      /* 0: a single node */
    int64_t request_timeout_ms;         /* request.timeout.ms */
    uint32_t replication_factor;        /* default.replication.factor (0: min(3, nodes)) */
    int64_t scrub_bytes_per_sec;        /* scrub.bytes.per.sec: 0 = no background scrub */
    int64_t scrub_interval_ms;          /* scrub.interval.ms: rest between two passes */
    char cluster_secret[256];           /* cluster.secret: a file's path, "" for none */
    struct mk_peer listen;              /* cluster.listen: port 0 = this node's peer address */
    /* kafka.listen: the Kafka protocol's address; kafka_mode says whether
     * it was given (a single node listens on 127.0.0.1:9092 by default, and
     * goes on without it when that port is taken; a cluster only when set) */
    struct mk_peer kafka_listen;
    enum { MK_KAFKA_DEFAULT, MK_KAFKA_SET, MK_KAFKA_OFF } kafka_mode;
    char kafka_adv_host[256]; /* kafka.advertised: "" = kafka.listen's address */
    uint16_t kafka_adv_port;
    /* Not options: filled by the caller from cluster_secret (auth_load). */
    bool has_key;
    uint8_t key[32];
};

/* Per-topic overrides (xattrs user.retention.ms ...); `set` has bit i for
 * field i of the TOPIC_* enum. */
enum {
    TOPIC_RETENTION_MS,
    TOPIC_RETENTION_BYTES,
    TOPIC_SEGMENT_BYTES,
    TOPIC_SEGMENT_MS,
    TOPIC_NCONF
};
struct topic_config {
    int64_t v[TOPIC_NCONF];
    unsigned set;
};
extern const char *const topic_config_names[TOPIC_NCONF]; /* "retention.ms", ... */

void cfg_defaults(struct mk_config *c);

/* Sets one option by its Kafka name.  -ENOENT: not one of ours (the caller
 * passes it on to FUSE); -EINVAL: a bad value (*why says what is allowed). */
int cfg_set(struct mk_config *c, const char *key, const char *value, const char **why);

/* Checks what single options cannot: with peers, this node's id must be
 * one of them.  0 or -EINVAL (*why says what is wrong). */
int cfg_check(const struct mk_config *c, const char **why);

/* The peer entry of node id, or NULL. */
const struct mk_peer *cfg_peer(const struct mk_config *c, uint32_t id);

/* Parses a decimal integer in [min, max], the whole string; 0 or -EINVAL. */
int cfg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses permission bits written in octal, as chmod writes them (at most
 * 07777, the whole string); 0 or -EINVAL. */
int cfg_parse_mode(const char *s, uint32_t *out);

/* Validates a per-topic setting; index into topic_config_names or -ENOENT. */
int topic_config_index(const char *name);
int topic_config_check(int idx, const char *value, int64_t *out);

/* Effective value of a topic setting: override or the mount default. */
int64_t topic_config_get(const struct topic_config *t, const struct mk_config *c, int idx);

/* Kafka's topic name rule: [a-zA-Z0-9._-]{1,249}, not "." or "..".  Names
 * starting with '.' are reserved for control files.  0, -EINVAL or
 * -ENAMETOOLONG. */
int topic_name_check(const char *name);

#endif
