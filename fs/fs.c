/*
 * fs — the FUSE low-level adapter (see fs.h): the operation table, the
 * namespace (lookup, mkdir, rmdir, readdir) and what is refused.  The parts
 * are listed in internal.h.
 *
 * CACHING
 *   Partition and .cluster attributes are not cached (st_size grows under
 *   readers: `tail -f` polls it).  Directories and names are cached for a
 *   second.
 */
#include "fs/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* ------------------------------------------------------------ lookups */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* Exact writes, in order: no writeback cache, no parallel direct I/O of
     * one write (it could reorder its pieces), big requests. */
    conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ASYNC_DIO);
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    conn->max_write = MAX_WRITE;
}

/* Answers a lookup from what this node knows; found: whether it did. */
static bool lookup_reply(fuse_req_t req, struct fs *f, fuse_ino_t parent, const char *name,
                         bool final)
{
    struct node pn = node_resolve(f, parent);
    struct node n = {.kind = N_NONE};
    fuse_ino_t ino = 0;
    if (pn.kind == N_ROOT) {
        if (!strcmp(name, ".cluster")) {
            n.kind = N_CLUSTER;
            ino = INO_CLUSTER;
        } else if ((n.t = topic_find(f->b, name)) != NULL) {
            n.kind = N_TOPIC;
            ino = node_topic_ino(n.t);
        }
    } else if (pn.kind == N_TOPIC) {
        uint32_t i;
        if (node_parse_part(name, &i) == 0 && (n.p = topic_part(pn.t, i)) != NULL) {
            n.kind = N_PART;
            n.t = pn.t;
            ino = node_topic_ino(pn.t) | (i + 1);
        }
    } else if (pn.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return true;
    } else {
        fuse_reply_err(req, ENOTDIR);
        return true;
    }
    if (n.kind == N_NONE) {
        if (!final)
            return false;
        fuse_reply_err(req, ENOENT);
        return true;
    }
    node_reply_entry(req, f, &n, ino);
    return true;
}

/* A name this node does not know may have been made on another node a
 * moment ago: it asks the metadata leader how far it is and looks again
 * once it caught up (mkdir on one mount, then `echo >>` on another). */
struct lookup_ctx {
    fuse_req_t req;
    struct fs *f;
    fuse_ino_t parent;
    char name[256];
};

static void lookup_synced(void *arg, int status)
{
    (void)status; /* without a leader: what this node knows */
    struct lookup_ctx *l = arg;
    lookup_reply(l->req, l->f, l->parent, l->name, true);
    free(l);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *f = req_fs(req);
    bool cluster = broker_config(f->b)->npeers > 0;
    if (lookup_reply(req, f, parent, name, !cluster || strlen(name) > 255))
        return;
    struct lookup_ctx *l = calloc(1, sizeof(*l));
    if (!l) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    l->req = req;
    l->f = f;
    l->parent = parent;
    strcpy(l->name, name);
    broker_sync(f->b, NULL, lookup_synced, l);
}

static void getattr_reply(fuse_req_t req, struct fs *f, fuse_ino_t ino)
{
    struct node n = node_resolve(f, ino);
    if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat st;
    node_fill_attr(f, &n, ino, &st);
    fuse_reply_attr(req, &st, node_ttl(f, &n));
}

struct getattr_ctx {
    fuse_req_t req;
    struct fs *f;
    fuse_ino_t ino;
};

static void getattr_synced(void *arg, int status)
{
    (void)status;
    struct getattr_ctx *g = arg;
    getattr_reply(g->req, g->f, g->ino);
    free(g);
}

/* On a node without a replica of a partition, its size is the leader's
 * (one round trip): `tail -f` there, which polls the size, sees every
 * record. */
static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = req_fs(req);
    struct node n = node_resolve(f, ino);
    struct getattr_ctx *g;
    if (n.kind != N_PART || !part_remote(n.p) || !(g = malloc(sizeof(*g)))) {
        getattr_reply(req, f, ino);
        return;
    }
    *g = (struct getattr_ctx){.req = req, .f = f, .ino = ino};
    broker_sync(f->b, n.p, getattr_synced, g);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = req_fs(req);
    struct node n = node_resolve(f, ino);
    if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    /* Truncation: refused.  Owner and mode belong to the root and the
     * topics (a partition shows its topic's).  Time changes (touch) are
     * accepted and ignored: times are the log's own. */
    if (to_set & FUSE_SET_ATTR_SIZE) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        node_change_owner(req, f, &n, ino, attr, to_set);
        return;
    }
    struct stat st;
    node_fill_attr(f, &n, ino, &st);
    fuse_reply_attr(req, &st, node_ttl(f, &n));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct fs *f = req_fs(req);
    struct node pn = node_resolve(f, parent);
    if (pn.kind != N_ROOT) {
        fuse_reply_err(req, pn.kind == N_NONE ? ENOENT : EPERM);
        return;
    }
    /* The topic belongs to its creator, with mkdir's mode under the
     * creator's umask (ctx->umask is 0 when the kernel applied it). */
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct broker_change_req r = {
        .kind = BC_CREATE,
        .topic = name,
        .own = {.uid = ctx->uid, .gid = ctx->gid, .mode = mode & 07777 & ~ctx->umask}};
    node_change(req, f, &r, CR_ENTRY, 0, ENOENT);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *f = req_fs(req);
    struct node pn = node_resolve(f, parent);
    if (pn.kind != N_ROOT) {
        fuse_reply_err(req, pn.kind == N_NONE ? ENOENT : ENOTDIR);
    } else if (!strcmp(name, ".cluster")) {
        fuse_reply_err(req, ENOTDIR);
    } else {
        struct broker_change_req r = {.kind = BC_DELETE, .topic = name};
        node_change(req, f, &r, CR_ERR, 0, ENOENT);
    }
}

