/*
 * broker — the data directory, its lock, the topic registry, housekeeping
 * and the status text.
 *
 * DATA DIRECTORY
 *   DATA/.lock        flock()ed by the running daemon, holds its pid: a
 *                     second daemon on the same directory is refused
 *   DATA/meta         "format=1", "node.id=N", "next.topic.id=N", in a
 *                     cluster "cluster.id=HEX" (fixed at its first start as
 *                     a node of one: netport_cluster_id), and once
 *                     the mount root was chmod'ed/chown'ed "root.uid=N",
 *                     "root.gid=N", "root.mode=OCTAL" (atomic; rewritten
 *                     only when its content changes, so a start on a full
 *                     disk writes nothing)
 *   DATA/topics/NAME  one directory per topic (topic.c)
 *   DATA/trash/       topics being created (new-ID) or deleted (del-ID);
 *                     those are removed at start, anything else there is
 *                     left alone (minikafka deletes only what it made)
 *   DATA/minikafka.log  the daemon's log (log.h)
 *
 * A directory without a meta file is adopted only if it is empty (see
 * broker_dir_check): a mistyped path never has its files taken over.
 *
 * HOUSEKEEPING runs once a second on the loop: per partition, roll by age,
 * retention, and an index checkpoint when the commit point moved.
 */
#include "broker/cluster.h"
#include "broker/pgroup.h"
#include "broker/groups.h"
#include "broker/internal.h"
#include "broker/net/netport.h"
#include "broker/sysio.h"

#include <dirent.h>
#include <errno.h>
#include <sys/random.h>
#include <xxhash.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOUSEKEEP_MS 1000

const struct mk_config *broker_config(const struct broker *b)
{
    return &b->cfg;
}

void broker_set_kafka(struct broker *b, const char *host, uint16_t port)
{
    snprintf(b->kafka_host, sizeof(b->kafka_host), "%s", host);
    b->kafka_port = port;
    if (b->cluster) {
        char info[300];
        snprintf(info, sizeof(info), "kafka=%s:%u", host, port);
        cluster_set_info(b->cluster, info);
    }
}

bool broker_tree_shared(const struct broker *b)
{
    return b->cfg.npeers || b->kafka_port;
}

bool broker_node_kafka(const struct broker *b, uint32_t id, char *host, size_t n, uint16_t *port)
{
    if (id == b->cfg.node_id || !b->cluster) {
        if (id != b->cfg.node_id || !b->kafka_port)
            return false;
        snprintf(host, n, "%s", b->kafka_host);
        *port = b->kafka_port;
        return true;
    }
    const char *info = cluster_peer_info(b->cluster, id);
    const char *colon = strrchr(info, ':');
    if (strncmp(info, "kafka=", 6) != 0 || !colon || colon - info - 6 <= 0 ||
        (size_t)(colon - info - 6) >= n)
        return false;
    long p = strtol(colon + 1, NULL, 10);
    if (p <= 0 || p > 65535)
        return false;
    memcpy(host, info + 6, (size_t)(colon - info - 6));
    host[colon - info - 6] = '\0';
    *port = (uint16_t)p;
    return true;
}

uint32_t broker_controller(const struct broker *b)
{
    uint64_t l = b->cluster ? cluster_meta_leader(b->cluster) : 0;
    return l && l <= UINT32_MAX ? (uint32_t)l : b->cfg.node_id;
}

struct groups *broker_groups(const struct broker *b)
{
    return b->groups;
}

uint64_t broker_cluster_id(const struct broker *b)
{
    return b->cfg.npeers ? b->cluster_id : b->incarnation;
}

const char *broker_data_dir(const struct broker *b)
{
    return b->data_dir;
}

void broker_recovery(const struct broker *b, struct broker_recovery *r)
{
    *r = b->rec;
}

void broker_job_start(struct broker *b)
{
    b->jobs++;
}

void broker_job_end(struct broker *b)
{
    b->jobs--;
}

bool broker_busy(const struct broker *b)
{
    return b->jobs > 0;
}

/* ------------------------------------------------------------------- meta */

