/*
 * handle — open files: what an open partition or .cluster file holds, the
 * order of its requests, reads and framed writes.
 *
 * READS
 *   Partition files are opened with direct_io: every read and write reaches
 *   us with its exact offset and size.  The kernel page cache would otherwise
 *   read whole pages, including bytes below the first retained position or
 *   bytes a writer's page cache copy holds but that are not committed.  A
 *   read below the first retained position is served from it (retention,
 *   see handle_read); .cluster is a snapshot taken at open.
 *
 * WRITES
 *   Requests of one open file are handled in order (a queue per handle): the
 *   handle's held partial line is part of its state.  A write is framed into
 *   records (framing.c); complete records go to part_append together with the
 *   held bytes, and the write is answered when they are committed.  The new
 *   partial line replaces the held one only if the append succeeded, so a
 *   failed write changes nothing.
 */
#include "fs/framing.h"
#include "fs/internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define REFUSED_KEEP 4096
#define READ_PIECES  64 /* segments one read may span */

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

/* What an open file is: a partition, or a snapshot of .cluster taken at
 * open. */
enum fh_kind { FH_PART, FH_STATUS };

/* Where an open file is in its life; changed only by fh_set():
 *   FH_IDLE     no request in flight, none queued
 *   FH_BUSY     one request in flight (write, flush or fsync), more may be
 *               queued behind it: they run in order
 *   FH_CLOSING  RELEASE came while busy: the queue drains, then it is freed
 * Edges: IDLE -> BUSY (a request starts), BUSY -> IDLE (answered, none
 * queued), BUSY -> CLOSING (released).  An IDLE file is freed at RELEASE. */
enum fh_state { FH_IDLE, FH_BUSY, FH_CLOSING };

struct fh {
    struct fs *fs;
    enum fh_kind kind;
    enum fh_state state;
    struct part *p; /* FH_PART */
    char *held;     /* partial line, not yet a record */
    size_t held_len;
    char *text; /* .cluster content */
    size_t text_len;
    struct wreq *q_head, *q_tail; /* waiting, in order */
    bool discard;                 /* refusing the rest of an over-long record */
    char *refused;                /* start of the last write refused with EMSGSIZE */
    size_t refused_len;           /* (at most REFUSED_KEEP bytes), to know its retries */
    bool redirected;              /* the last read was served from the retained start: */
    uint64_t rd_virt, rd_real;    /* where it ended, in this handle's and the file's numbering */
    struct fh *prev, *next;       /* all open handles */
};

static void fh_set(struct fh *h, enum fh_state to)
{
    enum fh_state from = h->state;
    assert((from == FH_IDLE && to == FH_BUSY) ||
           (from == FH_BUSY && (to == FH_IDLE || to == FH_CLOSING)));
    (void)from;
    h->state = to;
}

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

static void open_reply(fuse_req_t req, struct fs *f, struct fh *h, struct fuse_file_info *fi)
{
    if (fuse_reply_open(req, fi) == -ENOENT)
        fh_free(f, h); /* the opener was interrupted */
}

struct open_ctx {
    fuse_req_t req;
    struct fs *f;
    struct fh *h;
    struct fuse_file_info fi;
};

static void open_synced(void *arg, int status)
{
    (void)status; /* without a leader: what this node has */
    struct open_ctx *o = arg;
    open_reply(o->req, o->f, o->h, &o->fi);
    free(o);
}

void handle_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *f = req_fs(req);
    struct node n = node_resolve(f, ino);
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
        h->kind = FH_STATUS;
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
    struct open_ctx *o;
    if (h->kind == FH_STATUS || !broker_config(f->b)->npeers || !(o = malloc(sizeof(*o)))) {
        open_reply(req, f, h, fi);
        return;
    }
    /* In a cluster, an open shows at least what the partition's leader had
     * committed (ReadIndex): a record written on one node is there when
     * `cat` on another opens the file afterwards. */
    *o = (struct open_ctx){.req = req, .f = f, .h = h, .fi = *fi};
    broker_sync(f->b, h->p, open_synced, o);
}

static struct fh *fh_of(struct fuse_file_info *fi)
{
    return (struct fh *)(uintptr_t)fi->fh;
}

/* A read on a node without a replica: from the leader, asynchronously. */
struct rread {
    fuse_req_t req;
    struct fh *h;
    uint64_t off, pos;
    size_t size;
    bool again; /* once redirected to the log start */
};

static void rread_done(void *arg, int status, const void *data, size_t n, uint64_t end)
{
    struct rread *r = arg;
    struct fh *h = r->h;
    if (status == -ENODATA && !r->again && end > r->pos) {
        /* Below the first retained position: from there (see below). */
        r->again = true;
        r->pos = end;
        if (part_read_remote(h->p, r->pos, r->size, rread_done, r) == 0)
            return;
        status = -EIO;
    }
    if (status < 0) {
        fuse_reply_err(r->req, -status);
    } else {
        h->redirected = r->pos != r->off;
        h->rd_virt = r->off + n;
        h->rd_real = r->pos + n;
        fuse_reply_buf(r->req, data, n);
    }
    free(r);
}

static void read_remote(fuse_req_t req, struct fh *h, uint64_t off, uint64_t pos, size_t size)
{
    struct rread *r = malloc(sizeof(*r));
    if (!r) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    *r = (struct rread){.req = req, .h = h, .off = off, .pos = pos, .size = size};
    int rc = part_read_remote(h->p, pos, size, rread_done, r);
    if (rc < 0) {
        free(r);
        fuse_reply_err(req, -rc);
    }
}

