/*
 * node — inode numbers, what an inode names, and its attributes (see
 * internal.h for the numbering).
 *
 * OWNERS AND MODES
 *   The root and each topic have an owner and mode of their own (kept by
 *   the broker); a partition shows its topic's owner and the topic's mode
 *   without execute bits.  Under default_permissions (implied by
 *   allow_other) the kernel checks them; node_change_owner applies the same
 *   rules for mounts without it.
 */
#include "fs/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct node node_resolve(struct fs *f, fuse_ino_t ino)
{
    struct node n = {.kind = N_NONE};
    if (ino == FUSE_ROOT_ID) {
        n.kind = N_ROOT;
    } else if (ino == INO_CLUSTER) {
        n.kind = N_CLUSTER;
    } else if ((n.t = topic_by_id(f->b, ino >> INO_SHIFT)) != NULL) {
        uint64_t sub = ino & INO_SUB_MASK;
        if (sub == 0)
            n.kind = N_TOPIC;
        else if ((n.p = topic_part(n.t, (uint32_t)(sub - 1))) != NULL)
            n.kind = N_PART;
    }
    return n;
}

fuse_ino_t node_topic_ino(const struct topic *t)
{
    return (fuse_ino_t)(topic_id(t) << INO_SHIFT);
}

static void ts_of_ms(struct timespec *ts, int64_t ms)
{
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (ms % 1000) * 1000000;
}

void node_fill_attr(struct fs *f, const struct node *n, fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    const struct mk_owner *o = n->t ? topic_owner(n->t) : broker_root_owner(f->b);
    st->st_uid = o->uid;
    st->st_gid = o->gid;
    st->st_blksize = 4096;
    int64_t now = (int64_t)time(NULL) * 1000;
    ts_of_ms(&st->st_atim, now);
    switch (n->kind) {
    case N_ROOT:
        st->st_mode = S_IFDIR | o->mode;
        st->st_nlink = 2 + topic_count(f->b);
        ts_of_ms(&st->st_mtim, now);
        break;
    case N_CLUSTER: {
        char *text;
        size_t len = 0;
        if (broker_status(f->b, &text, &len) == 0)
            free(text);
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)len;
        ts_of_ms(&st->st_mtim, now);
        break;
    }
    case N_TOPIC:
        st->st_mode = S_IFDIR | o->mode;
        st->st_nlink = 2;
        ts_of_ms(&st->st_mtim, topic_created_ms(n->t));
        break;
    case N_PART: {
        struct part_info pi;
        part_info(n->p, &pi);
        st->st_mode = S_IFREG | (o->mode & 0666);
        st->st_nlink = 1;
        /* The preferred I/O size: cat, cp and stdio size their writes by
         * it, and under fsync=always each write costs one fdatasync. */
        st->st_blksize = MAX_WRITE;
        st->st_size = (off_t)pi.end_pos;
        st->st_blocks = (blkcnt_t)((pi.end_pos - pi.first_pos + 511) / 512);
        ts_of_ms(&st->st_mtim, pi.mtime_ms);
        break;
    }
    case N_NONE:
        break;
    }
    st->st_ctim = st->st_mtim;
}

/* Partitions and .cluster grow under readers: never cached.  Directories
 * are cached like names; the kernel drops a directory's attributes itself
 * when a mkdir or rmdir in it goes through this mount. */
/* In a cluster another node may change the tree at any time, and with the
 * Kafka port a client may (CreateTopics, DeleteTopics): nothing of it is
 * then cached by the kernel (every lookup asks; in a cluster, misses do a
 * ReadIndex). */
static double name_ttl(const struct fs *f)
{
    return broker_tree_shared(f->b) ? 0.0 : NAME_TTL;
}

double node_ttl(const struct fs *f, const struct node *n)
{
    return n->kind == N_PART || n->kind == N_CLUSTER ? 0.0 : name_ttl(f);
}