uint64_t broker_peer_incarnation(const struct broker *b, uint32_t id)
{
    for (size_t i = 0; i < b->cfg.npeers; i++)
        if (b->cfg.peers[i].id == id)
            return b->peer_inc[i];
    return 0;
}

int broker_set_peer_incarnation(struct broker *b, uint32_t id, uint64_t inc)
{
    for (size_t i = 0; i < b->cfg.npeers; i++)
        if (b->cfg.peers[i].id == id && b->peer_inc[i] != inc) {
            b->peer_inc[i] = inc;
            return broker_write_meta(b);
        }
    return 0;
}

const struct mk_owner *broker_root_owner(const struct broker *b)
{
    return &b->root;
}

static int meta_format(const struct broker *b, const struct mk_owner *root, bool root_set,
                       uint64_t next_id, char **out)
{
    char *buf;
    int len = asprintf(&buf, "format=1\nnode.id=%" PRIu32 "\nnext.topic.id=%" PRIu64 "\n",
                       b->cfg.node_id, next_id);
    if (len >= 0 && b->cluster_id) {
        char *more;
        len = asprintf(&more, "%scluster.id=%016" PRIx64 "\n", buf, b->cluster_id);
        free(buf);
        buf = more;
    }
    if (len >= 0 && b->incarnation) {
        char *more;
        len = asprintf(&more, "%sincarnation=%016" PRIx64 "\n", buf, b->incarnation);
        free(buf);
        buf = more;
    }
    for (size_t i = 0; len >= 0 && i < b->cfg.npeers; i++) {
        char *more;
        if (!b->peer_inc[i] || b->cfg.peers[i].id == b->cfg.node_id)
            continue;
        len = asprintf(&more, "%speer.%" PRIu32 ".incarnation=%016" PRIx64 "\n", buf,
                       b->cfg.peers[i].id, b->peer_inc[i]);
        free(buf);
        buf = more;
    }
    if (len >= 0 && root_set) {
        char *more;
        len = asprintf(&more, "%sroot.uid=%" PRIu32 "\nroot.gid=%" PRIu32 "\nroot.mode=%04o\n", buf,
                       root->uid, root->gid, (unsigned)root->mode);
        free(buf);
        buf = more;
    }
    if (len < 0)
        return -ENOMEM;
    *out = buf;
    return 0;
}

/* Replaces DATA/meta with text (owned, kept as b->meta_text on success)
 * unless it already holds exactly that. */
static int meta_store(struct broker *b, char *text)
{
    if (b->meta_text && !strcmp(b->meta_text, text)) {
        free(text);
        return 0;
    }
    int rc = sys_write_atomic(b->data_dir, "meta", text, strlen(text));
    if (rc < 0) {
        free(text);
        return rc;
    }
    free(b->meta_text);
    b->meta_text = text;
    return 0;
}

int broker_write_meta(struct broker *b)
{
    char *text;
    int rc = meta_format(b, &b->root, b->root_set, b->next_topic_id, &text);
    return rc < 0 ? rc : meta_store(b, text);
}

int broker_set_root_owner(struct broker *b, const struct mk_owner *o)
{
    char *text;
    int rc = meta_format(b, o, true, b->next_topic_id, &text);
    if (rc == 0)
        rc = meta_store(b, text);
    if (rc == 0) {
        b->root = *o;
        b->root_set = true;
    }
    return rc;
}

