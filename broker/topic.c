/*
 * topic — topics: creation, loading, settings, growth and deletion.
 *
 * FILES
 *   DATA/topics/NAME/topic      metadata, text, "key=value\n" lines:
 *                                 id=N            never reused (DATA/meta)
 *                                 created.ms=N
 *                                 partitions=N    the truth: partition dirs
 *                                                 beyond it are leftovers of
 *                                                 an interrupted grow
 *                                 uid=N gid=N mode=OCTAL  owner and
 *                                                 permission bits (absent
 *                                                 in older topics: the
 *                                                 mount root's owner, 0755)
 *                                 retention.ms=N ... per-topic overrides
 *                               always replaced atomically (sys_write_atomic)
 *   DATA/topics/NAME/replicas   cluster only: one line per partition, the
 *                               ids of the nodes holding its replicas,
 *                               preferred leader first ("2,3,1"), from the
 *                               metadata group's placement
 *   DATA/topics/NAME/P/         partition P's log (plog.c), on a node that
 *                               holds one of its replicas
 *
 * CREATION is atomic: the topic is built in DATA/trash/new-ID (partitions and
 * metadata, all fsynced) and renamed to DATA/topics/NAME in one step.  A
 * crash before the rename leaves only trash, which the next start removes.
 * DELETION renames DATA/topics/NAME to DATA/trash/del-ID, durably, and then
 * removes the files in the thread pool.
 */
#include "broker/internal.h"
#include "broker/sysio.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTITIONS 100000

const char *topic_name(const struct topic *t)
{
    return t->name;
}
uint64_t topic_id(const struct topic *t)
{
    return t->id;
}
uint32_t topic_partitions(const struct topic *t)
{
    return t->nparts;
}
int64_t topic_created_ms(const struct topic *t)
{
    return t->created_ms;
}
struct part *topic_part(const struct topic *t, uint32_t i)
{
    return i < t->nparts ? t->parts[i] : NULL;
}
const struct mk_owner *topic_owner(const struct topic *t)
{
    return &t->owner;
}

struct topic *topic_find(const struct broker *b, const char *name)
{
    for (size_t i = 0; i < b->ntopics; i++)
        if (!strcmp(b->topics[i]->name, name))
            return b->topics[i];
    return NULL;
}

struct topic *topic_by_id(const struct broker *b, uint64_t id)
{
    for (size_t i = 0; i < b->ntopics; i++)
        if (b->topics[i]->id == id)
            return b->topics[i];
    return NULL;
}

size_t topic_count(const struct broker *b)
{
    return b->ntopics;
}

struct topic *topic_at(const struct broker *b, size_t i)
{
    return i < b->ntopics ? b->topics[i] : NULL;
}

/* ---------------------------------------------------------------- metadata */

bool topic_has_replica(const struct topic *t, uint32_t i, uint32_t id)
{
    if (!t->rf)
        return true;
    for (uint32_t k = 0; k < t->rf; k++)
        if (t->replicas[(size_t)i * t->rf + k] == id)
            return true;
    return false;
}

/* The replicas file for nparts partitions, rf each. */
static int replicas_write(const char *dir, uint32_t nparts, uint32_t rf, const uint32_t *ids)
{
    size_t cap = (size_t)nparts * rf * 11 + nparts + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (uint32_t i = 0; i < nparts; i++)
        for (uint32_t k = 0; k < rf; k++)
            len += (size_t)snprintf(buf + len, cap - len, "%" PRIu32 "%c", ids[(size_t)i * rf + k],
                                    k + 1 < rf ? ',' : '\n');
    int rc = sys_write_atomic(dir, "replicas", buf, len);
    free(buf);
    return rc;
}