static void op_refuse(fuse_req_t req)
{
    fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent;
    (void)name;
    op_refuse(req);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    (void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
    op_refuse(req);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)parent, (void)name, (void)mode, (void)rdev;
    op_refuse(req);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link, (void)parent, (void)name;
    op_refuse(req);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino, (void)newparent, (void)newname;
    op_refuse(req);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    (void)parent, (void)name, (void)mode, (void)fi;
    op_refuse(req);
}

/* ------------------------------------------------------------ directories */

struct dirbuf {
    char *p;
    size_t size, cap;
};

static int dir_add(fuse_req_t req, struct dirbuf *d, size_t max, const char *name, fuse_ino_t ino,
                   mode_t mode, off_t next)
{
    struct stat st = {.st_ino = ino, .st_mode = mode};
    size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
    if (d->size + need > max)
        return 1;
    if (d->size + need > d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 4096;
        while (nc < d->size + need)
            nc *= 2;
        char *np = realloc(d->p, nc);
        if (!np)
            return -1;
        d->p = np;
        d->cap = nc;
    }
    fuse_add_direntry(req, d->p + d->size, need, name, &st, next);
    d->size += need;
    return 0;
}

static void readdir_reply(fuse_req_t req, struct fs *f, fuse_ino_t ino, size_t size, off_t off)
{
    struct node n = node_resolve(f, ino);
    struct dirbuf d = {0};
    int full = 0;
    if (n.kind != N_ROOT && n.kind != N_TOPIC) {
        fuse_reply_err(req, n.kind == N_NONE ? ENOENT : ENOTDIR);
        return;
    }
    /* Entry k has offset k + 1; 0 is ".", 1 is "..". */
    size_t total = n.kind == N_ROOT ? 3 + topic_count(f->b) : 2 + topic_partitions(n.t);
    for (size_t k = (size_t)off; k < total && !full; k++) {
        char name[32];
        const char *nm = name;
        fuse_ino_t eino;
        mode_t mode = S_IFDIR;
        if (k == 0) {
            nm = ".";
            eino = ino;
        } else if (k == 1) {
            nm = "..";
            eino = FUSE_ROOT_ID;
        } else if (n.kind == N_ROOT && k == 2) {
            nm = ".cluster";
            eino = INO_CLUSTER;
            mode = S_IFREG;
        } else if (n.kind == N_ROOT) {
            struct topic *t = topic_at(f->b, k - 3);
            nm = topic_name(t);
            eino = node_topic_ino(t);
        } else {
            snprintf(name, sizeof(name), "%zu", k - 2);
            eino = node_topic_ino(n.t) | (k - 1);
            mode = S_IFREG;
        }
        full = dir_add(req, &d, size, nm, eino, mode, (off_t)k + 1);
        if (full < 0) {
            free(d.p);
            fuse_reply_err(req, ENOMEM);
            return;
        }
    }
    fuse_reply_buf(req, d.p, d.size);
    free(d.p);
}

struct readdir_ctx {
    fuse_req_t req;
    struct fs *f;
    fuse_ino_t ino;
    size_t size;
};

static void readdir_synced(void *arg, int status)
{
    (void)status;
    struct readdir_ctx *r = arg;
    readdir_reply(r->req, r->f, r->ino, r->size, 0);
    free(r);
}

/* A listing of the root from its start shows every topic the cluster had
 * when it was asked for (ReadIndex of the metadata group). */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = req_fs(req);
    struct readdir_ctx *r;
    if (off != 0 || ino != FUSE_ROOT_ID || !broker_config(f->b)->npeers ||
        !(r = calloc(1, sizeof(*r)))) {
        readdir_reply(req, f, ino, size, off);
        return;
    }
    *r = (struct readdir_ctx){.req = req, .f = f, .ino = ino, .size = size};
    broker_sync(f->b, NULL, readdir_synced, r);
}

/* Space cannot be reserved in a log, nor holes punched: the file's bytes
 * are its records. */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    (void)ino, (void)mode, (void)offset, (void)length, (void)fi;
    fuse_reply_err(req, EOPNOTSUPP);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct fs *f = req_fs(req);
    struct statvfs sv;
    if (statvfs(broker_data_dir(f->b), &sv) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_namemax = 255;
    fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .unlink = op_unlink,
    .rename = op_rename,
    .mknod = op_mknod,
    .symlink = op_symlink,
    .link = op_link,
    .create = op_create,
    .open = handle_open,
    .read = handle_read,
    .write = handle_write,
    .flush = handle_flush,
    .fsync = handle_fsync,
    .release = handle_release,
    .readdir = op_readdir,
    .getxattr = xattr_get,
    .listxattr = xattr_list,
    .setxattr = xattr_set,
    .removexattr = xattr_remove,
    .statfs = op_statfs,
    .fallocate = op_fallocate,
};
