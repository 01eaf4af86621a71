/*
 * change — changes of the tree (broker.h: broker_change): made at once on a
 * single node, through the metadata group in a cluster.
 *
 * In a cluster the checks a node can make alone (a name Kafka refuses, a
 * bad value, a topic it does not know) are made here, so that the answer
 * is immediate; the rules that depend on the order of changes (a name
 * taken meanwhile, a count that no longer grows) are the metadata group's
 * (metadata.h), the same on every node.
 */
#include "broker/cluster.h"
#include "broker/internal.h"
#include "broker/metadata.h"
#include "broker/pgroup.h"

#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int change_here(struct broker *b, const struct broker_change_req *r)
{
    struct topic *t = r->kind == BC_CREATE || r->kind == BC_ROOT ? NULL : topic_find(b, r->topic);
    if (!t && r->kind != BC_CREATE && r->kind != BC_ROOT)
        return -ENOENT;
    switch (r->kind) {
    case BC_CREATE: {
        int64_t n = b->cfg.num_partitions;
        if (r->value && cfg_parse_i64(r->value, 1, META_MAX_PARTS, &n) < 0)
            return -EINVAL;
        return topic_create_as(b, r->topic, b->next_topic_id, &r->own, (uint32_t)n, 0, NULL, NULL);
    }
    case BC_DELETE:
        return topic_delete(b, r->topic);
    case BC_SET:
        return topic_set(b, t, r->key, r->value);
    case BC_UNSET:
        return topic_unset(b, t, r->key);
    case BC_OWNER:
        return topic_set_owner(b, t, &r->own);
    case BC_ROOT:
        return broker_set_root_owner(b, &r->own);
    }
    return -EINVAL;
}

/* The metadata record of a change, checked as far as this node can. */
static int to_op(struct broker *b, const struct broker_change_req *r, struct meta_op *op)
{
    memset(op, 0, sizeof(*op));
    struct topic *t = NULL;
    if (r->kind != BC_ROOT) {
        if (strlen(r->topic) >= sizeof(op->topic))
            return r->kind == BC_CREATE ? -ENAMETOOLONG : -ENOENT;
        strcpy(op->topic, r->topic);
    }
    if (r->kind != BC_CREATE && r->kind != BC_ROOT) {
        if (!(t = topic_find(b, r->topic)))
            return -ENOENT;
        op->id = topic_id(t);
    }
    op->uid = r->own.uid;
    op->gid = r->own.gid;
    op->mode = r->own.mode & 07777;
    int64_t v;
    int rc, idx;
    switch (r->kind) {
    case BC_CREATE:
        if ((rc = topic_name_check(r->topic)) < 0)
            return rc;
        if (topic_find(b, r->topic))
            return -EEXIST;
        op->kind = META_CREATE;
        op->partitions = b->cfg.num_partitions;
        if (r->value) {
            if (cfg_parse_i64(r->value, 1, META_MAX_PARTS, &v) < 0)
                return -EINVAL;
            op->partitions = (uint32_t)v;
        }
        return 0;
    case BC_DELETE:
        op->kind = META_DELETE;
        return 0;
    case BC_SET:
        if (!strcmp(r->key, "partitions")) {
            if (cfg_parse_i64(r->value, 1, META_MAX_PARTS, &v) < 0 ||
                (uint32_t)v < topic_partitions(t))
                return -EINVAL;
            if ((uint32_t)v == topic_partitions(t))
                return 1; /* no change */
            op->kind = META_GROW;
            op->partitions = (uint32_t)v;
            return 0;
        }
        if ((idx = topic_config_index(r->key)) < 0)
            return idx;
        if (topic_config_check(idx, r->value, &v) < 0 ||
            strlen(r->value) >= sizeof(op->value))
            return -EINVAL;
        op->kind = META_SET;
        snprintf(op->key, sizeof(op->key), "%s", r->key);
        snprintf(op->value, sizeof(op->value), "%" PRId64, v);
        return 0;
    case BC_UNSET:
        if (!strcmp(r->key, "partitions"))
            return -EPERM;
        if ((idx = topic_config_index(r->key)) < 0)
            return idx;
        op->kind = META_UNSET;
        snprintf(op->key, sizeof(op->key), "%s", r->key);
        return 0;
    case BC_OWNER:
        op->kind = META_OWNER;
        return 0;
    case BC_ROOT:
        op->kind = META_ROOT;
        return 0;
    }
    return -EINVAL;
}

int broker_change(struct broker *b, const struct broker_change_req *r, broker_done_cb cb,
                  void *arg)
{
    if (!b->cfg.npeers) {
        cb(arg, change_here(b, r));
        return 0;
    }
    if (!b->cluster)
        return -EAGAIN; /* not started */
    struct meta_op op;
    int rc = to_op(b, r, &op);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        cb(arg, 0);
        return 0;
    }
    return cluster_meta_submit(b->cluster, &op, cb, arg);
}

struct sync_remote {
    broker_done_cb cb;
    void *arg;
};

static void sync_remote_done(void *arg, int status, const void *data, size_t n, uint64_t end)
{
    (void)data, (void)n, (void)end; /* the read noted the leader's end */
    struct sync_remote *s = arg;
    s->cb(s->arg, status);
    free(s);
}

void broker_sync(struct broker *b, const struct part *p, broker_done_cb cb, void *arg)
{
    if (!b->cluster || (p && !p->g)) {
        cb(arg, 0);
        return;
    }
    if (p && !p->local) {
        /* No replica here: an empty read tells the leader's end. */
        struct sync_remote *s = malloc(sizeof(*s));
        if (!s) {
            cb(arg, -ENOMEM);
            return;
        }
        s->cb = cb;
        s->arg = arg;
        if (pgroup_read(p->g, 0, 0, sync_remote_done, s) < 0) {
            free(s);
            cb(arg, -ENOMEM);
        }
        return;
    }
    uint64_t group = p ? PGROUP_ID(p->t ? p->t->id : 0, p->id) : 0;
    if (cluster_sync(b->cluster, group, cb, arg) < 0)
        cb(arg, -ENOMEM);
}
