/*
 * xattr — extended attributes: a topic's settings under their Kafka names
 * (user.retention.ms ...; writable), a partition's offsets, positions,
 * leader and term (read-only).  Errnos follow Linux file systems: a missing
 * name is ENODATA, XATTR_CREATE of an existing one EEXIST, a name that
 * cannot be created ENOTSUP.
 */
#include "fs/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

static const char *const part_attrs[] = {"user.offset.first",   "user.offset.next",
                                         "user.position.first", "user.leader",
                                         "user.replicas",       "user.isr",
                                         "user.term"};
#define NPART_ATTRS (sizeof(part_attrs) / sizeof(part_attrs[0]))

static int part_attr(const struct part *p, const char *name, char *buf, size_t n)
{
    struct part_info pi;
    part_info(p, &pi);
    uint64_t v;
    if (!strcmp(name, "user.offset.first"))
        v = pi.first_off;
    else if (!strcmp(name, "user.offset.next"))
        v = pi.next_off;
    else if (!strcmp(name, "user.position.first"))
        v = pi.first_pos;
    else if (!strcmp(name, "user.leader"))
        v = pi.leader;
    else if (!strcmp(name, "user.replicas") || !strcmp(name, "user.isr")) {
        part_list(p, name[5], buf, n);
        return 0;
    } else if (!strcmp(name, "user.term"))
        v = pi.term;
    else
        return -ENODATA;
    snprintf(buf, n, "%" PRIu64, v);
    return 0;
}

static void reply_value(fuse_req_t req, const char *val, size_t size)
{
    size_t len = strlen(val);
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, val, len);
}

void xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct fs *f = req_fs(req);
    struct node n = node_resolve(f, ino);
    char val[64];
    int rc = -ENODATA;
    if (n.kind == N_PART)
        rc = part_attr(n.p, name, val, sizeof(val));
    else if (n.kind == N_TOPIC && !strncmp(name, "user.", 5))
        rc = topic_get(f->b, n.t, name + 5, val, sizeof(val));
    else if (n.kind == N_NONE)
        rc = -ENOENT;
    if (rc == -ENOENT && n.kind != N_NONE)
        rc = -ENODATA;
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        reply_value(req, val, size);
}

void xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct fs *f = req_fs(req);
    struct node n = node_resolve(f, ino);
    char buf[512];
    size_t len = 0;
    if (n.kind == N_PART) {
        for (size_t i = 0; i < NPART_ATTRS; i++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s", part_attrs[i]) + 1;
    } else if (n.kind == N_TOPIC) {
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "user.partitions") + 1;
        for (int i = 0; i < TOPIC_NCONF; i++)
            len +=
                (size_t)snprintf(buf + len, sizeof(buf) - len, "user.%s", topic_config_names[i]) +
                1;
    } else if (n.kind == N_NONE) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, buf, len);
}

/* Why an attribute that is not a topic setting cannot be set or removed:
 * the node is gone, the attribute is a read-only partition one, or it does
 * not exist (`unknown`: ENOTSUP for set, ENODATA for remove). */
static int change_refused(const struct node *n, const char *name, int unknown)
{
    char tmp[64];
    if (n->kind == N_NONE)
        return -ENOENT;
    if (n->kind == N_PART && part_attr(n->p, name, tmp, sizeof(tmp)) == 0)
        return -EPERM;
    return unknown;
}

/* Topic settings always exist (they read back their effective value):
 * XATTR_CREATE of one is EEXIST.  Other names cannot be created (ENOTSUP),
 * and XATTR_REPLACE of a missing one is ENODATA, as on Linux file systems. */
/* A value as a string (size < n): copied, one trailing newline dropped
 * (setfattr -v "$(echo 5)" style). */
static void value_text(char *out, const char *value, size_t size)
{
    memcpy(out, value, size);
    out[size] = '\0';
    if (size && out[size - 1] == '\n')
        out[size - 1] = '\0';
}

void xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
               int flags)
{
    struct fs *f = req_fs(req);
    struct node n = node_resolve(f, ino);
    char val[64];
    int rc;
    if (n.kind == N_PART && !strcmp(name, "user.leader") && part_replicated(n.p)) {
        /* A leadership transfer (Kafka's preferred/manual election). */
        int64_t to;
        if (size >= sizeof(val) || (flags & XATTR_CREATE)) {
            rc = size >= sizeof(val) ? -EINVAL : -EEXIST;
        } else {
            value_text(val, value, size);
            rc = cfg_parse_i64(val, 1, INT32_MAX, &to) < 0 ? -EINVAL
                                                            : part_transfer(n.p, (uint32_t)to);
        }
        fuse_reply_err(req, -rc);
        return;
    }
    if (n.kind != N_TOPIC || strncmp(name, "user.", 5) != 0 ||
        topic_get(f->b, n.t, name + 5, val, sizeof(val)) < 0) {
        rc = change_refused(&n, name, flags & XATTR_REPLACE ? -ENODATA : -ENOTSUP);
    } else if (flags & XATTR_CREATE) {
        rc = -EEXIST;
    } else if (size >= sizeof(val)) {
        rc = -EINVAL;
    } else {
        value_text(val, value, size);
        struct broker_change_req r = {
            .kind = BC_SET, .topic = topic_name(n.t), .key = name + 5, .value = val};
        node_change(req, f, &r, CR_ERR, 0, ENODATA);
        return;
    }
    fuse_reply_err(req, -rc);
}

void xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct fs *f = req_fs(req);
    struct node n = node_resolve(f, ino);
    int rc;
    if (n.kind != N_TOPIC || strncmp(name, "user.", 5) != 0) {
        rc = change_refused(&n, name, -ENODATA);
    } else {
        struct broker_change_req r = {.kind = BC_UNSET, .topic = topic_name(n.t), .key = name + 5};
        node_change(req, f, &r, CR_ERR, 0, ENODATA);
        return;
    }
    fuse_reply_err(req, -rc);
}