static int replicas_read(const char *dir, struct topic *t)
{
    char path[PATH_MAX], *buf;
    size_t len;
    if (snprintf(path, sizeof(path), "%s/replicas", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int rc = sys_read_small(path, 16 << 20, &buf, &len);
    if (rc == -ENOENT)
        return 0; /* a topic of a single node */
    if (rc < 0)
        return rc;
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    uint32_t rf = 0, in_line = 0, lines = 0;
    rc = 0;
    for (char *p = buf; rc == 0 && p < buf + len;) {
        char *end = p;
        while (end < buf + len && *end >= '0' && *end <= '9')
            end++;
        int64_t v;
        char save = end < buf + len ? *end : '\0';
        if (end == buf + len || (save != ',' && save != '\n')) {
            rc = -EBADMSG;
            break;
        }
        *end = '\0';
        if (cfg_parse_i64(p, 1, UINT32_MAX, &v) < 0) {
            rc = -EBADMSG;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            uint32_t *ni = realloc(ids, cap * sizeof(*ni));
            if (!ni) {
                rc = -ENOMEM;
                break;
            }
            ids = ni;
        }
        ids[n++] = (uint32_t)v;
        in_line++;
        if (save == '\n') {
            if (rf == 0)
                rf = in_line;
            if (in_line != rf || rf > MK_MAX_PEERS)
                rc = -EBADMSG;
            in_line = 0;
            lines++;
        }
        p = end + 1;
    }
    free(buf);
    if (rc == 0 && (in_line != 0 || lines < t->nparts || rf == 0))
        rc = -EBADMSG; /* lines beyond partitions: an interrupted grow */
    if (rc < 0) {
        free(ids);
        return rc;
    }
    t->rf = rf;
    t->replicas = ids;
    return 0;
}

/* The topic file for t with nparts partitions, settings tc and owner o (the
 * values to be; t's own are changed by the caller once this succeeded). */
static int meta_write(const char *dir, const struct topic *t, uint32_t nparts,
                      const struct topic_config *tc, const struct mk_owner *o)
{
    char buf[640];
    int len = snprintf(buf, sizeof(buf),
                       "id=%" PRIu64 "\ncreated.ms=%" PRId64 "\npartitions=%" PRIu32
                       "\nuid=%" PRIu32 "\ngid=%" PRIu32 "\nmode=%04o\n",
                       t->id, t->created_ms, nparts, o->uid, o->gid, (unsigned)o->mode);
    for (int i = 0; i < TOPIC_NCONF; i++)
        if (tc->set & (1u << i))
            len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%s=%" PRId64 "\n",
                            topic_config_names[i], tc->v[i]);
    return sys_write_atomic(dir, "topic", buf, (size_t)len);
}

static int meta_read(const char *dir, struct topic *t)
{
    char path[PATH_MAX], *buf;
    size_t len;
    if (snprintf(path, sizeof(path), "%s/topic", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int rc = sys_read_small(path, 64 << 10, &buf, &len);
    if (rc < 0)
        return rc;
    bool have_id = false, have_parts = false;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        int64_t v;
        if (!eq) {
            rc = -EBADMSG;
            break;
        }
        *eq = '\0';
        const char *key = line, *val = eq + 1;
        int idx;
        if (!strcmp(key, "id") && cfg_parse_i64(val, 1, INT64_MAX, &v) == 0) {
            t->id = (uint64_t)v;
            have_id = true;
        } else if (!strcmp(key, "created.ms") && cfg_parse_i64(val, 0, INT64_MAX, &v) == 0) {
            t->created_ms = v;
        } else if (!strcmp(key, "partitions") && cfg_parse_i64(val, 1, MAX_PARTITIONS, &v) == 0) {
            t->nparts = (uint32_t)v;
            have_parts = true;
        } else if (!strcmp(key, "uid") && cfg_parse_i64(val, 0, UINT32_MAX, &v) == 0) {
            t->owner.uid = (uint32_t)v;
        } else if (!strcmp(key, "gid") && cfg_parse_i64(val, 0, UINT32_MAX, &v) == 0) {
            t->owner.gid = (uint32_t)v;
        } else if (!strcmp(key, "mode") && cfg_parse_mode(val, &t->owner.mode) == 0) {
            /* parsed in place */
        } else if ((idx = topic_config_index(key)) >= 0 && topic_config_check(idx, val, &v) == 0) {
            t->conf.v[idx] = v;
            t->conf.set |= 1u << idx;
        } else {
            rc = -EBADMSG;
            break;
        }
    }
    free(buf);
    if (rc == 0 && (!have_id || !have_parts))
        rc = -EBADMSG;
    return rc;
}

/* ------------------------------------------------------------ load / free */

static int topics_push(struct broker *b, struct topic *t)
{
    if (b->ntopics == b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 16;
        struct topic **n = realloc(b->topics, ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        b->topics = n;
        b->cap = ncap;
    }
    b->topics[b->ntopics++] = t;
    return 0;
}

void topic_free(struct topic *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->nparts; i++)
        if (t->parts && t->parts[i])
            part_detach(t->parts[i]);
    free(t->parts);
    free(t->replicas);
    free(t->dir);
    free(t->name);
    free(t);
}

/* Removes partition directories numbered >= nparts (an interrupted grow). */
static void remove_extra_parts(const char *dir, uint32_t nparts)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t v;
        if (de->d_type == DT_DIR && cfg_parse_i64(de->d_name, 0, INT32_MAX, &v) == 0 &&
            v >= nparts) {
            char sub[PATH_MAX];
            snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
            sys_remove_tree(sub);
        }
    }
    closedir(d);
}

