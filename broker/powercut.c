/*
 * powercut — see powercut.h.
 */
#include "broker/powercut.h"
#include "broker/log.h"
#include "broker/sysio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pfile {
    dev_t dev;
    ino_t ino;
    char *path;  /* where it was last seen */
    bool synced; /* durable at least as far as `durable` (found, or fsynced) */
    off_t durable;
};

static struct pfile *files;
static size_t nfiles, cap;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t cut_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct sysio real;

static struct pfile *find(dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < nfiles; i++)
        if (files[i].dev == dev && files[i].ino == ino)
            return &files[i];
    return NULL;
}

/* Called with mu held. */
static struct pfile *add(dev_t dev, ino_t ino, const char *path)
{
    if (nfiles == cap) {
        size_t nc = cap ? 2 * cap : 256;
        struct pfile *nf = realloc(files, nc * sizeof(*nf));
        if (!nf)
            abort(); /* a test hook: no way to go on with a wrong model */
        files = nf;
        cap = nc;
    }
    struct pfile *f = &files[nfiles++];
    *f = (struct pfile){.dev = dev, .ino = ino, .path = strdup(path)};
    return f;
}

static int w_open(const char *path, int flags, mode_t mode)
{
    pthread_rwlock_rdlock(&cut_lock);
    struct stat before;
    bool existed = stat(path, &before) == 0;
    int fd = real.open(path, flags, mode);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        pthread_mutex_lock(&mu);
        struct pfile *f = find(st.st_dev, st.st_ino);
        if (!f) {
            f = add(st.st_dev, st.st_ino, path);
            /* Found on the disk: durable as it is (O_TRUNC made it empty). */
            f->synced = existed;
            f->durable = existed ? st.st_size : 0;
        } else if (strcmp(f->path, path) != 0) {
            free(f->path);
            f->path = strdup(path);
        }
        if (flags & O_TRUNC)
            f->durable = 0;
        pthread_mutex_unlock(&mu);
    }
    pthread_rwlock_unlock(&cut_lock);
    return fd;
}

static ssize_t w_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    pthread_rwlock_rdlock(&cut_lock);
    ssize_t r = real.pwritev(fd, iov, cnt, off);
    pthread_rwlock_unlock(&cut_lock);
    return r;
}

static int sync_common(int fd, int (*call)(int))
{
    pthread_rwlock_rdlock(&cut_lock);
    struct stat st;
    bool known = fstat(fd, &st) == 0;
    int r = call(fd);
    if (r == 0 && known) {
        pthread_mutex_lock(&mu);
        struct pfile *f = find(st.st_dev, st.st_ino);
        if (f) {
            struct stat now;
            /* What it held when the call began, unless cut meanwhile. */
            off_t d = st.st_size;
            if (fstat(fd, &now) == 0 && now.st_size < d)
                d = now.st_size;
            f->durable = d;
            f->synced = true;
        }
        pthread_mutex_unlock(&mu);
    }
    pthread_rwlock_unlock(&cut_lock);
    return r;
}

static int w_fdatasync(int fd)
{
    return sync_common(fd, real.fdatasync);
}

static int w_fsync(int fd)
{
    return sync_common(fd, real.fsync);
}

static int w_ftruncate(int fd, off_t len)
{
    pthread_rwlock_rdlock(&cut_lock);
    int r = real.ftruncate(fd, len);
    struct stat st;
    if (r == 0 && fstat(fd, &st) == 0) {
        pthread_mutex_lock(&mu);
        struct pfile *f = find(st.st_dev, st.st_ino);
        if (f && f->durable > len)
            f->durable = len;
        pthread_mutex_unlock(&mu);
    }
    pthread_rwlock_unlock(&cut_lock);
    return r;
}

static int w_rename(const char *from, const char *to)
{
    pthread_rwlock_rdlock(&cut_lock);
    struct stat st, old;
    bool known = stat(from, &st) == 0;
    bool replaced = stat(to, &old) == 0;
    int r = real.rename(from, to);
    if (r == 0) {
        pthread_mutex_lock(&mu);
        struct pfile *f;
        if (replaced && (f = find(old.st_dev, old.st_ino)) && !(known && f->ino == st.st_ino)) {
            free(f->path);
            *f = files[--nfiles]; /* the replaced file is gone */
        }
        if (known && (f = find(st.st_dev, st.st_ino))) {
            free(f->path);
            f->path = strdup(to);
        }
        pthread_mutex_unlock(&mu);
    }
    pthread_rwlock_unlock(&cut_lock);
    return r;
}

static int w_unlink(const char *path)
{
    pthread_rwlock_rdlock(&cut_lock);
    struct stat st;
    bool known = stat(path, &st) == 0;
    int r = real.unlink(path);
    if (r == 0 && known) {
        pthread_mutex_lock(&mu);
        struct pfile *f = find(st.st_dev, st.st_ino);
        if (f) {
            free(f->path);
            *f = files[--nfiles];
        }
        pthread_mutex_unlock(&mu);
    }
    pthread_rwlock_unlock(&cut_lock);
    return r;
}

bool powercut_wrap(void)
{
    const char *v = getenv("MINIKAFKA_POWERCUT");
    if (!v || strcmp(v, "1") != 0)
        return false;
    real = sysio;
    sysio.open = w_open;
    sysio.pwritev = w_pwritev;
    sysio.fdatasync = w_fdatasync;
    sysio.fsync = w_fsync;
    sysio.ftruncate = w_ftruncate;
    sysio.rename = w_rename;
    sysio.unlink = w_unlink;
    return true;
}

static void on_cut(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    /* No wrapped call half done, none starts again: the machine is off. */
    pthread_rwlock_wrlock(&cut_lock);
    pthread_mutex_lock(&mu);
    size_t cut = 0, removed = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct pfile *f = &files[i];
        struct stat st;
        if (stat(f->path, &st) != 0 || st.st_ino != f->ino || st.st_dev != f->dev)
            continue;
        if (!f->synced) {
            unlink(f->path);
            removed++;
        } else if (st.st_size > f->durable) {
            if (truncate(f->path, f->durable) == 0)
                cut++;
        }
    }
    mk_log(MK_WARN, "MINIKAFKA_POWERCUT: power cut: %zu files cut to what was synced, %zu never synced removed",
           cut, removed);
    _exit(137);
}

int powercut_listen(uv_loop_t *loop, uv_signal_t *sig)
{
    int rc = uv_signal_init(loop, sig);
    if (rc == 0)
        rc = uv_signal_start(sig, on_cut, SIGUSR2);
    if (rc == 0)
        uv_unref((uv_handle_t *)sig);
    return rc;
}
