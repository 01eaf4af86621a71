/*
 * internal — the broker's own structures, shared by broker.c, topic.c and
 * partition.c only.  Nothing outside broker/ includes this.
 */
#ifndef MK_BROKER_INTERNAL_H
#define MK_BROKER_INTERNAL_H

#include "broker/broker.h"
#include "broker/plog.h"

#include <uv.h>

/* One caller waiting for its records to become durable. */
struct waiter {
    uint64_t end_pos; /* committed once commit_pos reaches this */
    part_done_cb cb;      /* one of the two */
    part_placed_cb pcb;   /* with first_off */
    uint64_t first_off;
    void *arg;
    struct waiter *next;
};

/* A background job (group-commit fdatasync or index checkpoint). */
struct part_job {
    uv_work_t work;
    struct part *p;
    struct plog_sync sync;
    uint64_t pos, off; /* what the job makes durable: end position, next offset */
    bool checkpoint;   /* also write the checkpoint file at `off` */
    int rc;
};

struct part {
    struct broker *b;
    struct pgroup *g; /* cluster: the partition's Raft group (pgroup.c) */
    bool local;       /* this node holds a replica: `log` is open */
    struct topic *t; /* NULL once the topic is deleted */
    uint32_t id;
    struct plog log;
    uint64_t term;
    uint64_t commit_pos, commit_off; /* readers see [first, commit) */
    int64_t mtime_ms, ctime_ms;
    struct waiter *wq_head, *wq_tail; /* FIFO, ascending end_pos */
    struct part_job sync;             /* group commit, when sync_busy */
    bool sync_busy;
    struct part_job flush; /* index checkpoint, when flush_busy */
    bool flush_busy;
    int refs;
    struct part_watch *watch; /* woken when the commit point moves */
    struct prodtab *prod;     /* a single node's idempotent producers (made on first use) */
    uint64_t damaged;     /* entries found failing their checks (part_damaged) */
    uint64_t damage_last; /* offset + 1 of the last one logged */
};

struct topic {
    char *name;
    char *dir; /* DATA/topics/NAME */
    uint64_t id;
    int64_t created_ms;
    struct mk_owner owner;
    struct topic_config conf;
    uint32_t nparts;
    struct part **parts;
    uint32_t rf;        /* cluster: replicas per partition (0: single node) */
    uint32_t *replicas; /* cluster: nparts * rf node ids, preferred leader first */
};

struct broker {
    uv_loop_t *loop;
    struct mk_config cfg;
    char *data_dir, *topics_dir, *trash_dir;
    int lock_fd;
    uint64_t next_topic_id;
    struct mk_owner root;
    bool root_set;           /* root owner/mode chosen by chmod/chown: kept in meta */
    char *meta_text;         /* what DATA/meta holds now (rewritten only on change) */
    uint64_t cluster_id;     /* with peers: fixed at the first start (meta) */
    uint64_t incarnation;    /* this data dir's id: random at its creation (meta) */
    bool fresh;              /* the data dir had no meta file at this start */
    uint64_t peer_inc[MK_MAX_PEERS]; /* the incarnation last seen of cfg.peers[i] */
    struct cluster *cluster; /* with peers, once started */
    struct groups *groups;   /* consumer groups, once started */
    struct topic **topics;
    size_t ntopics, cap;
    uv_timer_t timer;
    bool quiescing;
    int jobs; /* background jobs in flight */
    int64_t started_ms;
    struct broker_recovery rec;
    /* the background scrub (broker.c) */
    size_t scrub_topic;
    uint32_t scrub_part;
    size_t scrub_clean;     /* partitions found wholly checked in a row */
    int64_t scrub_rest_ms;  /* resting until then after a pass */
    uint64_t scrub_passes, scrub_bytes;
    char kafka_host[256];          /* broker_set_kafka */
    uint16_t kafka_port;
    char *(*status_fn)(void *arg); /* a front end's lines for .cluster */
    void *status_arg;
};

/* partition.c */
/* The commit point moved (or p went away): wakes every watch. */
void part_notify(struct part *p);
int part_open(struct broker *b, struct topic *t, uint32_t id, bool create, struct part **out);
void part_detach(struct part *p); /* topic deleted: fail waiters, drop topic's ref */
void part_housekeep(struct part *p, int64_t now_ms);
/* Checks up to *budget more bytes of p's log that were not checked since
 * open (or since part_scrub_reset), counting them off *budget and into
 * *checked.  1 once everything is checked (or the rest is damaged: logged,
 * and in a cluster repaired), else 0. */
int part_scrub(struct part *p, int64_t *budget, uint64_t *checked);
/* Forgets what was checked: the next pass checks everything again. */
void part_scrub_reset(struct part *p);
void part_final_flush(struct part *p);

/* topic.c */
/* topic_create with a given id (the metadata group's: its record's offset
 * + 1) and partition count.  -EEXIST when the name or the id is taken. */
int topic_create_as(struct broker *b, const char *name, uint64_t id, const struct mk_owner *own,
                    uint32_t nparts, uint32_t rf, const uint32_t *replicas, struct topic **out);
/* Grows t to n partitions; replicas: the new partitions' (rf each), or
 * NULL on a single node. */
int topic_grow_as(struct broker *b, struct topic *t, uint32_t n, const uint32_t *replicas);
/* Whether node `id` holds a replica of partition i of t (always true on a
 * single node). */
bool topic_has_replica(const struct topic *t, uint32_t i, uint32_t id);
int topic_load(struct broker *b, const char *name, struct topic **out);
void topic_free(struct topic *t);

/* broker.c */
/* The incarnation last seen of peer id (0: none), and recording a new one
 * (persisted in meta). */
uint64_t broker_peer_incarnation(const struct broker *b, uint32_t id);
int broker_set_peer_incarnation(struct broker *b, uint32_t id, uint64_t inc);
int broker_write_meta(struct broker *b);
void broker_job_start(struct broker *b);
void broker_job_end(struct broker *b);

#endif