int topic_load(struct broker *b, const char *name, struct topic **out)
{
    struct topic *t = calloc(1, sizeof(*t));
    char dir[PATH_MAX];
    int rc;
    if (!t)
        return -ENOMEM;
    snprintf(dir, sizeof(dir), "%s/%s", b->topics_dir, name);
    t->name = strdup(name);
    t->dir = strdup(dir);
    if (!t->name || !t->dir) {
        rc = -ENOMEM;
        goto err;
    }
    t->owner = b->root;
    t->owner.mode = 0755;
    if ((rc = meta_read(dir, t)) < 0 || (rc = replicas_read(dir, t)) < 0)
        goto err;
    uint32_t n = t->nparts;
    t->nparts = 0;
    t->parts = calloc(n, sizeof(*t->parts));
    if (!t->parts) {
        rc = -ENOMEM;
        goto err;
    }
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = part_open(b, t, i, true, &t->parts[i])) < 0)
            goto err;
        t->nparts++;
    }
    remove_extra_parts(dir, n);
    if (t->id >= b->next_topic_id)
        b->next_topic_id = t->id + 1;
    *out = t;
    return 0;
err:
    mk_log(MK_WARN, "topic %s: %s", name, strerror(-rc));
    topic_free(t);
    return rc;
}

/* --------------------------------------------------------- create / delete */

int topic_create(struct broker *b, const char *name, const struct mk_owner *own, struct topic **out)
{
    return topic_create_as(b, name, b->next_topic_id, own, b->cfg.num_partitions, 0, NULL, out);
}

