/*
 * main — the minikafka daemon.
 *
 *   minikafka [-f] [-o opt,...] DATA_DIR MOUNTPOINT
 *
 * LIFE OF THE PROCESS
 *   1. parse options (ours by Kafka name, the rest go to FUSE);
 *   2. open the broker: lock DATA_DIR, recover every partition's tail — any
 *      error is printed on the terminal before we fork;
 *   3. mount, then daemonize unless -f (the parent exits once mounted);
 *   4. run the loop: FUSE requests, thread-pool completions, housekeeping;
 *   5. on SIGINT/SIGTERM or unmount: stop taking requests, commit held
 *      partial lines, let every running fdatasync finish and answer its
 *      writers, flush and checkpoint every partition, unmount, exit 0.
 */
#include "broker/broker.h"
#include "fs/fs.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

static const char usage[] =
    "usage: minikafka [-f] [-o opt[,opt...]] DATA_DIR MOUNTPOINT\n"
    "\n"
    "Mounts the message log kept in DATA_DIR on MOUNTPOINT: topics are\n"
    "directories, partitions are files; append a line to produce a record,\n"
    "read the file to consume.\n"
    "\n"
    "  -f                       stay in the foreground (Ctrl-C unmounts)\n"
    "  -h, --help               this text\n"
    "  -V, --version            version\n"
    "  -o num.partitions=N      partitions of a new topic (1)\n"
    "  -o log.segment.bytes=N   roll segments at this size (1073741824)\n"
    "  -o log.segment.ms=N      roll segments at this age (604800000)\n"
    "  -o log.retention.ms=N    delete segments older than this, -1 never (604800000)\n"
    "  -o log.retention.bytes=N keep about this many bytes per partition, -1 all (-1)\n"
    "  -o message.max.bytes=N   longest record in bytes, newline excluded (1048588)\n"
    "  -o fsync=always|never    acknowledge writes once fsynced (always) or once\n"
    "                           in the page cache (never)\n"
    "  -o node.id=N             this node's id (1)\n"
    "  -o allow_other,...       any other option is passed to FUSE (see mount.fuse3(8))\n"
    "\n"
    "Stop with fusermount3 -u MOUNTPOINT, SIGTERM or Ctrl-C.\n";

enum { KEY_HELP, KEY_VERSION, KEY_FG };

struct cli {
    int foreground, help, version, bad;
    char *data, *mnt;
    struct mk_config cfg;
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
    (void)out;
    struct cli *c = data;
    switch (key) {
    case KEY_HELP:
        c->help = 1;
        return 0;
    case KEY_VERSION:
        c->version = 1;
        return 0;
    case KEY_FG:
        c->foreground = 1;
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (!c->data)
            c->data = strdup(arg);
        else if (!c->mnt)
            c->mnt = strdup(arg);
        else {
            fprintf(stderr, "minikafka: unexpected argument '%s'\n", arg);
            c->bad = 1;
            return -1;
        }
        return 0;
    case FUSE_OPT_KEY_OPT: {
        const char *eq = strchr(arg, '=');
        if (!eq)
            return 1; /* a FUSE flag such as allow_other */
        char name[128];
        size_t n = (size_t)(eq - arg);
        if (n >= sizeof(name))
            return 1;
        memcpy(name, arg, n);
        name[n] = '\0';
        const char *why = "";
        int rc = cfg_set(&c->cfg, name, eq + 1, &why);
        if (rc == -ENOENT)
            return 1;
        if (rc < 0) {
            fprintf(stderr, "minikafka: bad value '%s' for %s: want %s\n", eq + 1, name, why);
            c->bad = 1;
            return -1;
        }
        return 0;
    }
    }
    return 1;
}

static const struct fuse_opt spec[] = {
    FUSE_OPT_KEY("-h", KEY_HELP),    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION), FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-f", KEY_FG),      FUSE_OPT_END,
};

/* ---------------------------------------------------------------- running */

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct broker *b;
    struct fs *fs;
    bool stopping;
};

static void shutdown_begin(struct daemon *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = true;
    fprintf(stderr, "minikafka: %s: stopping\n", why);
    fs_stop(d->fs);
    broker_quiesce(d->b);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    /* The loop now ends by itself once the running fdatasync jobs have
     * answered their writers: nothing else keeps it alive. */
}

