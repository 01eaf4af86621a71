/*
 * fs — the FUSE low-level adapter (see fs.h).
 *
 * THE TREE AND ITS INODE NUMBERS
 *   1                     the mount root: one directory per topic, .cluster
 *   2                     .cluster, read-only status text
 *   ID << 24              topic directory (ID: the topic's id, never reused)
 *   ID << 24 | (P + 1)    partition P of that topic
 *   Inode numbers follow from the topic registry, so lookup counts need no
 *   table; an inode of a deleted topic simply stops resolving (ENOENT), and
 *   open files on it answer ESTALE.
 *
 * CACHING
 *   Partition files are opened with direct_io: every read and write reaches
 *   us with its exact offset and size.  The kernel page cache would otherwise
 *   read whole pages, including bytes below the first retained position or
 *   bytes a writer's page cache copy holds but that are not committed.  Their
 *   attributes are not cached (st_size grows under readers: `tail -f` polls
 *   it).  Directories and names are cached for a second.
 *
 * WRITES
 *   Requests of one open file are handled in order (a queue per handle): the
 *   handle's held partial line is part of its state.  A write is framed into
 *   records (framing.c); complete records go to part_append together with the
 *   held bytes, and the write is answered when they are committed.  The new
 *   partial line replaces the held one only if the append succeeded, so a
 *   failed write changes nothing.
 */
#include "fs/fs.h"
#include "fs/framing.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define INO_CLUSTER  2
#define INO_SHIFT    24
#define INO_SUB_MASK ((1ull << INO_SHIFT) - 1)
#define NAME_TTL     1.0
#define MAX_WRITE    (1u << 20)
#define REFUSED_KEEP 4096

struct fh;

/* A request waiting its turn on a handle, or in flight. */
enum wop { W_WRITE, W_FLUSH, W_FSYNC };
struct wreq {
    enum wop op;
    fuse_req_t req;
    struct fh *fh;
    char *data; /* W_WRITE: owned copy when queued; else borrowed */
    size_t len;
    bool owned;
    char *tail; /* the partial line to hold after success */
    size_t tail_len;
    struct frame fr;
    struct wreq *next;
};

struct fh {
    struct fs *fs;
    bool status; /* .cluster snapshot */
    struct part *p;
    char *held; /* partial line, not yet a record */
    size_t held_len;
    char *text; /* .cluster content */
    size_t text_len;
    struct wreq *q_head, *q_tail; /* waiting, in order */
    bool busy;                    /* a request of this handle is in flight */
    bool discard;                 /* refusing the rest of an over-long record */
    char *refused;                /* start of the last write refused with EMSGSIZE */
    size_t refused_len;           /* (at most REFUSED_KEEP bytes), to know its retries */
    bool redirected;              /* the last read was served from the retained start: */
    uint64_t rd_virt, rd_real;    /* where it ended, in this handle's and the file's numbering */
    bool released;                /* RELEASE came while busy */
    struct fh *prev, *next;       /* all open handles */
};

struct fs {
    struct broker *b;
    struct fuse_session *se;
    uv_poll_t poll;
    bool polling;
    uv_idle_t kick; /* serve once more on the next loop turn */
    struct fuse_buf buf;
    void (*on_exit)(void *);
    void *exit_arg;
    bool exited;
    bool serving; /* inside serve(): no re-entry */
    int inflight; /* write/flush/fsync requests started, not yet answered */
    struct fh *handles;
};