int topic_create_as(struct broker *b, const char *name, uint64_t id, const struct mk_owner *own,
                    uint32_t nparts, uint32_t rf, const uint32_t *replicas, struct topic **out)
{
    int rc = topic_name_check(name);
    if (rc < 0)
        return rc;
    if (topic_find(b, name) || topic_by_id(b, id))
        return -EEXIST;
    if (nparts < 1 || nparts > MAX_PARTITIONS)
        return -EINVAL;
    if (id >= b->next_topic_id) {
        /* Ids are never reused: the next one is past every id seen. */
        b->next_topic_id = id + 1;
        if ((rc = broker_write_meta(b)) < 0)
            return rc;
    }

    char stage[PATH_MAX], dst[PATH_MAX];
    snprintf(stage, sizeof(stage), "%s/new-%" PRIu64, b->trash_dir, id);
    snprintf(dst, sizeof(dst), "%s/%s", b->topics_dir, name);
    if ((rc = sysio.mkdir(stage, 0755)) < 0)
        return rc;
    /* Many partitions: one syncfs for all of their files, not four fsyncs
     * each (the stage becomes visible only by the rename below). */
    bool defer = nparts > 8;
    seg_sync_defer(defer);
    for (uint32_t i = 0; i < nparts; i++) {
        char pdir[PATH_MAX];
        struct plog l;
        if (snprintf(pdir, sizeof(pdir), "%s/%" PRIu32, stage, i) >= (int)sizeof(pdir)) {
            rc = -ENAMETOOLONG;
            goto err_stage;
        }
        bool here = rf == 0;
        for (uint32_t k = 0; k < rf; k++)
            here = here || replicas[(size_t)i * rf + k] == b->cfg.node_id;
        if (!here)
            continue; /* another node's replica */
        if ((rc = rf ? plog_open_raft(&l, pdir, true) : plog_open(&l, pdir, true)) < 0)
            goto err_stage;
        plog_close(&l);
    }
    seg_sync_defer(false);
    if (defer && (rc = sys_syncfs(stage)) < 0)
        goto err_stage;
    if (rf && (rc = replicas_write(stage, nparts, rf, replicas)) < 0)
        goto err_stage;
    struct topic_config none = {0};
    struct topic proto = {.id = id, .created_ms = sys_now_ms()};
    struct mk_owner o = {.uid = b->root.uid, .gid = b->root.gid, .mode = 0755};
    if (own)
        o = *own;
    if ((rc = meta_write(stage, &proto, nparts, &none, &o)) < 0 || (rc = sys_fsync_dir(stage)) < 0)
        goto err_stage;
    if ((rc = sysio.rename(stage, dst)) < 0)
        goto err_stage;
    if ((rc = sys_fsync_dir(b->topics_dir)) < 0 || (rc = sys_fsync_dir(b->trash_dir)) < 0)
        goto err_dst;

    struct topic *t;
    if ((rc = topic_load(b, name, &t)) < 0)
        goto err_dst;
    if ((rc = topics_push(b, t)) < 0) {
        topic_free(t);
        goto err_dst;
    }
    if (out)
        *out = t;
    return 0;

err_dst:
    sys_remove_tree(dst);
    return rc;
err_stage:
    seg_sync_defer(false);
    sys_remove_tree(stage);
    return rc;
}

struct rm_job {
    uv_work_t work;
    struct broker *b;
    char *path;
};

static void rm_work(uv_work_t *w)
{
    struct rm_job *j = w->data;
    int rc = sys_remove_tree(j->path);
    if (rc < 0)
        mk_log(MK_WARN, "removing %s: %s", j->path, strerror(-rc));
}

static void rm_after(uv_work_t *w, int status)
{
    (void)status;
    struct rm_job *j = w->data;
    broker_job_end(j->b);
    free(j->path);
    free(j);
}

int topic_delete(struct broker *b, const char *name)
{
    size_t i;
    for (i = 0; i < b->ntopics; i++)
        if (!strcmp(b->topics[i]->name, name))
            break;
    if (i == b->ntopics)
        return -ENOENT;
    struct topic *t = b->topics[i];
    char dst[PATH_MAX];
    snprintf(dst, sizeof(dst), "%s/del-%" PRIu64, b->trash_dir, t->id);
    int rc = sysio.rename(t->dir, dst);
    if (rc < 0)
        return rc;
    if ((rc = sys_fsync_dir(b->topics_dir)) < 0)
        mk_log(MK_WARN, "fsync %s: %s", b->topics_dir, strerror(-rc));
    memmove(&b->topics[i], &b->topics[i + 1], (b->ntopics - i - 1) * sizeof(*b->topics));
    b->ntopics--;
    topic_free(t);

    struct rm_job *j = calloc(1, sizeof(*j));
    if (j && (j->path = strdup(dst)) != NULL) {
        j->b = b;
        j->work.data = j;
        broker_job_start(b);
        if (uv_queue_work(b->loop, &j->work, rm_work, rm_after) == 0)
            return 0;
        broker_job_end(b);
        free(j->path);
    }
    free(j);
    sys_remove_tree(dst); /* no thread pool: do it here */
    return 0;
}

