/*
 * config — option parsing and validation (see config.h).
 *
 * Defaults are Kafka's where Kafka has one: 1 partition, 1 GiB segments,
 * 7-day segment age and retention, no size retention, 1048588-byte records.
 */
#include "broker/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const topic_config_names[TOPIC_NCONF] = {"retention.ms", "retention.bytes",
                                                     "segment.bytes", "segment.ms"};

#define WEEK_MS (7LL * 24 * 3600 * 1000)

void cfg_defaults(struct mk_config *c)
{
    c->num_partitions = 1;
    c->segment_bytes = 1LL << 30;
    c->segment_ms = WEEK_MS;
    c->retention_ms = WEEK_MS;
    c->retention_bytes = -1;
    c->message_max_bytes = 1048588;
    c->fsync = MK_FSYNC_ALWAYS;
    c->node_id = 1;
    c->npeers = 0;
    c->request_timeout_ms = 30000;
    c->scrub_bytes_per_sec = 4 << 20;
    c->scrub_interval_ms = 86400000;
    strcpy(c->kafka_listen.host, "127.0.0.1");
    c->kafka_listen.port = 9092;
    c->kafka_mode = MK_KAFKA_DEFAULT;
}

/* ID@A.B.C.D:PORT */
static int parse_peer(const char *v, struct mk_peer *out)
{
    const char *at = strchr(v, '@'), *colon = strrchr(v, ':');
    if (!at || !colon || colon < at)
        return -EINVAL;
    char num[16];
    int64_t id, port;
    size_t n = (size_t)(at - v);
    if (n == 0 || n >= sizeof(num))
        return -EINVAL;
    memcpy(num, v, n);
    num[n] = '\0';
    if (cfg_parse_i64(num, 1, INT32_MAX, &id) < 0 || cfg_parse_i64(colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    n = (size_t)(colon - at - 1);
    if (n == 0 || n >= sizeof(out->host))
        return -EINVAL;
    memcpy(out->host, at + 1, n);
    out->host[n] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, out->host, &a) != 1)
        return -EINVAL;
    out->id = (uint32_t)id;
    out->port = (uint16_t)port;
    return 0;
}

const struct mk_peer *cfg_peer(const struct mk_config *c, uint32_t id)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].id == id)
            return &c->peers[i];
    return NULL;
}

int cfg_check(const struct mk_config *c, const char **why)
{
    if (c->npeers && !cfg_peer(c, c->node_id)) {
        *why = "node.id must be one of the peers (give every node, this one included, as "
               "peer=ID@HOST:PORT)";
        return -EINVAL;
    }
    if (!c->npeers && (c->cluster_secret[0] || c->listen.port)) {
        *why = "cluster.secret and cluster.listen need the peers (peer=ID@HOST:PORT)";
        return -EINVAL;
    }
    if (c->kafka_mode == MK_KAFKA_SET && !strcmp(c->kafka_listen.host, "0.0.0.0") &&
        !c->kafka_adv_host[0]) {
        *why = "kafka.listen=0.0.0.0:PORT needs kafka.advertised=HOST:PORT (what clients connect to)";
        return -EINVAL;
    }
    if (c->replication_factor > (c->npeers ? c->npeers : 1)) {
        *why = "default.replication.factor must be at most the number of nodes";
        return -EINVAL;
    }
    return 0;
}

