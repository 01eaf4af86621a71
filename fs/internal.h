/*
 * internal — what the parts of fs/ share; nothing outside fs/ includes it.
 *
 *   fs.c       the operation table, the namespace (lookup, mkdir, rmdir,
 *              readdir) and the refused operations
 *   node.c     inode numbers, the tree node of an inode, its attributes
 *   handle.c   open files: the open-file state machine, reads, the write
 *              queue and line framing of writes
 *   xattr.c    extended attributes (topic settings, partition offsets)
 *   session.c  the /dev/fuse session on the loop: fs_new/start/stop/free
 *
 * THE TREE AND ITS INODE NUMBERS
 *   1                     the mount root: one directory per topic, .cluster
 *   2                     .cluster, read-only status text
 *   ID << 24              topic directory (ID: the topic's id, never reused)
 *   ID << 24 | (P + 1)    partition P of that topic
 *   Inode numbers follow from the topic registry, so lookup counts need no
 *   table; an inode of a deleted topic simply stops resolving (ENOENT), and
 *   open files on it answer ESTALE.
 */
#ifndef MK_FS_INTERNAL_H
#define MK_FS_INTERNAL_H

#include "fs/fs.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define INO_CLUSTER  2
#define INO_SHIFT    24
#define INO_SUB_MASK ((1ull << INO_SHIFT) - 1)
#define NAME_TTL     1.0
#define MAX_WRITE    (1u << 20)

struct fh;

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
    struct fuse_bufvec *read_bv; /* reused by every read (handle.c) */
};

static inline struct fs *req_fs(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ------------------------------------------------------------ node.c */

enum node_kind { N_NONE, N_ROOT, N_CLUSTER, N_TOPIC, N_PART };
struct node {
    enum node_kind kind;
    struct topic *t;
    struct part *p;
};

/* The node of inode ino (kind N_NONE when it does not resolve). */
struct node node_resolve(struct fs *f, fuse_ino_t ino);
fuse_ino_t node_topic_ino(const struct topic *t);
void node_fill_attr(struct fs *f, const struct node *n, fuse_ino_t ino, struct stat *st);
/* How long the kernel may cache n's attributes, in seconds. */
double node_ttl(const struct fs *f, const struct node *n);
void node_reply_entry(fuse_req_t req, struct fs *f, const struct node *n, fuse_ino_t ino);
/* Parses a partition file name: decimal, no leading zeros; -ENOENT. */
int node_parse_part(const char *name, uint32_t *out);
/* chmod/chown/chgrp (the to_set bits of attr) of the root or a topic:
 * answered (reply_attr of ino) once the change is made. */
void node_change_owner(fuse_req_t req, struct fs *f, const struct node *n, fuse_ino_t ino,
                       const struct stat *attr, int to_set);

/* How a change of the tree is answered once the broker made it. */
enum change_reply {
    CR_ERR,   /* fuse_reply_err(0) */
    CR_ENTRY, /* the entry of topic `name` (mkdir) */
    CR_ATTR,  /* the attributes of inode ino */
};
/* Submits r (broker_change) and answers req when it is made; never blocks
 * the loop (in a cluster the answer comes once the metadata group applied
 * it here).  enoent: the errno to answer for -ENOENT found at once. */
void node_change(fuse_req_t req, struct fs *f, const struct broker_change_req *r,
                 enum change_reply how, fuse_ino_t ino, int enoent);

/* ------------------------------------------------------------ handle.c */

void handle_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void handle_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void handle_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi);
void handle_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void handle_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void handle_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* At shutdown: commits every held partial line, as its close() would. */
void handle_commit_held(struct fs *f);
/* Frees every handle and its queued requests (unanswered: the session is
 * gone). */
void handle_free_all(struct fs *f);

/* ------------------------------------------------------------ xattr.c */

void xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size);
void xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
               int flags);
void xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ------------------------------------------------------------ session.c */

/* A write, flush or fsync was just answered: the writer's next request is
 * due in microseconds, so serve once more on the next loop turn. */
void session_replied(struct fs *f);

#endif