/* ---------------------------------------------------------------- settings */

int topic_get(const struct broker *b, const struct topic *t, const char *key, char *buf, size_t n)
{
    if (!strcmp(key, "partitions")) {
        snprintf(buf, n, "%" PRIu32, t->nparts);
        return 0;
    }
    int idx = topic_config_index(key);
    if (idx < 0)
        return idx;
    snprintf(buf, n, "%" PRId64, topic_config_get(&t->conf, &b->cfg, idx));
    return 0;
}

int topic_grow_as(struct broker *b, struct topic *t, uint32_t n, const uint32_t *replicas)
{
    if (n <= t->nparts)
        return n == t->nparts ? 0 : -EINVAL;
    if (t->rf && !replicas)
        return -EINVAL;
    struct part **np = realloc(t->parts, n * sizeof(*np));
    if (!np)
        return -ENOMEM;
    t->parts = np;
    uint32_t old = t->nparts;
    int rc = 0;
    if (t->rf) {
        /* The placement first (lines past `partitions` are ignored), so
         * that every new partition knows its replicas when it opens. */
        uint32_t *ids = realloc(t->replicas, (size_t)n * t->rf * sizeof(*ids));
        if (!ids)
            return -ENOMEM;
        t->replicas = ids;
        memcpy(ids + (size_t)old * t->rf, replicas, (size_t)(n - old) * t->rf * sizeof(*ids));
        if ((rc = replicas_write(t->dir, n, t->rf, ids)) < 0)
            return rc;
    }
    /* New partitions count only once the topic file says so (meta_write
     * below): their files are synced together, once. */
    bool defer = n - old > 8;
    seg_sync_defer(defer);
    for (uint32_t i = old; i < n && rc == 0; i++) {
        rc = part_open(b, t, i, true, &t->parts[i]);
        if (rc == 0)
            t->nparts++;
    }
    seg_sync_defer(false);
    if (rc == 0 && defer)
        rc = sys_syncfs(t->dir);
    if (rc == 0)
        rc = meta_write(t->dir, t, n, &t->conf, &t->owner);
    if (rc < 0) {
        for (uint32_t i = old; i < t->nparts; i++)
            part_detach(t->parts[i]);
        t->nparts = old;
        remove_extra_parts(t->dir, old);
    }
    return rc;
}

int topic_set(struct broker *b, struct topic *t, const char *key, const char *value)
{
    int64_t v;
    if (!strcmp(key, "partitions")) {
        if (cfg_parse_i64(value, 1, MAX_PARTITIONS, &v) < 0 || (uint32_t)v < t->nparts)
            return -EINVAL;
        if (t->rf)
            return -EINVAL; /* a cluster grows with a placement (topic_grow_as) */
        return topic_grow_as(b, t, (uint32_t)v, NULL);
    }
    int idx = topic_config_index(key);
    if (idx < 0)
        return idx;
    if (topic_config_check(idx, value, &v) < 0)
        return -EINVAL;
    struct topic_config nc = t->conf;
    nc.v[idx] = v;
    nc.set |= 1u << idx;
    int rc = meta_write(t->dir, t, t->nparts, &nc, &t->owner);
    if (rc == 0)
        t->conf = nc;
    return rc;
}

int topic_set_owner(struct broker *b, struct topic *t, const struct mk_owner *o)
{
    (void)b;
    int rc = meta_write(t->dir, t, t->nparts, &t->conf, o);
    if (rc == 0)
        t->owner = *o;
    return rc;
}

int topic_unset(struct broker *b, struct topic *t, const char *key)
{
    (void)b;
    if (!strcmp(key, "partitions"))
        return -EPERM;
    int idx = topic_config_index(key);
    if (idx < 0)
        return idx;
    struct topic_config nc = t->conf;
    nc.set &= ~(1u << idx);
    int rc = meta_write(t->dir, t, t->nparts, &nc, &t->owner);
    if (rc == 0)
        t->conf = nc;
    return rc;
}
