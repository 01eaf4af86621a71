/*
 * main — the minikafka daemon.
 *
 *   minikafka [-f] [-o opt,...] DATA_DIR MOUNTPOINT
 *
 * LIFE OF THE PROCESS
 *   1. parse options (ours by Kafka name, the rest go to FUSE);
 *   2. check the paths (mount point a free directory, a dead minikafka mount
 *      on it cleaned up; data dir ours or empty, not nested with the mount
 *      point) and FUSE's options, then open the log and the broker: lock
 *      DATA_DIR, recover every partition's tail — any error is printed on
 *      the terminal before we fork;
 *   3. mount, then daemonize unless -f (the parent exits once mounted);
 *   4. run the loop: FUSE requests, thread-pool completions, housekeeping;
 *      SIGHUP reopens the log file;
 *   5. on SIGINT/SIGTERM or unmount: stop taking requests, commit held
 *      partial lines, let every running fdatasync finish and answer its
 *      writers, flush and checkpoint every partition, unmount, exit 0.
 */
#include "broker/broker.h"
#include "broker/kafka/kafka.h"
#include "broker/net/auth.h"
#include "broker/powercut.h"
#include "fs/fs.h"

#include <errno.h>
#include <malloc.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

static const char usage_line[] = "usage: minikafka [-f] [-o opt[,opt...]] DATA_DIR MOUNTPOINT";

static const char usage[] =
    "usage: minikafka [-f] [-o opt[,opt...]] DATA_DIR MOUNTPOINT\n"
    "\n"
    "Mounts the message log kept in DATA_DIR on MOUNTPOINT: topics are\n"
    "directories, partitions are files; append a line to produce a record,\n"
    "read the file to consume.  DATA_DIR must be a minikafka data dir or empty\n"
    "(it is created if missing); it may not be inside MOUNTPOINT nor the reverse.\n"
    "\n"
    "  -f                       stay in the foreground (Ctrl-C unmounts)\n"
    "  -h, --help               this text\n"
    "  -V, --version            version\n"
    "  -o num.partitions=N      partitions of a new topic, 1..100000 (1)\n"
    "  -o log.segment.bytes=N   roll segments at this size, 64..2^40 (1073741824)\n"
    "  -o log.segment.ms=N      roll segments at this age (604800000)\n"
    "  -o log.retention.ms=N    delete segments older than this, -1 never (604800000)\n"
    "  -o log.retention.bytes=N keep about this many bytes per partition, -1 all (-1)\n"
    "  -o message.max.bytes=N   longest record in bytes, newline excluded,\n"
    "                           1..67108864 (64 MiB) (1048588)\n"
    "  -o fsync=always|never    acknowledge writes once fsynced (always) or once\n"
    "                           in the page cache (never)\n"
    "  -o node.id=N             this node's id, 0..2147483647 (1)\n"
    "  -o peer=ID@IPV4:PORT     a node of the cluster, once per node, this one included\n"
    "  -o default.replication.factor=N  replicas of a new topic's partitions (min(3, nodes))\n"
    "  -o request.timeout.ms=N  how long a cluster write may wait for a majority (30000)\n"
    "  -o scrub.bytes.per.sec=N check stored records against their checksums in the\n"
    "                           background at this rate, 0 off (4194304)\n"
    "  -o scrub.interval.ms=N   rest between two scrub passes (86400000)\n"
    "  -o cluster.secret=FILE   peers must prove they know FILE's bytes (chmod 600)\n"
    "  -o cluster.listen=IPV4:PORT  where the cluster port listens (this node's peer address)\n"
    "  -o kafka.listen=IPV4:PORT|off  the Kafka protocol's port (a single node:\n"
    "                           127.0.0.1:9092, skipped when taken; a cluster: off)\n"
    "  -o kafka.advertised=HOST:PORT  the address Kafka clients are told (kafka.listen's)\n"
    "  -o allow_other,...       any other option is passed to FUSE (see mount.fuse3(8));\n"
    "                           allow_other and allow_root imply default_permissions\n"
    "\n"
    "Logs go to DATA_DIR/minikafka.log (and, without -f, warnings to syslog);\n"
    "SIGHUP reopens it.  Stop with fusermount3 -u MOUNTPOINT, SIGTERM or Ctrl-C.\n";