void node_reply_entry(fuse_req_t req, struct fs *f, const struct node *n, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = ino;
    e.entry_timeout = name_ttl(f);
    e.attr_timeout = node_ttl(f, n);
    node_fill_attr(f, n, ino, &e.attr);
    fuse_reply_entry(req, &e);
}

/* Parses a partition file name: decimal, no leading zeros. */
int node_parse_part(const char *name, uint32_t *out)
{
    uint64_t v = 0;
    if (!*name || (name[0] == '0' && name[1]) || strlen(name) > 9)
        return -ENOENT;
    for (const char *c = name; *c; c++) {
        if (*c < '0' || *c > '9')
            return -ENOENT;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    *out = (uint32_t)v;
    return 0;
}

/* chmod/chown/chgrp of the root or a topic.  The kernel checks this
 * already under default_permissions; the same rules are applied here for
 * mounts without it: only root changes the owner, only the owner or root
 * changes the group (to one of the owner's groups: not checked here) or the
 * mode. */
struct change_ctx {
    fuse_req_t req;
    struct fs *f;
    enum change_reply how;
    fuse_ino_t ino;
    int enoent;
    char name[256];
};

static void change_done(void *arg, int status)
{
    struct change_ctx *c = arg;
    if (status < 0) {
        fuse_reply_err(c->req, status == -ENOENT ? c->enoent : -status);
    } else if (c->how == CR_ERR) {
        fuse_reply_err(c->req, 0);
    } else if (c->how == CR_ENTRY) {
        struct topic *t = topic_find(c->f->b, c->name);
        if (!t) {
            fuse_reply_err(c->req, ENOENT); /* deleted meanwhile */
        } else {
            struct node n = {.kind = N_TOPIC, .t = t};
            node_reply_entry(c->req, c->f, &n, node_topic_ino(t));
        }
    } else {
        struct node n = node_resolve(c->f, c->ino);
        if (n.kind == N_NONE) {
            fuse_reply_err(c->req, ENOENT);
        } else {
            struct stat st;
            node_fill_attr(c->f, &n, c->ino, &st);
            fuse_reply_attr(c->req, &st, node_ttl(c->f, &n));
        }
    }
    free(c);
}

void node_change(fuse_req_t req, struct fs *f, const struct broker_change_req *r,
                 enum change_reply how, fuse_ino_t ino, int enoent)
{
    struct change_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    c->req = req;
    c->f = f;
    c->how = how;
    c->ino = ino;
    c->enoent = enoent;
    if (r->topic)
        snprintf(c->name, sizeof(c->name), "%s", r->topic);
    int rc = broker_change(f->b, r, change_done, c);
    if (rc < 0) {
        fuse_reply_err(req, rc == -ENOENT ? enoent : -rc);
        free(c);
    }
}

void node_change_owner(fuse_req_t req, struct fs *f, const struct node *n, fuse_ino_t ino,
                       const struct stat *attr, int to_set)
{
    if (n->kind != N_ROOT && n->kind != N_TOPIC) {
        fuse_reply_err(req, EPERM);
        return;
    }
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct mk_owner o = n->kind == N_ROOT ? *broker_root_owner(f->b) : *topic_owner(n->t);
    bool privileged = ctx->uid == 0;
    bool ok = true;
    if (to_set & FUSE_SET_ATTR_UID) {
        ok = ok && (privileged || attr->st_uid == o.uid);
        o.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        ok = ok && (privileged || ctx->uid == o.uid || attr->st_gid == o.gid);
        o.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_MODE) {
        ok = ok && (privileged || ctx->uid == o.uid);
        o.mode = attr->st_mode & 07777;
    }
    if (!ok) {
        fuse_reply_err(req, EPERM);
        return;
    }
    struct broker_change_req r = {.kind = n->kind == N_ROOT ? BC_ROOT : BC_OWNER,
                                  .topic = n->kind == N_TOPIC ? topic_name(n->t) : NULL,
                                  .own = o};
    node_change(req, f, &r, CR_ATTR, ino, ENOENT);
}
