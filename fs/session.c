/*
 * session — the /dev/fuse session on the broker's loop: a uv_poll on the
 * non-blocking descriptor, bounded batches of requests, and a short busy
 * poll after each reply (see busy_poll_ns).
 */
#include "fs/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

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

void session_replied(struct fs *f)
{
    /* Poll for the writer's next request on the next loop turn, outside
     * this completion chain. */
    if (f->inflight == 0 && f->polling && !f->serving)
        uv_idle_start(&f->kick, on_kick);
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

void fs_stop(struct fs *f)
{
    fs_exit(f);
    if (!uv_is_closing((uv_handle_t *)&f->poll) && f->se) {
        uv_close((uv_handle_t *)&f->poll, NULL);
        uv_close((uv_handle_t *)&f->kick, NULL);
    }
    /* Held partial lines: commit them, as their close() would have. */
    handle_commit_held(f);
}

void fs_free(struct fs *f)
{
    handle_free_all(f);
    free(f->buf.mem);
    free(f->read_bv);
    free(f);
}