enum { KEY_HELP, KEY_VERSION, KEY_FG };

struct cli {
    int foreground, help, version, bad;
    int allow_other, default_permissions;
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
            fprintf(stderr, "minikafka: unexpected argument '%s' (%s)\n", arg, usage_line);
            c->bad = 1;
            return -1;
        }
        return 0;
    case FUSE_OPT_KEY_OPT: {
        const char *eq = strchr(arg, '=');
        if (!strcmp(arg, "allow_other") || !strcmp(arg, "allow_root"))
            c->allow_other = 1;
        if (!strcmp(arg, "default_permissions"))
            c->default_permissions = 1;
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
            fprintf(stderr, "minikafka: bad value '%s' for %s: want %s (see --help)\n", eq + 1,
                    name, why);
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

/* ------------------------------------------------------------ the paths */

/* Whether path is dir or below it (both absolute, resolved). */
static bool path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1)
        return true; /* "/" */
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

/* path made absolute and resolved, also when its last component does not
 * exist or is a dead mount (whose stat fails): then its parent is resolved
 * and the name appended. */
static int resolve(const char *path, char *out)
{
    if (realpath(path, out))
        return 0;
    int err = errno;
    if (err != ENOENT && err != ENOTCONN)
        return -err;
    char tmp[PATH_MAX], rdir[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    char *slash = strrchr(tmp, '/');
    const char *base = slash ? slash + 1 : tmp;
    const char *dir = !slash ? "." : slash == tmp ? "/" : (*slash = '\0', tmp);
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || !realpath(dir, rdir))
        return -err;
    if (snprintf(out, PATH_MAX, "%s/%s", strcmp(rdir, "/") ? rdir : "", base) >= PATH_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* Undoes the escapes of a /proc/self/mountinfo field (\040 for a blank). */
static void unescape(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
}

/* The file system type of the topmost mount on path ("" when path is no
 * mount point). */
static void mount_type(const char *path, char *type, size_t n)
{
    type[0] = '\0';
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent major:minor root MOUNTPOINT options... - FSTYPE source */
        char *save, *mp = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 1; tok && i < 5; i++)
            tok = mp = strtok_r(NULL, " ", &save);
        if (!mp)
            continue;
        unescape(mp);
        if (strcmp(mp, path) != 0)
            continue;
        while ((tok = strtok_r(NULL, " ", &save)) && strcmp(tok, "-") != 0)
            ;
        if (tok && (tok = strtok_r(NULL, " ", &save)))
            snprintf(type, n, "%s", tok);
    }
    free(line);
    fclose(f);
}

/* Lazily unmounts the dead mount on path with fusermount3 (it works for
 * root and for the user who mounted it). */