static int read_meta(struct broker *b)
{
    char path[PATH_MAX], *buf;
    size_t len;
    snprintf(path, sizeof(path), "%s/meta", b->data_dir);
    int rc = sys_read_small(path, 4096, &buf, &len);
    if (rc == -ENOENT) {
        b->next_topic_id = 1;
        b->fresh = true;
        return 0; /* written once the incarnation is chosen */
    }
    if (rc < 0)
        return rc;
    b->meta_text = strdup(buf);
    if (!b->meta_text) {
        free(buf);
        return -ENOMEM;
    }
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        int64_t v;
        if (!strncmp(line, "format=", 7)) {
            if (strcmp(line + 7, "1") != 0) {
                mk_log(MK_ERROR, "%s: unknown format %s", path, line + 7);
                rc = -EPROTO;
            }
        } else if (!strncmp(line, "node.id=", 8)) {
            if (cfg_parse_i64(line + 8, 0, INT32_MAX, &v) < 0) {
                rc = -EBADMSG;
            } else if ((uint32_t)v != b->cfg.node_id) {
                mk_log(MK_ERROR, "%s belongs to node.id=%" PRId64 ", not node.id=%" PRIu32,
                       b->data_dir, v, b->cfg.node_id);
                rc = -EINVAL;
            }
        } else if (!strncmp(line, "next.topic.id=", 14)) {
            if (cfg_parse_i64(line + 14, 1, INT64_MAX, &v) < 0)
                rc = -EBADMSG;
            else
                b->next_topic_id = (uint64_t)v;
        } else if (!strncmp(line, "cluster.id=", 11)) {
            char *end;
            errno = 0;
            unsigned long long id = strtoull(line + 11, &end, 16);
            if (errno || *end || strlen(line + 11) != 16 || id == 0)
                rc = -EBADMSG;
            else
                b->cluster_id = id;
        } else if (!strncmp(line, "incarnation=", 12) || !strncmp(line, "peer.", 5)) {
            /* incarnation=HEX, peer.ID.incarnation=HEX */
            char *end, *hex = strchr(line, '=') + 1;
            int64_t id = 0;
            bool ours = line[0] == 'i';
            if (!ours) {
                char *dot = strchr(line + 5, '.');
                if (!dot || strncmp(dot, ".incarnation=", 13) != 0) {
                    rc = -EBADMSG;
                    continue;
                }
                *dot = '\0';
                if (cfg_parse_i64(line + 5, 0, INT32_MAX, &id) < 0) {
                    rc = -EBADMSG;
                    continue;
                }
            }
            errno = 0;
            unsigned long long inc = strtoull(hex, &end, 16);
            if (errno || *end || strlen(hex) != 16 || inc == 0) {
                rc = -EBADMSG;
            } else if (ours) {
                b->incarnation = inc;
            } else {
                for (size_t i = 0; i < b->cfg.npeers; i++)
                    if (b->cfg.peers[i].id == (uint32_t)id)
                        b->peer_inc[i] = inc; /* a peer no longer configured: dropped */
            }
        } else if (!strncmp(line, "root.uid=", 9) || !strncmp(line, "root.gid=", 9)) {
            if (cfg_parse_i64(line + 9, 0, UINT32_MAX, &v) < 0)
                rc = -EBADMSG;
            else if (line[5] == 'u')
                b->root.uid = (uint32_t)v;
            else
                b->root.gid = (uint32_t)v;
            b->root_set = true;
        } else if (!strncmp(line, "root.mode=", 10)) {
            if (cfg_parse_mode(line + 10, &b->root.mode) < 0)
                rc = -EBADMSG;
            b->root_set = true;
        } else {
            rc = -EBADMSG;
        }
    }
    free(buf);
    if (rc == -EBADMSG)
        mk_log(MK_ERROR, "%s: unreadable", path);
    return rc;
}

/* -------------------------------------------------------- whose directory */

/* Files a start may leave before meta exists (lock taken, log opened, meta
 * being written) and what a fresh file system holds. */
static bool harmless_entry(const char *name)
{
    static const char *const ok[] = {
        ".", "..", "lost+found", ".lock", "meta.tmp", "minikafka.log", "minikafka.log.1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcmp(name, ok[i]))
            return true;
    return false;
}

int broker_dir_check(const char *data_dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/meta", data_dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    if (access(path, F_OK) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
    DIR *d = opendir(data_dir);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && rc == 0)
        if (!harmless_entry(de->d_name))
            rc = -ENOTEMPTY;
    closedir(d);
    return rc;
}

/* Removes what an interrupted create (new-ID) or delete (del-ID) left in
 * the trash; leaves anything else there, once logged. */