static struct fs *req_fs(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ------------------------------------------------------------ the tree */

enum node_kind { N_NONE, N_ROOT, N_CLUSTER, N_TOPIC, N_PART };
struct node {
    enum node_kind kind;
    struct topic *t;
    struct part *p;
};

static struct node resolve(struct fs *f, fuse_ino_t ino)
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

static fuse_ino_t topic_ino(const struct topic *t)
{
    return (fuse_ino_t)(topic_id(t) << INO_SHIFT);
}

static void ts_of_ms(struct timespec *ts, int64_t ms)
{
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (ms % 1000) * 1000000;
}

static void fill_attr(struct fs *f, const struct node *n, fuse_ino_t ino, struct stat *st)
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
static double attr_ttl(const struct node *n)
{
    return n->kind == N_PART || n->kind == N_CLUSTER ? 0.0 : NAME_TTL;
}

static void reply_entry(fuse_req_t req, struct fs *f, const struct node *n, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = ino;
    e.entry_timeout = NAME_TTL;
    e.attr_timeout = attr_ttl(n);
    fill_attr(f, n, ino, &e.attr);
    fuse_reply_entry(req, &e);
}

/* Parses a partition file name: decimal, no leading zeros. */
static int parse_part_name(const char *name, uint32_t *out)
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

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *f = req_fs(req);
    struct node pn = resolve(f, parent);
    struct node n = {.kind = N_NONE};
    fuse_ino_t ino = 0;
    if (pn.kind == N_ROOT) {
        if (!strcmp(name, ".cluster")) {
            n.kind = N_CLUSTER;
            ino = INO_CLUSTER;
        } else if ((n.t = topic_find(f->b, name)) != NULL) {
            n.kind = N_TOPIC;
            ino = topic_ino(n.t);
        }
    } else if (pn.kind == N_TOPIC) {
        uint32_t i;
        if (parse_part_name(name, &i) == 0 && (n.p = topic_part(pn.t, i)) != NULL) {
            n.kind = N_PART;
            n.t = pn.t;
            ino = topic_ino(pn.t) | (i + 1);
        }
    } else if (pn.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    } else {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    reply_entry(req, f, &n, ino);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
    if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat st;
    fill_attr(f, &n, ino, &st);
    fuse_reply_attr(req, &st, attr_ttl(&n));
}

/* chmod/chown/chgrp of the root or a topic.  The kernel checks this
 * already under default_permissions; the same rules are applied here for
 * mounts without it: only root changes the owner, only the owner or root
 * changes the group (to one of the owner's groups: not checked here) or the
 * mode. */
static int change_owner(fuse_req_t req, struct fs *f, const struct node *n, const struct stat *attr,
                        int to_set)
{
    if (n->kind != N_ROOT && n->kind != N_TOPIC)
        return -EPERM;
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct mk_owner o = n->kind == N_ROOT ? *broker_root_owner(f->b) : *topic_owner(n->t);
    bool privileged = ctx->uid == 0;
    if (to_set & FUSE_SET_ATTR_UID) {
        if (!privileged && attr->st_uid != o.uid)
            return -EPERM;
        o.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        if (!privileged && ctx->uid != o.uid && attr->st_gid != o.gid)
            return -EPERM;
        o.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_MODE) {
        if (!privileged && ctx->uid != o.uid)
            return -EPERM;
        o.mode = attr->st_mode & 07777;
    }
    return n->kind == N_ROOT ? broker_set_root_owner(f->b, &o) : topic_set_owner(f->b, n->t, &o);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
    if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    /* Truncation: refused.  Owner and mode belong to the root and the
     * topics (a partition shows its topic's).  Time changes (touch) are
     * accepted and ignored: times are the log's own. */
    int rc = 0;
    if (to_set & FUSE_SET_ATTR_SIZE)
        rc = -EPERM;
    else if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
        rc = change_owner(req, f, &n, attr, to_set);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct stat st;
    fill_attr(f, &n, ino, &st);
    fuse_reply_attr(req, &st, attr_ttl(&n));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct fs *f = req_fs(req);
    struct node pn = resolve(f, parent);
    if (pn.kind != N_ROOT) {
        fuse_reply_err(req, pn.kind == N_NONE ? ENOENT : EPERM);
        return;
    }
    /* The topic belongs to its creator, with mkdir's mode under the
     * creator's umask (ctx->umask is 0 when the kernel applied it). */
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct mk_owner own = {.uid = ctx->uid, .gid = ctx->gid, .mode = mode & 07777 & ~ctx->umask};
    struct topic *t;
    int rc = topic_create(f->b, name, &own, &t);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct node n = {.kind = N_TOPIC, .t = t};
    reply_entry(req, f, &n, topic_ino(t));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *f = req_fs(req);
    struct node pn = resolve(f, parent);
    int rc;
    if (pn.kind == N_ROOT)
        rc = !strcmp(name, ".cluster") ? -ENOTDIR : topic_delete(f->b, name);
    else
        rc = pn.kind == N_NONE ? -ENOENT : -ENOTDIR;
    fuse_reply_err(req, -rc);
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

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
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
            eino = topic_ino(t);
        } else {
            snprintf(name, sizeof(name), "%zu", k - 2);
            eino = topic_ino(n.t) | (k - 1);
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

/* ------------------------------------------------------------ open/close */

static void fh_link(struct fs *f, struct fh *h)
{
    h->next = f->handles;
    if (f->handles)
        f->handles->prev = h;
    f->handles = h;
}

static void fh_free(struct fs *f, struct fh *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        f->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (h->p)
        part_unref(h->p);
    free(h->refused);
    free(h->held);
    free(h->text);
    free(h);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
    int acc = fi->flags & O_ACCMODE;
    if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (n.kind == N_ROOT || n.kind == N_TOPIC) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (n.kind == N_CLUSTER && acc != O_RDONLY) {
        fuse_reply_err(req, EACCES);
        return;
    }
    if (n.kind == N_PART && (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    struct fh *h = calloc(1, sizeof(*h));
    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (n.kind == N_CLUSTER) {
        h->status = true;
        int rc = broker_status(f->b, &h->text, &h->text_len);
        if (rc < 0) {
            free(h);
            fuse_reply_err(req, -rc);
            return;
        }
    } else {
        h->p = n.p;
        part_ref(h->p);
    }
    h->fs = f;
    fh_link(f, h);
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fi->keep_cache = 0;
    if (fuse_reply_open(req, fi) == -ENOENT)
        fh_free(f, h); /* the opener was interrupted */
}

static struct fh *fh_of(struct fuse_file_info *fi)
{
    return (struct fh *)(uintptr_t)fi->fh;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)ino;
    struct fh *h = fh_of(fi);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (h->status) {
        size_t o = (size_t)off < h->text_len ? (size_t)off : h->text_len;
        size_t n = h->text_len - o < size ? h->text_len - o : size;
        fuse_reply_buf(req, h->text + o, n);
        return;
    }
    /* Retention: a read below the first retained position is served from
     * that position (the oldest record kept), as a Kafka consumer resets to
     * the earliest offset; the handle remembers where such a read ended, so
     * that reading on from there continues the retained bytes.  Any other
     * position means what it always meant. */
    uint64_t pos = (uint64_t)off;
    struct part_info pi;
    part_info(h->p, &pi);
    if (h->redirected && pos == h->rd_virt)
        pos = h->rd_real;
    if (pos < pi.first_pos)
        pos = pi.first_pos;
    int fd;
    uint64_t fdoff;
    size_t n;
    int rc = part_read(h->p, pos, size, &fd, &fdoff, &n);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    h->redirected = pos != (uint64_t)off;
    h->rd_virt = (uint64_t)off + n;
    h->rd_real = pos + n;
    if (n == 0) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(n);
    bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    bv.buf[0].fd = fd;
    bv.buf[0].pos = (off_t)fdoff;
    fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* ------------------------------------------------------------ writes */

static void fh_next(struct fs *f, struct fh *h);
static void on_kick(uv_idle_t *k);

static void wreq_free(struct wreq *w)
{
    if (w->owned)
        free(w->data);
    free(w->tail);
    frame_free(&w->fr);
    free(w);
}

/* The request in flight on h finished with status. */
static void w_done(void *arg, int status)
{
    struct wreq *w = arg;
    struct fh *h = w->fh;
    struct fs *f = h->fs; /* not w->req: an early reply has freed it */
    switch (w->op) {
    case W_WRITE:
        if (status == 0) {
            free(h->held);
            h->held = w->tail;
            h->held_len = w->tail_len;
            w->tail = NULL;
            fuse_reply_write(w->req, w->len);
        } else {
            fuse_reply_err(w->req, -status);
        }
        break;
    case W_FLUSH:
        if (status == 0) {
            free(h->held);
            h->held = NULL;
            h->held_len = 0;
        }
        fuse_reply_err(w->req, -status);
        break;
    case W_FSYNC:
        fuse_reply_err(w->req, -status);
        break;
    }
    wreq_free(w);
    h->busy = false;
    f->inflight--;
    fh_next(f, h);
    /* Just answered a writer: its next request is due in microseconds.
     * Poll for it on the next loop turn, outside this completion chain. */
    if (f->inflight == 0 && f->polling && !f->serving)
        uv_idle_start(&f->kick, on_kick);
}

/* The refused-write memory of h (see w_start). */
static void forget_refused(struct fh *h)
{
    free(h->refused);
    h->refused = NULL;
    h->refused_len = 0;
}

static void remember_refused(struct fh *h, const struct wreq *w)
{
    size_t n = w->len < REFUSED_KEEP ? w->len : REFUSED_KEEP;
    char *copy = malloc(n);
    forget_refused(h);
    if (!copy)
        return;
    memcpy(copy, w->data, n);
    h->refused = copy;
    h->refused_len = n;
}

/* Whether w begins with the bytes of the last refused write: a writer
 * sending the refused bytes again. */
static bool is_retry(const struct fh *h, const struct wreq *w)
{
    return h->refused && w->len >= h->refused_len && !memcmp(w->data, h->refused, h->refused_len);
}

/* Starts w on h (h not busy).  Answers at once or when committed. */
static void w_start(struct fs *f, struct fh *h, struct wreq *w)
{
    const struct mk_config *c = broker_config(f->b);
    int rc = 0;
    h->busy = true;
    f->inflight++;
    if (part_deleted(h->p)) {
        rc = -ESTALE;
        goto fail;
    }
    if (w->op == W_FSYNC) {
        rc = part_sync(h->p, w_done, w);
        if (rc < 0)
            goto fail;
        return;
    }
    if (w->op == W_FLUSH) {
        if (h->held_len == 0) {
            w_done(w, 0);
            return;
        }
        static const char nl = '\n';
        struct iovec iov[2] = {{h->held, h->held_len}, {(void *)&nl, 1}};
        uint32_t len = (uint32_t)h->held_len + 1;
        rc = part_append(h->p, iov, 2, &len, 1, w_done, w);
        if (rc < 0)
            goto fail;
        return;
    }
    if (w->len == 0) {
        w_done(w, 0);
        return;
    }
    /* Nothing of an over-long record is ever stored.  Its held start goes;
     * so does its rest while it continues in later writes (discard); and a
     * retry of a refused write is refused again: the kernel cuts a write()
     * over 1 MiB into pieces, so refusing a later piece shows the writer a
     * short write, and writers (cat, dd, stdio, Python) then send the rest
     * again, some once more at close. */
    if (h->discard || is_retry(h, w)) {
        if (h->discard && memchr(w->data, '\n', w->len))
            h->discard = false; /* the over-long record ends here */
        rc = -EMSGSIZE;
        goto refused;
    }
    rc = frame_split(h->held_len, w->data, w->len, c->message_max_bytes, &w->fr);
    if (rc == -EMSGSIZE) {
        h->held_len = 0;
        h->discard = w->fr.continues;
        goto refused;
    }
    if (rc < 0)
        goto fail;
    forget_refused(h);
    if (w->fr.nrec == 0) {
        /* Only a partial line: hold it, nothing to commit. */
        char *nh = realloc(h->held, h->held_len + w->len);
        if (!nh) {
            rc = -ENOMEM;
            goto fail;
        }
        memcpy(nh + h->held_len, w->data, w->len);
        w->tail = nh;
        w->tail_len = h->held_len + w->len;
        h->held = NULL; /* ownership moves to w->tail, back in w_done */
        w_done(w, 0);
        return;
    }
    w->tail_len = w->len - w->fr.complete;
    if (w->tail_len) {
        w->tail = malloc(w->tail_len);
        if (!w->tail) {
            rc = -ENOMEM;
            goto fail;
        }
        memcpy(w->tail, w->data + w->fr.complete, w->tail_len);
    }
    struct iovec iov[2] = {{h->held, h->held_len}, {w->data, w->fr.complete}};
    rc = part_append(h->p, iov, 2, w->fr.lens, w->fr.nrec, w_done, w);
    if (rc < 0)
        goto fail;
    return;
refused:
    remember_refused(h, w);
fail:
    w_done(w, rc);
}

static void fh_next(struct fs *f, struct fh *h)
{
    if (h->busy)
        return;
    if (h->q_head) {
        struct wreq *w = h->q_head;
        h->q_head = w->next;
        if (!h->q_head)
            h->q_tail = NULL;
        w_start(f, h, w);
    } else if (h->released) {
        fh_free(f, h);
    }
}

static void submit(fuse_req_t req, struct fuse_file_info *fi, enum wop op, const char *data,
                   size_t len)
{
    struct fs *f = req_fs(req);
    struct fh *h = fh_of(fi);
    if (h->status) {
        fuse_reply_err(req, op == W_WRITE ? EBADF : 0);
        return;
    }
    struct wreq *w = calloc(1, sizeof(*w));
    if (!w) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    w->op = op;
    w->req = req;
    w->fh = h;
    w->data = (char *)data;
    w->len = len;
    if (!h->busy) {
        w_start(f, h, w); /* the request buffer lives until we return */
        return;
    }
    if (len) {
        /* Must wait: copy what we borrowed from the receive buffer. */
        w->data = malloc(len);
        if (!w->data) {
            free(w);
            fuse_reply_err(req, ENOMEM);
            return;
        }
        memcpy(w->data, data, len);
        w->owned = true;
    }
    if (h->q_tail)
        h->q_tail->next = w;
    else
        h->q_head = w;
    h->q_tail = w;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino;
    (void)off; /* every write appends */
    submit(req, fi, W_WRITE, buf, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    submit(req, fi, W_FLUSH, NULL, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    submit(req, fi, W_FSYNC, NULL, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct fs *f = req_fs(req);
    struct fh *h = fh_of(fi);
    if (h->busy || h->q_head)
        h->released = true; /* freed when its last request is answered */
    else
        fh_free(f, h);
    fuse_reply_err(req, 0);
}

/* ------------------------------------------------------------ xattrs */

static const char *const part_attrs[] = {"user.offset.first",   "user.offset.next",
                                         "user.position.first", "user.leader",
                                         "user.replicas",       "user.term"};
#define NPART_ATTRS (sizeof(part_attrs) / sizeof(part_attrs[0]))

static int part_attr(const struct part *p, const char *name, char *buf, size_t n)
{
    struct part_info pi;
    part_info(p, &pi);
    uint64_t v;
    if (!strcmp(name, "user.offset.first"))
        v = pi.first_off;
    else if (!strcmp(name, "user.offset.next"))
        v = pi.next_off;
    else if (!strcmp(name, "user.position.first"))
        v = pi.first_pos;
    else if (!strcmp(name, "user.leader") || !strcmp(name, "user.replicas"))
        v = pi.leader;
    else if (!strcmp(name, "user.term"))
        v = pi.term;
    else
        return -ENODATA;
    snprintf(buf, n, "%" PRIu64, v);
    return 0;
}

static void reply_value(fuse_req_t req, const char *val, size_t size)
{
    size_t len = strlen(val);
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, val, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
    char val[64];
    int rc = -ENODATA;
    if (n.kind == N_PART)
        rc = part_attr(n.p, name, val, sizeof(val));
    else if (n.kind == N_TOPIC && !strncmp(name, "user.", 5))
        rc = topic_get(f->b, n.t, name + 5, val, sizeof(val));
    else if (n.kind == N_NONE)
        rc = -ENOENT;
    if (rc == -ENOENT && n.kind != N_NONE)
        rc = -ENODATA;
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        reply_value(req, val, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
    char buf[512];
    size_t len = 0;
    if (n.kind == N_PART) {
        for (size_t i = 0; i < NPART_ATTRS; i++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s", part_attrs[i]) + 1;
    } else if (n.kind == N_TOPIC) {
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "user.partitions") + 1;
        for (int i = 0; i < TOPIC_NCONF; i++)
            len +=
                (size_t)snprintf(buf + len, sizeof(buf) - len, "user.%s", topic_config_names[i]) +
                1;
    } else if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, buf, len);
}

/* Why an attribute that is not a topic setting cannot be set or removed:
 * the node is gone, the attribute is a read-only partition one, or it does
 * not exist (`unknown`: ENOTSUP for set, ENODATA for remove). */
static int change_refused(const struct node *n, const char *name, int unknown)
{
    char tmp[64];
    if (n->kind == N_NONE)
        return -ENOENT;
    if (n->kind == N_PART && part_attr(n->p, name, tmp, sizeof(tmp)) == 0)
        return -EPERM;
    return unknown;
}

/* Topic settings always exist (they read back their effective value):
 * XATTR_CREATE of one is EEXIST.  Other names cannot be created (ENOTSUP),
 * and XATTR_REPLACE of a missing one is ENODATA, as on Linux file systems. */
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
    char val[64];
    int rc;
    if (n.kind != N_TOPIC || strncmp(name, "user.", 5) != 0 ||
        topic_get(f->b, n.t, name + 5, val, sizeof(val)) < 0) {
        rc = change_refused(&n, name, flags & XATTR_REPLACE ? -ENODATA : -ENOTSUP);
    } else if (flags & XATTR_CREATE) {
        rc = -EEXIST;
    } else if (size >= sizeof(val)) {
        rc = -EINVAL;
    } else {
        memcpy(val, value, size);
        val[size] = '\0';
        if (size && val[size - 1] == '\n') /* setfattr -v "$(echo 5)" style */
            val[size - 1] = '\0';
        rc = topic_set(f->b, n.t, name + 5, val);
    }
    fuse_reply_err(req, -rc);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct fs *f = req_fs(req);
    struct node n = resolve(f, ino);
    int rc;
    if (n.kind != N_TOPIC || strncmp(name, "user.", 5) != 0) {
        rc = change_refused(&n, name, -ENODATA);
    } else {
        rc = topic_unset(f->b, n.t, name + 5);
        if (rc == -ENOENT)
            rc = -ENODATA;
    }
    fuse_reply_err(req, -rc);
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
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .fsync = op_fsync,
    .release = op_release,
    .readdir = op_readdir,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .statfs = op_statfs,
    .fallocate = op_fallocate,
};

/* ------------------------------------------------------------ the loop */

static void fs_exit(struct fs *f)
{
    if (f->exited)
        return;
    f->exited = true;
    if (f->polling) {
        uv_poll_stop(&f->poll);
        f->polling = false;
    }
    if (f->on_exit)
        f->on_exit(f->exit_arg);
}

/* How long the loop keeps polling /dev/fuse after serving a request before
 * it sleeps in epoll again.  A writer's next request usually follows its
 * reply within microseconds; finding the loop awake saves waking an idle CPU,
 * which costs tens of microseconds per request on virtual machines.  No
 * polling while a write waits for its fdatasync: the disk's journal thread
 * needs the CPU then, and the writer cannot send anything new before its
 * reply anyway. */
static uint64_t busy_poll_ns = 50000;

/* Reads and handles requests: a bounded batch, so that timers and thread-pool
 * completions (the replies of durable writes) keep their turn. */
static void serve(struct fs *f)
{
    uint64_t start = uv_hrtime(), idle_since = 0;
    f->serving = true;
    for (int served = 0; served < 256;) {
        int rc = fuse_session_receive_buf(f->se, &f->buf);
        if (rc == -EAGAIN) {
            uint64_t now = uv_hrtime();
            if (!idle_since)
                idle_since = now;
            if (f->inflight > 0 || now - idle_since >= busy_poll_ns || now - start >= 1000000)
                break;
            continue;
        }
        if (rc == -EINTR)
            continue;
        if (rc <= 0 || fuse_session_exited(f->se)) {
            if (rc < 0 && rc != -ENODEV)
                mk_log(MK_WARN, "reading /dev/fuse: %s", strerror(-rc));
            f->serving = false;
            fs_exit(f);
            return;
        }
        fuse_session_process_buf(f->se, &f->buf);
        served++;
        idle_since = 0;
    }
    f->serving = false;
}

static void on_kick(uv_idle_t *k)
{
    struct fs *f = k->data;
    uv_idle_stop(k);
    if (f->polling)
        serve(f);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct fs *f = h->data;
    if (status < 0) {
        fs_exit(f);
        return;
    }
    serve(f);
}

struct fs *fs_new(void)
{
    return calloc(1, sizeof(struct fs));
}

int fs_start(struct fs *f, struct broker *b, struct fuse_session *se, uv_loop_t *loop,
             void (*on_exit)(void *), void *arg)
{
    int fd = fuse_session_fd(se);
    f->b = b;
    f->se = se;
    f->on_exit = on_exit;
    f->exit_arg = arg;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int rc = uv_poll_init(loop, &f->poll, fd);
    if (rc < 0)
        return rc;
    f->poll.data = f;
    uv_idle_init(loop, &f->kick);
    f->kick.data = f;
    rc = uv_poll_start(&f->poll, UV_READABLE, on_readable);
    if (rc < 0)
        return rc;
    f->polling = true;
    return 0;
}

static void ignore_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

void fs_stop(struct fs *f)
{
    fs_exit(f);
    if (!uv_is_closing((uv_handle_t *)&f->poll) && f->se) {
        uv_close((uv_handle_t *)&f->poll, NULL);
        uv_close((uv_handle_t *)&f->kick, NULL);
    }
    /* Held partial lines: commit them, as their close() would have. */
    for (struct fh *h = f->handles; h; h = h->next) {
        if (h->p && h->held_len && !h->busy && !part_deleted(h->p)) {
            static const char nl = '\n';
            struct iovec iov[2] = {{h->held, h->held_len}, {(void *)&nl, 1}};
            uint32_t len = (uint32_t)h->held_len + 1;
            if (part_append(h->p, iov, 2, &len, 1, ignore_done, NULL) == 0)
                h->held_len = 0;
        }
    }
}

void fs_free(struct fs *f)
{
    while (f->handles) {
        struct fh *h = f->handles;
        while (h->q_head) {
            struct wreq *w = h->q_head;
            h->q_head = w->next;
            wreq_free(w);
        }
        fh_free(f, h);
    }
    free(f->buf.mem);
    free(f);
}