static void on_signal(uv_signal_t *s, int signum)
{
    shutdown_begin(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_fs_exit(void *arg)
{
    shutdown_begin(arg, "unmounted");
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct cli c = {0};
    int ret = 1;
    cfg_defaults(&c.cfg);
    if (fuse_opt_parse(&args, &c, spec, opt_proc) < 0 || c.bad) {
        fputs(usage, stderr);
        goto out_args;
    }
    if (c.help) {
        fputs(usage, stdout);
        ret = 0;
        goto out_args;
    }
    if (c.version) {
        printf("minikafka %s (libfuse %s, libuv %s)\n", MK_VERSION, fuse_pkgversion(),
               uv_version_string());
        ret = 0;
        goto out_args;
    }
    if (!c.data || !c.mnt) {
        fputs(usage, stderr);
        goto out_args;
    }
    if (mkdir(c.data, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "minikafka: cannot create %s: %s\n", c.data, strerror(errno));
        goto out_args;
    }
    char mnt[PATH_MAX];
    if (!realpath(c.mnt, mnt)) {
        fprintf(stderr, "minikafka: mount point %s: %s\n", c.mnt, strerror(errno));
        goto out_args;
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    if (!getenv("UV_THREADPOOL_SIZE"))
        setenv("UV_THREADPOOL_SIZE", "16", 1); /* one fdatasync per busy partition */

    struct daemon d = {0};
    long holder = 0;
    int64_t t0 = (int64_t)uv_hrtime();
    int rc = broker_open(&d.b, c.data, &c.cfg, &holder);
    if (rc == -EBUSY) {
        fprintf(stderr, "minikafka: %s is in use by another minikafka (pid %ld)\n", c.data, holder);
        goto out_args;
    }
    if (rc < 0) {
        fprintf(stderr, "minikafka: cannot open %s: %s\n", c.data, strerror(-rc));
        goto out_args;
    }
    struct broker_recovery r;
    broker_recovery(d.b, &r);
    if (c.foreground || r.rebuilt || r.dropped_bytes)
        fprintf(stderr,
                "minikafka: opened %s in %.3f s: %zu topics, %zu partitions, %zu segments; "
                "recovery verified %llu records, rebuilt %llu, cut %llu torn bytes\n",
                c.data, ((double)uv_hrtime() - (double)t0) / 1e9, r.topics, r.partitions,
                r.segments, (unsigned long long)r.verified, (unsigned long long)r.rebuilt,
                (unsigned long long)r.dropped_bytes);

    d.fs = fs_new(d.b);
    if (!d.fs || fuse_opt_add_arg(&args, "-osubtype=minikafka,fsname=minikafka") < 0)
        goto out_broker;
    struct fuse_session *se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), d.fs);
    if (!se)
        goto out_broker;
    if (fuse_session_mount(se, mnt) != 0) {
        fprintf(stderr, "minikafka: cannot mount on %s\n", mnt);
        goto out_session;
    }
    if (fuse_daemonize(c.foreground) != 0)
        goto out_unmount;
    broker_note_pid(d.b);

    if ((rc = uv_loop_init(&d.loop)) < 0) {
        fprintf(stderr, "minikafka: loop: %s\n", uv_strerror(rc));
        goto out_unmount;
    }
    broker_start(d.b, &d.loop);
    if ((rc = fs_start(d.fs, se, &d.loop, on_fs_exit, &d)) < 0) {
        fprintf(stderr, "minikafka: serving FUSE: %s\n", strerror(-rc));
        broker_quiesce(d.b);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    if (c.foreground)
        fprintf(stderr, "minikafka: serving %s on %s (node.id=%u, fsync=%s)\n", c.data, mnt,
                c.cfg.node_id, c.cfg.fsync == MK_FSYNC_ALWAYS ? "always" : "never");

    uv_run(&d.loop, UV_RUN_DEFAULT);
    ret = 0;

out_loop:
    uv_loop_close(&d.loop);
out_unmount:
    broker_close(d.b);
    d.b = NULL;
    fuse_session_unmount(se);
out_session:
    fuse_session_destroy(se);
out_broker:
    if (d.b)
        broker_close(d.b);
    if (d.fs)
        fs_free(d.fs);
out_args:
    fuse_opt_free_args(&args);
    free(c.data);
    free(c.mnt);
    return ret;
}
