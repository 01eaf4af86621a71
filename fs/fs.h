/*
 * fs — the FUSE low-level adapter: turns kernel requests into broker calls.
 *
 * The /dev/fuse descriptor is driven from the broker's libuv loop (a uv_poll
 * on it, non-blocking reads), so every request is handled on the one thread
 * that owns the state, and replies go out whenever their work is done: a
 * write is answered when its records are committed, a read at once.
 */
#ifndef MK_FS_H
#define MK_FS_H

#include "broker/broker.h"

#include <fuse_lowlevel.h>
#include <uv.h>

struct fs;

/* The operation table, for fuse_session_new(); the userdata must be the
 * struct fs returned by fs_new(). */
extern const struct fuse_lowlevel_ops fs_ops;

/* A file system, not serving yet (so that fuse_session_new can check the
 * FUSE options before the broker is opened). */
struct fs *fs_new(void);

/* Starts serving session se (already mounted) over broker b (not owned) on
 * loop.  on_exit is called once when the kernel side goes away (unmounted)
 * or fs_stop was called. */
int fs_start(struct fs *f, struct broker *b, struct fuse_session *se, uv_loop_t *loop,
             void (*on_exit)(void *), void *arg);

/* Stops reading requests and commits every held partial line (as close()
 * would), so that nothing a writer wrote is lost at shutdown. */
void fs_stop(struct fs *f);

void fs_free(struct fs *f);

#endif
