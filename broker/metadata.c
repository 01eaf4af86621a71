/*
 * metadata — see metadata.h.
 */
#include "broker/metadata.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [META_CREATE] = "create", [META_DELETE] = "delete", [META_GROW] = "grow", [META_SET] = "set",
    [META_UNSET] = "unset",   [META_OWNER] = "owner",   [META_ROOT] = "root",
};

void meta_op_free(struct meta_op *op)
{
    free(op->replicas);
    op->replicas = NULL;
    op->nreplicas = 0;
}

/* ------------------------------------------------------------ encoding */

static void put_replicas(FILE *f, const struct meta_op *op, uint32_t rf)
{
    fputs(" replicas=", f);
    for (size_t i = 0; i < op->nreplicas; i++) {
        if (i)
            fputc(i % rf ? ',' : '/', f);
        fprintf(f, "%" PRIu32, op->replicas[i]);
    }
}

int meta_op_encode(const struct meta_op *op, char **out, size_t *len)
{
    if (op->kind < META_CREATE || op->kind > META_ROOT)
        return -EINVAL;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return -ENOMEM;
    fputs(kind_names[op->kind], f);
    if (op->kind != META_ROOT)
        fprintf(f, " topic=%s", op->topic);
    if (op->kind != META_CREATE && op->kind != META_ROOT)
        fprintf(f, " id=%" PRIu64, op->id);
    switch (op->kind) {
    case META_CREATE:
        fprintf(f, " partitions=%" PRIu32 " rf=%" PRIu32, op->partitions, op->rf);
        put_replicas(f, op, op->rf);
        break;
    case META_GROW:
        fprintf(f, " partitions=%" PRIu32, op->partitions);
        put_replicas(f, op, op->rf);
        break;
    case META_SET:
        fprintf(f, " key=%s value=%s", op->key, op->value);
        break;
    case META_UNSET:
        fprintf(f, " key=%s", op->key);
        break;
    default:
        break;
    }
    if (op->kind == META_CREATE || op->kind == META_OWNER || op->kind == META_ROOT)
        fprintf(f, " uid=%" PRIu32 " gid=%" PRIu32 " mode=%04o", op->uid, op->gid,
                (unsigned)op->mode);
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    if (n > META_LINE_MAX) {
        free(buf);
        return -EMSGSIZE;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------ decoding */

/* A cursor over one line: fields "name=value" separated by single blanks. */
struct cur {
    const char *p, *end;
    bool bad;
};

/* The value of the next field, which must be `name`; copied (NUL-ended)
 * into buf of n bytes. */
static void field(struct cur *c, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    buf[0] = '\0';
    if (c->bad || c->p >= c->end || *c->p != ' ' || (size_t)(c->end - c->p - 1) < nl + 1 ||
        memcmp(c->p + 1, name, nl) != 0 || c->p[1 + nl] != '=') {
        c->bad = true;
        return;
    }
    const char *v = c->p + 2 + nl, *e = v;
    while (e < c->end && *e != ' ')
        e++;
    if (e == v || (size_t)(e - v) >= n) {
        c->bad = true;
        return;
    }
    memcpy(buf, v, (size_t)(e - v));
    buf[e - v] = '\0';
    c->p = e;
}

static uint64_t num(struct cur *c, const char *name, int64_t min, int64_t max)
{
    char buf[24];
    int64_t v = 0;
    field(c, name, buf, sizeof(buf));
    if (!c->bad && cfg_parse_i64(buf, min, max, &v) < 0)
        c->bad = true;
    return (uint64_t)v;
}

static void owner(struct cur *c, struct meta_op *op)
{
    op->uid = (uint32_t)num(c, "uid", 0, UINT32_MAX);
    op->gid = (uint32_t)num(c, "gid", 0, UINT32_MAX);
    char buf[8];
    field(c, "mode", buf, sizeof(buf));
    if (!c->bad && cfg_parse_mode(buf, &op->mode) < 0)
        c->bad = true;
}

/* "A,B,C/D,E,F/..." into op->replicas; every list of the same length,
 * which becomes op->rf when it is 0 (grow) or must equal it (create). */
static void replicas(struct cur *c, struct meta_op *op)
{
    static const char name[] = " replicas=";
    size_t nl = sizeof(name) - 1;
    if (c->bad || (size_t)(c->end - c->p) <= nl || memcmp(c->p, name, nl) != 0) {
        c->bad = true;
        return;
    }
    const char *p = c->p + nl;
    size_t cap = 16, n = 0, in_list = 0;
    uint32_t *v = malloc(cap * sizeof(*v)), want = op->rf;
    if (!v) {
        c->bad = true;
        return;
    }
    for (;;) {
        uint64_t x = 0;
        const char *d = p;
        while (p < c->end && *p >= '0' && *p <= '9' && p - d < 10)
            x = x * 10 + (uint64_t)(*p++ - '0');
        if (p == d || x == 0 || x > INT32_MAX)
            goto bad;
        if (n == cap) {
            uint32_t *nv = realloc(v, 2 * cap * sizeof(*v));
            if (!nv)
                goto bad;
            v = nv;
            cap *= 2;
        }
        v[n++] = (uint32_t)x;
        in_list++;
        char sep = p < c->end ? *p : ' ';
        if (sep == ',') {
            p++;
            continue;
        }
        /* A list ends: all the same length. */
        if (want == 0)
            want = (uint32_t)in_list;
        if (in_list != want || want > META_MAX_RF)
            goto bad;
        for (size_t i = n - in_list; i < n; i++) /* distinct nodes */
            for (size_t k = i + 1; k < n; k++)
                if (v[i] == v[k])
                    goto bad;
        in_list = 0;
        if (sep == '/') {
            p++;
            continue;
        }
        break;
    }
    op->replicas = v;
    op->nreplicas = n;
    op->rf = want;
    c->p = p;
    return;
bad:
    free(v);
    c->bad = true;
}

int meta_op_decode(const char *line, size_t len, struct meta_op *op)
{
    memset(op, 0, sizeof(*op));
    if (len == 0 || len > META_LINE_MAX || line[len - 1] != '\n' || memchr(line, '\0', len))
        return -EBADMSG;
    struct cur c = {.p = line, .end = line + len - 1};
    const char *sp = memchr(line, ' ', (size_t)(c.end - line));
    size_t kl = sp ? (size_t)(sp - line) : 0;
    for (int k = META_CREATE; k <= META_ROOT; k++)
        if (kl == strlen(kind_names[k]) && !memcmp(line, kind_names[k], kl))
            op->kind = (enum meta_kind)k;
    if (!op->kind)
        return -EBADMSG;
    c.p = sp;
    if (op->kind != META_ROOT) {
        field(&c, "topic", op->topic, sizeof(op->topic));
        if (!c.bad && topic_name_check(op->topic) < 0)
            c.bad = true;
    }
    if (op->kind != META_CREATE && op->kind != META_ROOT)
        op->id = num(&c, "id", 1, INT64_MAX);
    int idx = -1;
    int64_t v;
    switch (op->kind) {
    case META_CREATE:
        op->partitions = (uint32_t)num(&c, "partitions", 1, META_MAX_PARTS);
        op->rf = (uint32_t)num(&c, "rf", 1, META_MAX_RF);
        replicas(&c, op);
        if (!c.bad && op->nreplicas != (size_t)op->partitions * op->rf)
            c.bad = true;
        owner(&c, op);
        break;
    case META_GROW:
        op->partitions = (uint32_t)num(&c, "partitions", 1, META_MAX_PARTS);
        replicas(&c, op);
        break;
    case META_SET:
    case META_UNSET:
        field(&c, "key", op->key, sizeof(op->key));
        if (!c.bad && (idx = topic_config_index(op->key)) < 0)
            c.bad = true;
        if (op->kind == META_SET) {
            field(&c, "value", op->value, sizeof(op->value));
            if (!c.bad && topic_config_check(idx, op->value, &v) < 0)
                c.bad = true;
        }
        break;
    case META_OWNER:
    case META_ROOT:
        owner(&c, op);
        break;
    default:
        break;
    }
    if (c.bad || c.p != c.end) {
        meta_op_free(op);
        return -EBADMSG;
    }
    return 0;
}

/* ------------------------------------------------------------ placement */

void meta_place(const uint32_t *ids, size_t nn, uint32_t rf, uint64_t id, uint32_t first,
                uint32_t n, uint32_t *out)
{
    if (rf > nn)
        rf = (uint32_t)nn;
    for (uint32_t p = 0; p < n; p++)
        for (uint32_t r = 0; r < rf; r++)
            out[(size_t)p * rf + r] = ids[(id + first + p + r) % nn];
}

/* ------------------------------------------------------------ rules */

static bool valid_replicas(const struct meta_op *op, const uint32_t *nodes, size_t nn)
{
    if (op->rf == 0 || op->rf > nn)
        return false;
    for (size_t i = 0; i < op->nreplicas; i++) {
        bool found = false;
        for (size_t k = 0; k < nn && !found; k++)
            found = nodes[k] == op->replicas[i];
        if (!found)
            return false;
    }
    return true;
}

int meta_check(const struct meta_view *v, const struct meta_op *op, const uint32_t *nodes,
               size_t nn)
{
    switch (op->kind) {
    case META_CREATE:
        if (v->find(v->ctx, op->topic))
            return -EEXIST;
        if (op->nreplicas != (size_t)op->partitions * op->rf || !valid_replicas(op, nodes, nn))
            return -EINVAL;
        return 0;
    case META_ROOT:
        return 0;
    default:
        break;
    }
    if (v->find(v->ctx, op->topic) != op->id)
        return -ENOENT;
    if (op->kind == META_GROW) {
        uint32_t now = v->partitions(v->ctx, op->id);
        if (op->partitions <= now || op->nreplicas != (size_t)(op->partitions - now) * op->rf ||
            !valid_replicas(op, nodes, nn))
            return -EINVAL;
    }
    return 0;
}