static int empty_trash(struct broker *b)
{
    DIR *d = opendir(b->trash_dir);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        int64_t id;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        if ((strncmp(n, "new-", 4) && strncmp(n, "del-", 4)) ||
            cfg_parse_i64(n + 4, 1, INT64_MAX, &id) < 0) {
            mk_log(MK_WARN, "leaving %s/%s alone: not made by minikafka", b->trash_dir, n);
            continue;
        }
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", b->trash_dir, n);
        int r = sys_remove_tree(sub);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

/* ------------------------------------------------------------------- lock */

static int lock_dir(struct broker *b, long *holder)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.lock", b->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        char buf[32] = {0};
        if (holder && pread(fd, buf, sizeof(buf) - 1, 0) > 0)
            *holder = strtol(buf, NULL, 10);
        close(fd);
        return err == EWOULDBLOCK ? -EBUSY : -err;
    }
    b->lock_fd = fd;
    return 0;
}

/* The pid is written after daemonizing too (see broker_note_pid). */
static void write_pid(int fd)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)len, 0) < 0) {
        /* informational only */
    }
}

void broker_note_pid(struct broker *b)
{
    write_pid(b->lock_fd);
}

/* ------------------------------------------------------------------- open */

/* THE SCRUB.  Once a second, up to scrub.bytes.per.sec of records not
 * checked since the files were opened are read and checked against their
 * checksums (part_scrub), partition after partition: damage in data nobody
 * reads is found (and, in a cluster, repaired) too.  After a pass over
 * every partition it rests scrub.interval.ms, then forgets what it checked
 * and starts again.  On the loop, so a second's budget is kept small. */
static void scrub(struct broker *b, int64_t now)
{
    int64_t budget = b->cfg.scrub_bytes_per_sec;
    size_t total = 0;
    for (size_t i = 0; i < b->ntopics; i++)
        total += b->topics[i]->nparts;
    if (budget <= 0 || total == 0 || now < b->scrub_rest_ms)
        return;
    if (b->scrub_rest_ms) {
        /* A new pass: everything is checked again. */
        b->scrub_rest_ms = 0;
        for (size_t i = 0; i < b->ntopics; i++)
            for (uint32_t k = 0; k < b->topics[i]->nparts; k++)
                part_scrub_reset(b->topics[i]->parts[k]);
    }
    for (size_t steps = 0; budget > 0 && steps < total; steps++) {
        if (b->scrub_topic >= b->ntopics) {
            b->scrub_topic = 0;
            b->scrub_part = 0;
        }
        struct topic *t = b->topics[b->scrub_topic];
        if (b->scrub_part >= t->nparts) {
            b->scrub_topic++;
            b->scrub_part = 0;
            steps--;
            continue;
        }
        if (part_scrub(t->parts[b->scrub_part], &budget, &b->scrub_bytes) == 0) {
            b->scrub_clean = 0;
            break; /* this partition again next second */
        }
        b->scrub_part++;
        if (++b->scrub_clean >= total) {
            b->scrub_clean = 0;
            b->scrub_passes++;
            b->scrub_rest_ms = now + (b->cfg.scrub_interval_ms > 0 ? b->cfg.scrub_interval_ms : 1);
            break;
        }
    }
}

static void housekeep(uv_timer_t *t)
{
    struct broker *b = t->data;
    int64_t now = sys_now_ms();
    for (size_t i = 0; i < b->ntopics; i++) {
        struct topic *tp = b->topics[i];
        for (uint32_t k = 0; k < tp->nparts; k++)
            part_housekeep(tp->parts[k], now);
    }
    scrub(b, now);
}

static int load_topics(struct broker *b)
{
    DIR *d = opendir(b->topics_dir);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && rc == 0) {
        if (de->d_name[0] == '.')
            continue;
        if (topic_name_check(de->d_name) < 0) {
            mk_log(MK_WARN, "ignoring %s/%s: not a topic name", b->topics_dir, de->d_name);
            continue;
        }
        struct topic *t;
        rc = topic_load(b, de->d_name, &t);
        if (rc < 0)
            break;
        if (b->ntopics == b->cap) {
            size_t ncap = b->cap ? 2 * b->cap : 16;
            struct topic **n = realloc(b->topics, ncap * sizeof(*n));
            if (!n) {
                topic_free(t);
                rc = -ENOMEM;
                break;
            }
            b->topics = n;
            b->cap = ncap;
        }
        b->topics[b->ntopics++] = t;
    }
    closedir(d);
    return rc;
}