void handle_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct fh *h = fh_of(fi);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (h->kind == FH_STATUS) {
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
    /* A read is filled across segment ends (a short read would make tools
     * such as tail, which trust a full read of a regular file, misjudge
     * the file): one piece per segment, spliced from the segment files. */
    struct fs *f = h->fs;
    if (!f->read_bv &&
        !(f->read_bv = malloc(sizeof(*f->read_bv) + (READ_PIECES - 1) * sizeof(struct fuse_buf)))) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* One vector for every read: each is answered before the next. */
    struct fuse_bufvec *bv = f->read_bv;
    memset(bv, 0, sizeof(*bv));
    size_t total = 0;
    int k = 0;
    while (total < size && k < READ_PIECES) {
        int fd;
        uint64_t fdoff;
        size_t n;
        int rc = part_read(h->p, pos + total, size - total, &fd, &fdoff, &n);
        /* No replica here, or a damaged one (being repaired): the leader
         * serves it. */
        if ((rc == -EREMOTE || (rc == -EIO && part_read_elsewhere(h->p))) && k == 0) {
            read_remote(req, h, (uint64_t)off, pos, size);
            return;
        }
        if (rc < 0 && k == 0) {
            fuse_reply_err(req, -rc);
            return;
        }
        if (rc < 0 || n == 0)
            break;
        struct fuse_buf *b = &bv->buf[k++];
        memset(b, 0, sizeof(*b));
        b->size = n;
        b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        b->fd = fd;
        b->pos = (off_t)fdoff;
        total += n;
    }
    h->redirected = pos != (uint64_t)off;
    h->rd_virt = (uint64_t)off + total;
    h->rd_real = pos + total;
    if (total == 0)
        fuse_reply_buf(req, NULL, 0);
    else {
        bv->count = (size_t)k;
        fuse_reply_data(req, bv, FUSE_BUF_SPLICE_MOVE);
    }
}

/* ------------------------------------------------------------ writes */

static void fh_next(struct fs *f, struct fh *h);
static void commit_held(struct fh *h);

static void wreq_free(struct wreq *w)
{
    if (w->owned)
        free(w->data);
    free(w->tail);
    frame_free(&w->fr);
    free(w);
}

static void forget_refused(struct fh *h);

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
        /* A close ends every record, an over-long one too: the next writer
         * on this open file starts afresh (retries at close came before). */
        h->discard = false;
        forget_refused(h);
        fuse_reply_err(w->req, -status);
        break;
    case W_FSYNC:
        fuse_reply_err(w->req, -status);
        break;
    }
    wreq_free(w);
    f->inflight--;
    fh_next(f, h);
    session_replied(f);
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

/* Starts w on h: h is idle, or its previous request was just answered.
 * Answers at once or when committed. */
static void w_start(struct fs *f, struct fh *h, struct wreq *w)
{
    const struct mk_config *c = broker_config(f->b);
    int rc = 0;
    if (h->state == FH_IDLE)
        fh_set(h, FH_BUSY);
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
        if (w->fr.uses_held) /* else the held start belongs to a valid record */
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

/* h's request in flight was answered: start the next queued one, or go
 * idle, or, once released, free h. */
static void fh_next(struct fs *f, struct fh *h)
{
    if (h->q_head) {
        struct wreq *w = h->q_head;
        h->q_head = w->next;
        if (!h->q_head)
            h->q_tail = NULL;
        w_start(f, h, w);
    } else if (h->state == FH_CLOSING) {
        fh_free(f, h);
    } else {
        fh_set(h, FH_IDLE);
        if (f->exited) /* shutting down: no close will come for it */
            commit_held(h);
    }
}

static void submit(fuse_req_t req, struct fuse_file_info *fi, enum wop op, const char *data,
                   size_t len)
{
    struct fs *f = req_fs(req);
    struct fh *h = fh_of(fi);
    if (h->kind == FH_STATUS) {
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
    if (h->state == FH_IDLE) {
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

void handle_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi)
{
    (void)ino;
    (void)off; /* every write appends */
    submit(req, fi, W_WRITE, buf, size);
}

void handle_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    submit(req, fi, W_FLUSH, NULL, 0);
}

void handle_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    submit(req, fi, W_FSYNC, NULL, 0);
}

void handle_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct fs *f = req_fs(req);
    struct fh *h = fh_of(fi);
    if (h->state == FH_IDLE)
        fh_free(f, h);
    else
        fh_set(h, FH_CLOSING); /* freed when its last request is answered */
    fuse_reply_err(req, 0);
}

static void ignore_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

/* Commits h's held partial line as a record, as its close would. */
static void commit_held(struct fh *h)
{
    if (h->p && h->held_len && h->state == FH_IDLE && !part_deleted(h->p)) {
        static const char nl = '\n';
        struct iovec iov[2] = {{h->held, h->held_len}, {(void *)&nl, 1}};
        uint32_t len = (uint32_t)h->held_len + 1;
        if (part_append(h->p, iov, 2, &len, 1, ignore_done, NULL) == 0)
            h->held_len = 0;
    }
}

void handle_commit_held(struct fs *f)
{
    /* Busy ones commit theirs when their request is answered (fh_next). */
    for (struct fh *h = f->handles; h; h = h->next)
        commit_held(h);
}

void handle_free_all(struct fs *f)
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
}