static int unmount_dead(const char *path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        execlp("fusermount3", "fusermount3", "-u", "-z", "--", path, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Checks the mount point: an existing directory that is not a mount yet.
 * A dead minikafka mount on it (its daemon was killed) is unmounted, and
 * then it is used.  Prints why not and returns -1. */
static int check_mountpoint(const char *arg, char *mnt, bool *recovered)
{
    int rc = resolve(arg, mnt);
    if (rc < 0) {
        fprintf(stderr, "minikafka: mount point %s: %s\n", arg, strerror(-rc));
        return -1;
    }
    /* A dead FUSE mount answers statfs with ENOTCONN (stat may still be
     * answered from the kernel's attribute cache for a moment). */
    char type[64];
    struct stat st;
    struct statvfs sv;
    mount_type(mnt, type, sizeof(type));
    if (type[0] && statvfs(mnt, &sv) < 0 && errno == ENOTCONN) {
        if (strcmp(type, "fuse.minikafka") != 0 || unmount_dead(mnt) < 0) {
            fprintf(stderr, "minikafka: %s is a dead FUSE mount (%s); run: fusermount3 -u %s\n",
                    mnt, type, mnt);
            return -1;
        }
        *recovered = true; /* logged once the log is open */
    }
    if (stat(mnt, &st) < 0) {
        if (errno == ENOENT)
            fprintf(stderr, "minikafka: mount point %s does not exist (create it with mkdir)\n",
                    mnt);
        else
            fprintf(stderr, "minikafka: mount point %s: %s\n", mnt, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "minikafka: mount point %s is not a directory\n", mnt);
        return -1;
    }
    mount_type(mnt, type, sizeof(type));
    if (type[0]) {
        fprintf(stderr, "minikafka: %s is already a mount point (%s); unmount it first\n", mnt,
                type);
        return -1;
    }
    return 0;
}

/* Checks the data dir: not the mount point, not inside it nor around it
 * (the daemon would wait on itself: processes hang in D state); an existing
 * directory must be a minikafka data dir or empty.  Creates it if missing.
 * Prints why not and returns -1. */
static int check_data_dir(const char *arg, const char *mnt, char *data)
{
    int rc = resolve(arg, data);
    if (rc < 0) {
        fprintf(stderr, "minikafka: data dir %s: %s\n", arg, strerror(-rc));
        return -1;
    }
    if (path_within(data, mnt) || path_within(mnt, data)) {
        fprintf(stderr,
                "minikafka: the data dir %s and the mount point %s are %s: "
                "use a data dir outside the mount point\n",
                data, mnt, !strcmp(data, mnt) ? "the same" : "one inside the other");
        return -1;
    }
    if (mkdir(data, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "minikafka: cannot create %s: %s\n", data, strerror(errno));
        return -1;
    }
    rc = broker_dir_check(data);
    if (rc == -ENOTEMPTY) {
        fprintf(stderr,
                "minikafka: %s is not a minikafka data dir (no meta file) and is not "
                "empty: refusing to use it; give an empty or new directory\n",
                data);
        return -1;
    }
    if (rc < 0) {
        fprintf(stderr, "minikafka: data dir %s: %s\n", data, strerror(-rc));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- running */

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm, sighup, sigusr2;
    struct broker *b;
    struct fs *fs;
    struct kafka *kafka;
    bool stopping;
    bool powercut; /* MINIKAFKA_POWERCUT=1: SIGUSR2 cuts the power (tests) */
};

static void shutdown_begin(struct daemon *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = true;
    mk_log(MK_INFO, "%s: stopping", why);
    if (d->kafka) {
        broker_status_hook(d->b, NULL, NULL);
        kafka_stop(d->kafka);
        d->kafka = NULL;
    }
    fs_stop(d->fs);
    broker_quiesce(d->b);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    if (d->powercut)
        uv_close((uv_handle_t *)&d->sigusr2, NULL);
    /* The loop now ends by itself once the running fdatasync jobs have
     * answered their writers: nothing else keeps it alive. */
}

static char *kafka_status_text(void *arg)
{
    return kafka_status(arg);
}

static void on_signal(uv_signal_t *s, int signum)
{
    if (signum == SIGHUP) {
        /* The daemon convention (logrotate): reopen the log, go on. */
        int rc = mk_log_reopen();
        if (rc < 0)
            mk_log(MK_WARN, "SIGHUP: cannot reopen the log: %s", strerror(-rc));
        else
            mk_log(MK_INFO, "SIGHUP: log reopened");
        return;
    }
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
    struct daemon d = {0};
    struct fuse_session *se = NULL;
    int ret = 1;
    cfg_defaults(&c.cfg);
    if (fuse_opt_parse(&args, &c, spec, opt_proc) < 0 || c.bad)
        goto out_args; /* opt_proc said what is wrong, in one line */
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
    const char *why = "";
    if (cfg_check(&c.cfg, &why) < 0) {
        fprintf(stderr, "minikafka: %s\n", why);
        goto out_args;
    }
    if (c.cfg.cluster_secret[0]) {
        int rc = auth_init();
        if (rc == 0)
            rc = auth_load(c.cfg.cluster_secret, c.cfg.key, &why);
        else
            why = "libsodium failed to initialize";
        if (rc < 0) {
            fprintf(stderr, "minikafka: cluster.secret %s %s (%s)\n", c.cfg.cluster_secret, why,
                    strerror(-rc));
            goto out_args;
        }
        c.cfg.has_key = true;
    }
    if (!c.data || !c.mnt) {
        fprintf(stderr, "minikafka: missing %s (%s; see --help)\n",
                c.data ? "MOUNTPOINT" : "DATA_DIR and MOUNTPOINT", usage_line);
        goto out_args;
    }
    mk_log_node(c.cfg.node_id);
    mk_log_terminal_info(c.foreground);
    char mnt[PATH_MAX], data[PATH_MAX], logpath[PATH_MAX + 16];
    bool recovered = false;
    if (check_mountpoint(c.mnt, mnt, &recovered) < 0)
        goto out_args;
    /* With other users let in, the kernel checks owners and modes. */
    if (c.allow_other && !c.default_permissions &&
        fuse_opt_add_arg(&args, "-odefault_permissions") < 0)
        goto out_args;
    if (fuse_opt_add_arg(&args, "-osubtype=minikafka,fsname=minikafka") < 0)
        goto out_args;
    /* FUSE's own options are checked here (one line naming a bad one),
     * before anything is opened. */
    d.fs = fs_new();
    if (!d.fs)
        goto out_args;
    se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), d.fs);
    if (!se)
        goto out_fs;
    if (check_data_dir(c.data, mnt, data) < 0)
        goto out_session;

    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* until the loop handles it: reopen the log */
    if (!getenv("UV_THREADPOOL_SIZE"))
        setenv("UV_THREADPOOL_SIZE", "16", 1); /* one fdatasync per busy partition */
    /* Write buffers (a FUSE write is up to 1 MiB, a replica's proposal and
     * frames as much) come back to the heap and are reused, instead of
     * fresh zeroed pages from mmap for every one (page faults were ~10 % of
     * a leader's CPU in a bulk append). */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    snprintf(logpath, sizeof(logpath), "%s/minikafka.log", data);
    int rc = mk_log_open(logpath);
    if (rc < 0)
        fprintf(stderr, "minikafka: warning: log file %s: %s (logging to syslog only)\n", logpath,
                strerror(-rc));

    if (recovered)
        mk_log(MK_WARN, "%s was a stale mount (its minikafka was killed): unmounted it", mnt);

    if ((d.powercut = powercut_wrap()))
        mk_log(MK_WARN, "MINIKAFKA_POWERCUT=1: SIGUSR2 cuts this node's power (a test hook)");
    long holder = 0;
    int64_t t0 = (int64_t)uv_hrtime();
    rc = broker_open(&d.b, data, &c.cfg, &holder);
    if (rc == -EBUSY) {
        mk_log(MK_ERROR, "%s is in use by another minikafka (pid %ld)", data, holder);
        goto out_session;
    }
    if (rc < 0) {
        mk_log(MK_ERROR, "cannot open %s: %s", data, strerror(-rc));
        goto out_session;
    }
    struct broker_recovery r;
    broker_recovery(d.b, &r);
    mk_log(r.rebuilt || r.dropped_bytes ? MK_WARN : MK_INFO,
           "opened %s in %.3f s: %zu topics, %zu partitions, %zu segments; "
           "recovery verified %llu records, rebuilt %llu, cut %llu torn bytes",
           data, ((double)uv_hrtime() - (double)t0) / 1e9, r.topics, r.partitions, r.segments,
           (unsigned long long)r.verified, (unsigned long long)r.rebuilt,
           (unsigned long long)r.dropped_bytes);

    if ((rc = broker_port_check(&c.cfg)) < 0) {
        const struct mk_peer *self = cfg_peer(&c.cfg, c.cfg.node_id);
        mk_log(MK_ERROR, "cannot listen on the cluster port %s:%u: %s", self->host, self->port,
               strerror(-rc));
        goto out_broker;
    }
    /* The Kafka port: given, it must listen (said here, on the terminal); by
     * default (a single node, 127.0.0.1:9092) it is skipped when taken. */
    bool kafka_on = c.cfg.kafka_mode == MK_KAFKA_SET ||
                    (c.cfg.kafka_mode == MK_KAFKA_DEFAULT && !c.cfg.npeers);
    if (kafka_on && (rc = broker_bind_check(c.cfg.kafka_listen.host, c.cfg.kafka_listen.port)) < 0) {
        if (c.cfg.kafka_mode == MK_KAFKA_SET) {
            mk_log(MK_ERROR, "cannot listen on the Kafka port %s:%u: %s", c.cfg.kafka_listen.host,
                   c.cfg.kafka_listen.port, strerror(-rc));
            goto out_broker;
        }
        mk_log(MK_WARN, "the Kafka port %s:%u is taken (%s): no Kafka protocol on this mount "
               "(set kafka.listen=IPV4:PORT, or kafka.listen=off to say so)",
               c.cfg.kafka_listen.host, c.cfg.kafka_listen.port, strerror(-rc));
        kafka_on = false;
    }
    if (fuse_session_mount(se, mnt) != 0) {
        mk_log(MK_ERROR, "cannot mount on %s", mnt);
        goto out_broker;
    }
    if (fuse_daemonize(c.foreground) != 0)
        goto out_unmount;
    if (!c.foreground)
        mk_log_detach();
    broker_note_pid(d.b);

    if ((rc = uv_loop_init(&d.loop)) < 0) {
        mk_log(MK_ERROR, "loop: %s", uv_strerror(rc));
        goto out_unmount;
    }
    if ((rc = broker_start(d.b, &d.loop)) < 0) {
        broker_quiesce(d.b);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    if ((rc = fs_start(d.fs, d.b, se, &d.loop, on_fs_exit, &d)) < 0) {
        mk_log(MK_ERROR, "serving FUSE: %s", strerror(-rc));
        broker_quiesce(d.b);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    if (kafka_on) {
        rc = kafka_start(&d.kafka, d.b, &d.loop, c.cfg.kafka_listen.host, c.cfg.kafka_listen.port,
                         c.cfg.kafka_adv_host, c.cfg.kafka_adv_port);
        if (rc < 0) {
            mk_log(c.cfg.kafka_mode == MK_KAFKA_SET ? MK_ERROR : MK_WARN,
                   "the Kafka port %s:%u: %s", c.cfg.kafka_listen.host, c.cfg.kafka_listen.port,
                   rc == -ENOTSUP ? "this CPU has no crc32 instruction (SSE 4.2), which record "
                                    "batches need"
                                  : uv_strerror(rc));
            d.kafka = NULL;
            if (c.cfg.kafka_mode == MK_KAFKA_SET) {
                fs_stop(d.fs);
                broker_quiesce(d.b);
                uv_run(&d.loop, UV_RUN_DEFAULT);
                goto out_loop;
            }
        } else {
            broker_status_hook(d.b, kafka_status_text, d.kafka);
            broker_set_kafka(d.b, c.cfg.kafka_adv_host[0] ? c.cfg.kafka_adv_host : c.cfg.kafka_listen.host,
                             c.cfg.kafka_adv_port ? c.cfg.kafka_adv_port : c.cfg.kafka_listen.port);
            mk_log(MK_INFO, "Kafka protocol on %s:%u", c.cfg.kafka_listen.host,
                   c.cfg.kafka_listen.port);
        }
    }
    uv_signal_t *sigs[] = {&d.sigint, &d.sigterm, &d.sighup};
    int signums[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&d.loop, sigs[i]);
        sigs[i]->data = &d;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    if (d.powercut && (rc = powercut_listen(&d.loop, &d.sigusr2)) < 0) {
        mk_log(MK_ERROR, "MINIKAFKA_POWERCUT: SIGUSR2: %s", uv_strerror(rc));
        d.powercut = false;
    }
    mk_log(MK_INFO, "serving %s on %s (node.id=%u, fsync=%s, pid %ld)", data, mnt, c.cfg.node_id,
           c.cfg.fsync == MK_FSYNC_ALWAYS ? "always" : "never", (long)getpid());

    uv_run(&d.loop, UV_RUN_DEFAULT);
    ret = 0;

out_loop:
    uv_loop_close(&d.loop);
out_unmount:
    broker_close(d.b);
    d.b = NULL;
    fuse_session_unmount(se);
    if (ret == 0)
        mk_log(MK_INFO, "stopped: %s unmounted", mnt);
out_broker:
    if (d.b)
        broker_close(d.b);
out_session:
    fuse_session_destroy(se);
out_fs:
    fs_free(d.fs);
out_args:
    mk_log_close();
    fuse_opt_free_args(&args);
    free(c.data);
    free(c.mnt);
    return ret;
}