static int cmp_topic_id(const void *x, const void *y)
{
    const struct topic *a = *(struct topic *const *)x, *c = *(struct topic *const *)y;
    return a->id < c->id ? -1 : a->id > c->id;
}

static char *path_join(const char *a, const char *b)
{
    char *p;
    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* Frees everything; with `flush`, first makes every partition durable and
 * checkpointed (a clean stop). */
static void broker_free(struct broker *b, bool flush)
{
    for (size_t i = 0; i < b->ntopics; i++) {
        struct topic *t = b->topics[i];
        for (uint32_t k = 0; flush && k < t->nparts; k++)
            part_final_flush(t->parts[k]);
        topic_free(t);
    }
    free(b->topics);
    if (b->lock_fd >= 0)
        close(b->lock_fd);
    free(b->topics_dir);
    free(b->trash_dir);
    free(b->meta_text);
    free(b->data_dir);
    free(b);
}

int broker_open(struct broker **out, const char *data_dir, const struct mk_config *cfg,
                long *holder)
{
    struct broker *b = calloc(1, sizeof(*b));
    int rc;
    if (!b)
        return -ENOMEM;
    b->cfg = *cfg;
    b->lock_fd = -1;
    b->root = (struct mk_owner){.uid = geteuid(), .gid = getegid(), .mode = 0755};
    b->started_ms = sys_now_ms();
    b->data_dir = realpath(data_dir, NULL);
    if (!b->data_dir) {
        rc = -errno;
        free(b);
        return rc;
    }
    if ((rc = broker_dir_check(b->data_dir)) < 0) {
        free(b->data_dir);
        free(b);
        return rc;
    }
    b->topics_dir = path_join(b->data_dir, "topics");
    b->trash_dir = path_join(b->data_dir, "trash");
    if (!b->topics_dir || !b->trash_dir) {
        rc = -ENOMEM;
        goto err;
    }
    if ((rc = lock_dir(b, holder)) < 0)
        goto err;
    write_pid(b->lock_fd);
    if ((rc = read_meta(b)) < 0)
        goto err;
    if (b->cfg.npeers && !b->cluster_id)
        b->cluster_id = netport_cluster_id(&b->cfg); /* the first start in a cluster */
    while (b->cfg.npeers && !b->incarnation) /* a new data dir, or one older than incarnations */
        if (getrandom(&b->incarnation, sizeof(b->incarnation), 0) != sizeof(b->incarnation))
            b->incarnation = XXH3_64bits_withSeed(b->data_dir, strlen(b->data_dir),
                                                  (uint64_t)sys_now_ms() ^ (uint64_t)getpid());
    if (((rc = sysio.mkdir(b->topics_dir, 0755)) < 0 && rc != -EEXIST) ||
        ((rc = sysio.mkdir(b->trash_dir, 0755)) < 0 && rc != -EEXIST))
        goto err;
    /* What is in the trash was being created or deleted: finish it.  A
     * failure to remove is no reason not to start (a full disk, say). */
    if ((rc = empty_trash(b)) < 0)
        mk_log(MK_WARN, "emptying %s: %s", b->trash_dir, strerror(-rc));
    if ((rc = load_topics(b)) < 0)
        goto err;
    if (b->ntopics > 1)
        qsort(b->topics, b->ntopics, sizeof(*b->topics), cmp_topic_id);
    b->rec.topics = b->ntopics;
    if ((rc = broker_write_meta(b)) < 0)
        goto err;

    *out = b;
    return 0;

err:
    broker_free(b, false);
    return rc;
}

int broker_bind_check(const char *host, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int broker_port_check(const struct mk_config *cfg)
{
    const struct mk_peer *self = cfg_peer(cfg, cfg->node_id);
    if (!cfg->npeers || !self)
        return 0;
    return broker_bind_check(self->host, self->port);
}

void broker_status_hook(struct broker *b, char *(*fn)(void *arg), void *arg)
{
    b->status_fn = fn;
    b->status_arg = arg;
}

int broker_start(struct broker *b, uv_loop_t *loop)
{
    b->loop = loop;
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, housekeep, HOUSEKEEP_MS, HOUSEKEEP_MS);
    int grc = groups_open(&b->groups, b, loop);
    if (grc < 0)
        return grc;
    if (!b->cfg.npeers)
        return 0;
    /* The port and the metadata group; partition groups come next. */
    int rc = cluster_open(&b->cluster, loop, b, b->cluster_id);
    if (rc < 0)
        b->cluster = NULL;
    return rc;
}

void broker_quiesce(struct broker *b)
{
    if (b->quiescing)
        return;
    b->quiescing = true;
    if (b->loop) {
        uv_timer_stop(&b->timer);
        uv_close((uv_handle_t *)&b->timer, NULL);
    }
    if (b->groups) {
        groups_close(b->groups); /* frees itself once its timer closed */
        b->groups = NULL;
    }
    if (b->cluster) {
        cluster_close(b->cluster); /* frees itself once its handles closed */
        b->cluster = NULL;
    }
}

void broker_close(struct broker *b)
{
    broker_free(b, true);
}

/* ----------------------------------------------------------------- status */

int broker_status(const struct broker *b, char **text, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return -ENOMEM;
    int64_t now = sys_now_ms();
    uint64_t parts = 0;
    for (size_t i = 0; i < b->ntopics; i++)
        parts += b->topics[i]->nparts;
    fprintf(f,
            "node.id=%" PRIu32 " version=%s role=%s fsync=%s uptime.ms=%" PRId64
            " topics=%zu partitions=%" PRIu64 " data.dir=%s\n",
            b->cfg.node_id, MK_VERSION, b->cfg.npeers ? "cluster-node" : "single-node",
            b->cfg.fsync == MK_FSYNC_ALWAYS ? "always" : "never", now - b->started_ms, b->ntopics,
            parts, b->data_dir);
    uint64_t damaged = 0, repaired = 0;
    for (size_t i = 0; i < b->ntopics; i++)
        for (uint32_t k = 0; k < b->topics[i]->nparts; k++) {
            const struct part *p = b->topics[i]->parts[k];
            damaged += p->damaged;
            repaired += p->g ? pgroup_repaired(p->g) : 0;
        }
    fprintf(f,
            "scrub.bytes.per.sec=%" PRId64 " scrub.passes=%" PRIu64 " scrub.checked.bytes=%" PRIu64
            " damaged=%" PRIu64 " repaired=%" PRIu64 "\n",
            b->cfg.scrub_bytes_per_sec, b->scrub_passes, b->scrub_bytes, damaged, repaired);
    if (b->cluster)
        cluster_status(b->cluster, f);
    if (b->groups) {
        char *gl = groups_status(b->groups);
        if (gl)
            fputs(gl, f);
        free(gl);
    }
    if (b->status_fn) {
        char *extra = b->status_fn(b->status_arg);
        if (extra)
            fputs(extra, f);
        free(extra);
    }
    for (size_t i = 0; i < b->ntopics; i++) {
        const struct topic *t = b->topics[i];
        fprintf(f, "topic=%s id=%" PRIu64 " partitions=%" PRIu32, t->name, t->id, t->nparts);
        for (int k = 0; k < TOPIC_NCONF; k++)
            fprintf(f, " %s=%" PRId64, topic_config_names[k],
                    topic_config_get(&t->conf, &b->cfg, k));
        fputc('\n', f);
        for (uint32_t k = 0; k < t->nparts; k++) {
            struct part_info pi;
            part_info(t->parts[k], &pi);
            fprintf(f,
                    "partition=%s/%" PRIu32 " leader=%" PRIu32 " term=%" PRIu64
                    " offset.first=%" PRIu64 " offset.next=%" PRIu64 " position.first=%" PRIu64
                    " position.end=%" PRIu64 " bytes=%" PRIu64 " segments=%zu",
                    t->name, k, pi.leader, pi.term, pi.first_off, pi.next_off, pi.first_pos,
                    pi.end_pos, pi.end_pos - pi.first_pos, pi.segments);
            if (t->parts[k]->g)
                pgroup_status(t->parts[k]->g, f);
            else
                fprintf(f, " replicas=%" PRIu32 " isr=%" PRIu32 " lag=-\n", pi.leader,
                        pi.leader);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *text = buf;
    *len = size;
    return 0;
}