int cfg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    /* The whole string is the number: no blanks, no '+' (strtoll would
     * accept " 3"). */
    if (!s || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int cfg_parse_mode(const char *s, uint32_t *out)
{
    if (!*s || strlen(s) > 5 || strspn(s, "01234567") != strlen(s))
        return -EINVAL;
    unsigned long v = strtoul(s, NULL, 8);
    if (v > 07777)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* Segment sizes are capped so that every record offset inside one segment
 * fits the index and a .log stays addressable as one file. */
#define SEG_BYTES_MIN 64
#define SEG_BYTES_MAX (1LL << 40)
#define MSG_MAX_MAX   (64LL << 20)

int cfg_set(struct mk_config *c, const char *key, const char *value, const char **why)
{
    int64_t v;
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!strcmp(key, "num.partitions")) {
        *why = "an integer from 1 to 100000";
        if (cfg_parse_i64(value, 1, 100000, &v) < 0)
            return -EINVAL;
        c->num_partitions = (uint32_t)v;
    } else if (!strcmp(key, "log.segment.bytes")) {
        *why = "an integer from 64 to 2^40";
        if (cfg_parse_i64(value, SEG_BYTES_MIN, SEG_BYTES_MAX, &v) < 0)
            return -EINVAL;
        c->segment_bytes = v;
    } else if (!strcmp(key, "log.segment.ms")) {
        *why = "a positive integer (milliseconds)";
        if (cfg_parse_i64(value, 1, INT64_MAX, &v) < 0)
            return -EINVAL;
        c->segment_ms = v;
    } else if (!strcmp(key, "log.retention.ms")) {
        *why = "-1 (forever) or a non-negative integer (milliseconds)";
        if (cfg_parse_i64(value, -1, INT64_MAX, &v) < 0)
            return -EINVAL;
        c->retention_ms = v;
    } else if (!strcmp(key, "log.retention.bytes")) {
        *why = "-1 (no limit) or a non-negative integer (bytes)";
        if (cfg_parse_i64(value, -1, INT64_MAX, &v) < 0)
            return -EINVAL;
        c->retention_bytes = v;
    } else if (!strcmp(key, "message.max.bytes")) {
        *why = "an integer from 1 to 67108864";
        if (cfg_parse_i64(value, 1, MSG_MAX_MAX, &v) < 0)
            return -EINVAL;
        c->message_max_bytes = (uint32_t)v;
    } else if (!strcmp(key, "fsync")) {
        *why = "always or never";
        if (!strcmp(value, "always"))
            c->fsync = MK_FSYNC_ALWAYS;
        else if (!strcmp(value, "never"))
            c->fsync = MK_FSYNC_NEVER;
        else
            return -EINVAL;
    } else if (!strcmp(key, "peer")) {
        *why = "ID@IPV4:PORT, an id and address not given before, at most 16 peers";
        struct mk_peer p;
        if (parse_peer(value, &p) < 0 || c->npeers == MK_MAX_PEERS || cfg_peer(c, p.id))
            return -EINVAL;
        for (size_t i = 0; i < c->npeers; i++)
            if (!strcmp(c->peers[i].host, p.host) && c->peers[i].port == p.port)
                return -EINVAL;
        c->peers[c->npeers++] = p;
    } else if (!strcmp(key, "scrub.bytes.per.sec")) {
        *why = "0 (no background scrub) or a positive integer (bytes per second)";
        if (cfg_parse_i64(value, 0, 1LL << 40, &v) < 0)
            return -EINVAL;
        c->scrub_bytes_per_sec = v;
    } else if (!strcmp(key, "scrub.interval.ms")) {
        *why = "a non-negative integer (milliseconds between two scrub passes)";
        if (cfg_parse_i64(value, 0, INT64_MAX / 2, &v) < 0)
            return -EINVAL;
        c->scrub_interval_ms = v;
    } else if (!strcmp(key, "cluster.secret")) {
        *why = "the path of a file (at most 255 bytes)";
        if (!*value || strlen(value) >= sizeof(c->cluster_secret))
            return -EINVAL;
        strcpy(c->cluster_secret, value);
    } else if (!strcmp(key, "cluster.listen")) {
        *why = "IPV4:PORT, the address the cluster port listens on";
        char buf[40];
        if (strlen(value) + 3 > sizeof(buf))
            return -EINVAL;
        snprintf(buf, sizeof(buf), "1@%s", value);
        if (parse_peer(buf, &c->listen) < 0)
            return -EINVAL;
        c->listen.id = 0;
    } else if (!strcmp(key, "kafka.listen")) {
        *why = "IPV4:PORT where the Kafka protocol listens, or off";
        if (!strcmp(value, "off")) {
            c->kafka_mode = MK_KAFKA_OFF;
            return 0;
        }
        char buf[40];
        if (strlen(value) + 3 > sizeof(buf))
            return -EINVAL;
        snprintf(buf, sizeof(buf), "1@%s", value);
        if (parse_peer(buf, &c->kafka_listen) < 0)
            return -EINVAL;
        c->kafka_listen.id = 0;
        c->kafka_mode = MK_KAFKA_SET;
    } else if (!strcmp(key, "kafka.advertised")) {
        *why = "HOST:PORT, the address Kafka clients are told to connect to";
        const char *colon = strrchr(value, ':');
        if (!colon || colon == value || (size_t)(colon - value) >= sizeof(c->kafka_adv_host) ||
            cfg_parse_i64(colon + 1, 1, 65535, &v) < 0)
            return -EINVAL;
        for (const char *q = value; q < colon; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                  *q == '.' || *q == '-' || *q == '_'))
                return -EINVAL;
        memcpy(c->kafka_adv_host, value, (size_t)(colon - value));
        c->kafka_adv_host[colon - value] = '\0';
        c->kafka_adv_port = (uint16_t)v;
    } else if (!strcmp(key, "request.timeout.ms")) {
        *why = "a positive integer (milliseconds)";
        if (cfg_parse_i64(value, 1, INT32_MAX, &v) < 0)
            return -EINVAL;
        c->request_timeout_ms = v;
    } else if (!strcmp(key, "default.replication.factor")) {
        *why = "an integer from 1 to 16 (at most the number of peers)";
        if (cfg_parse_i64(value, 1, MK_MAX_PEERS, &v) < 0)
            return -EINVAL;
        c->replication_factor = (uint32_t)v;
    } else if (!strcmp(key, "node.id")) {
        *why = "an integer from 0 to 2147483647";
        if (cfg_parse_i64(value, 0, INT32_MAX, &v) < 0)
            return -EINVAL;
        c->node_id = (uint32_t)v;
    } else {
        return -ENOENT;
    }
    return 0;
}

int topic_config_index(const char *name)
{
    for (int i = 0; i < TOPIC_NCONF; i++)
        if (!strcmp(name, topic_config_names[i]))
            return i;
    return -ENOENT;
}

int topic_config_check(int idx, const char *value, int64_t *out)
{
    switch (idx) {
    case TOPIC_RETENTION_MS:
    case TOPIC_RETENTION_BYTES:
        return cfg_parse_i64(value, -1, INT64_MAX, out);
    case TOPIC_SEGMENT_BYTES:
        return cfg_parse_i64(value, SEG_BYTES_MIN, SEG_BYTES_MAX, out);
    case TOPIC_SEGMENT_MS:
        return cfg_parse_i64(value, 1, INT64_MAX, out);
    }
    return -ENOENT;
}

int64_t topic_config_get(const struct topic_config *t, const struct mk_config *c, int idx)
{
    if (t && (t->set & (1u << idx)))
        return t->v[idx];
    switch (idx) {
    case TOPIC_RETENTION_MS:
        return c->retention_ms;
    case TOPIC_RETENTION_BYTES:
        return c->retention_bytes;
    case TOPIC_SEGMENT_BYTES:
        return c->segment_bytes;
    default:
        return c->segment_ms;
    }
}

int topic_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.')
        return -EINVAL; /* also "." and ".."; dot-names are reserved */
    if (n > 249)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return -EINVAL;
    }
    return 0;
}
