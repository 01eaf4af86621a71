/*
 * metadata — the records of the metadata Raft group: what a cluster agrees
 * on about topics (creation, deletion, growth, settings, owners) and where
 * their replicas live.  Pure functions, no I/O: the codec, the placement and
 * the rules an operation must pass to apply.  Every node applies the same
 * records in the same order with the same rules and so reaches the same
 * registry; a record that fails its rules changes nothing anywhere.
 *
 * RECORD FORMAT
 *   One text line per operation, '\n'-terminated, so that the metadata log
 *   reads like its own history with `cat`:
 *     create topic=NAME partitions=N rf=R replicas=A,B,C/B,C,A/... uid=U gid=G mode=OCTAL
 *     delete topic=NAME id=ID
 *     grow topic=NAME id=ID partitions=N replicas=<the new partitions' lists>
 *     set topic=NAME id=ID key=KEY value=V
 *     unset topic=NAME id=ID key=KEY
 *     owner topic=NAME id=ID uid=U gid=G mode=OCTAL
 *     root uid=U gid=G mode=OCTAL
 *   Fields are in this order, separated by one blank.  A created topic's id
 *   is its record's offset + 1: the same on every node, never reused.  Other
 *   operations name the topic by name and id, so that one proposed for a
 *   topic never applies to a later topic of the same name.
 */
#ifndef MK_METADATA_H
#define MK_METADATA_H

#include "broker/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define META_MAX_RF    MK_MAX_PEERS
#define META_MAX_PARTS 100000
#define META_LINE_MAX  (1 << 20) /* a create of many partitions fits */

enum meta_kind {
    META_CREATE = 1,
    META_DELETE,
    META_GROW,
    META_SET,
    META_UNSET,
    META_OWNER,
    META_ROOT
};

struct meta_op {
    enum meta_kind kind;
    char topic[250];
    uint64_t id;             /* all but create and root */
    uint32_t partitions;     /* create: count; grow: the new count */
    uint32_t rf;             /* create */
    uint32_t *replicas;      /* create, grow: rf ids per new partition, malloc'ed */
    size_t nreplicas;        /* entries in replicas */
    char key[32];            /* set, unset: a topic setting's Kafka name */
    char value[32];          /* set */
    uint32_t uid, gid, mode; /* create, owner, root */
};

/* Frees op->replicas. */
void meta_op_free(struct meta_op *op);

/* Writes op as its record line (with '\n') into *out (malloc'ed, *len bytes). */
int meta_op_encode(const struct meta_op *op, char **out, size_t *len);

/* Parses one record line (with its '\n').  -EBADMSG for anything that is not
 * exactly a record of the format above (unknown operation, fields out of
 * order, bad numbers, a name Kafka refuses, replica lists that do not match
 * rf and the partition count). */
int meta_op_decode(const char *line, size_t len, struct meta_op *op);

/* Replica placement for partitions [first, first + n) of topic `id` over
 * the nodes ids[0..nn) (ascending): rf = min(rf, nn) replicas each, the
 * first of which is the preferred leader.  Round robin from an offset that
 * depends on the topic, so replicas and preferred leaders spread evenly
 * over the nodes, within one per node, whatever the number of topics.
 * out holds n * rf ids. */
void meta_place(const uint32_t *ids, size_t nn, uint32_t rf, uint64_t id, uint32_t first,
                uint32_t n, uint32_t *out);

/* What the applying node knows, for the rules. */
struct meta_view {
    void *ctx;
    /* The id of the live topic named name, or 0. */
    uint64_t (*find)(void *ctx, const char *name);
    /* Its partition count (id live). */
    uint32_t (*partitions)(void *ctx, uint64_t id);
};

/* The rules: 0 if op applies, else the errno every node answers with:
 * -EEXIST (create of a live name), -ENOENT (a topic that is gone or was
 * replaced), -EINVAL (partitions that do not grow, a bad setting, replica
 * ids that are not nodes of the cluster).  nodes: the cluster's ids. */
int meta_check(const struct meta_view *v, const struct meta_op *op, const uint32_t *nodes,
               size_t nn);

#endif
