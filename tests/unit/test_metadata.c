/*
 * test_metadata — the metadata group's records: every operation round-trips
 * through its text line, every malformed line is refused, placement spreads
 * replicas and preferred leaders evenly, and the apply rules answer the same
 * errno for the same history (create of a live name, operations on a topic
 * that was deleted or replaced, partitions that do not grow, replicas on
 * nodes that do not exist).
 */
#include "broker/metadata.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int decode(const char *s, struct meta_op *op)
{
    return meta_op_decode(s, strlen(s), op);
}

/* Encodes op, decodes the line, and checks the line equals `want`. */
static void round_trip(const struct meta_op *op, const char *want, struct meta_op *back)
{
    char *line;
    size_t len;
    cr_assert_eq(meta_op_encode(op, &line, &len), 0);
    cr_assert_str_eq(line, want);
    cr_assert_eq(decode(line, back), 0, "its own line refused: %s", line);
    free(line);
}

Test(metadata, create_round_trips)
{
    uint32_t reps[6] = {1, 2, 2, 3, 3, 1};
    struct meta_op op = {.kind = META_CREATE,
                         .partitions = 3,
                         .rf = 2,
                         .replicas = reps,
                         .nreplicas = 6,
                         .uid = 1000,
                         .gid = 100,
                         .mode = 0750};
    strcpy(op.topic, "orders");
    struct meta_op b;
    round_trip(&op,
               "create topic=orders partitions=3 rf=2 replicas=1,2/2,3/3,1 uid=1000 gid=100 "
               "mode=0750\n",
               &b);
    cr_assert_eq(b.kind, META_CREATE);
    cr_assert_str_eq(b.topic, "orders");
    cr_assert_eq(b.partitions, 3);
    cr_assert_eq(b.rf, 2);
    cr_assert_eq(b.nreplicas, 6);
    cr_assert_eq(memcmp(b.replicas, reps, sizeof(reps)), 0);
    cr_assert_eq(b.uid, 1000);
    cr_assert_eq(b.mode, 0750);
    meta_op_free(&b);
}

Test(metadata, every_other_operation_round_trips)
{
    struct meta_op b;
    struct meta_op del = {.kind = META_DELETE, .id = 7};
    strcpy(del.topic, "a.b-c_d");
    round_trip(&del, "delete topic=a.b-c_d id=7\n", &b);
    cr_assert_eq(b.id, 7);

    uint32_t reps[3] = {3, 1, 2};
    struct meta_op grow = {
        .kind = META_GROW, .id = 7, .partitions = 4, .rf = 3, .replicas = reps, .nreplicas = 3};
    strcpy(grow.topic, "t");
    round_trip(&grow, "grow topic=t id=7 partitions=4 replicas=3,1,2\n", &b);
    cr_assert_eq(b.rf, 3);
    cr_assert_eq(b.nreplicas, 3);
    meta_op_free(&b);

    struct meta_op set = {.kind = META_SET, .id = 2};
    strcpy(set.topic, "t");
    strcpy(set.key, "retention.ms");
    strcpy(set.value, "9223372036854775807");
    round_trip(&set, "set topic=t id=2 key=retention.ms value=9223372036854775807\n", &b);
    cr_assert_str_eq(b.value, "9223372036854775807");

    struct meta_op unset = {.kind = META_UNSET, .id = 2};
    strcpy(unset.topic, "t");
    strcpy(unset.key, "segment.bytes");
    round_trip(&unset, "unset topic=t id=2 key=segment.bytes\n", &b);

    struct meta_op own = {.kind = META_OWNER, .id = 2, .uid = 65534, .gid = 65534, .mode = 01777};
    strcpy(own.topic, "t");
    round_trip(&own, "owner topic=t id=2 uid=65534 gid=65534 mode=1777\n", &b);
    cr_assert_eq(b.mode, 01777);

    struct meta_op root = {.kind = META_ROOT, .uid = 0, .gid = 0, .mode = 0755};
    round_trip(&root, "root uid=0 gid=0 mode=0755\n", &b);
}

Test(metadata, malformed_lines_are_refused)
{
    static const char *const bad[] = {
        "",
        "\n",
        "create topic=orders partitions=3 rf=2 replicas=1,2/2,3/3,1 uid=0 gid=0 mode=0755",
        "create topic=orders rf=2 partitions=3 replicas=1,2/2,3/3,1 uid=0 gid=0 mode=0755\n",
        "create topic=orders partitions=3 rf=2 replicas=1,2/2,3 uid=0 gid=0 mode=0755\n",
        "create topic=orders partitions=2 rf=2 replicas=1,2/2 uid=0 gid=0 mode=0755\n",
        "create topic=orders partitions=1 rf=2 replicas=1,1 uid=0 gid=0 mode=0755\n",
        "create topic=orders partitions=1 rf=1 replicas=0 uid=0 gid=0 mode=0755\n",
        "create topic=or/ders partitions=1 rf=1 replicas=1 uid=0 gid=0 mode=0755\n",
        "create topic=.hidden partitions=1 rf=1 replicas=1 uid=0 gid=0 mode=0755\n",
        "create topic=t partitions=0 rf=1 replicas= uid=0 gid=0 mode=0755\n",
        "create topic=t partitions=1 rf=1 replicas=1 uid=0 gid=0 mode=0758\n",
        "create topic=t partitions=1 rf=1 replicas=1 uid=0 gid=0 mode=0755 extra=1\n",
        "create  topic=t partitions=1 rf=1 replicas=1 uid=0 gid=0 mode=0755\n",
        "delete topic=t\n",
        "delete topic=t id=0\n",
        "delete topic=t id=-3\n",
        "delete topic=t id=99999999999999999999\n",
        "set topic=t id=1 key=no.such value=1\n",
        "set topic=t id=1 key=retention.ms value=forever\n",
        "unset topic=t id=1\n",
        "grow topic=t id=1 partitions=2 replicas=1,2/3\n",
        "root uid=0 gid=0\n",
        "drop topic=t id=1\n",
        "delete topic=t id=1\nroot uid=0 gid=0 mode=0755\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct meta_op op;
        cr_assert_eq(decode(bad[i], &op), -EBADMSG, "accepted: [%s]", bad[i]);
        cr_assert_null(op.replicas);
    }
    /* A NUL inside a line. */
    struct meta_op op;
    cr_assert_eq(meta_op_decode("delete topic=t\0 id=1\n", 21, &op), -EBADMSG);
}

Test(metadata, placement_spreads_replicas_and_leaders_evenly)
{
    uint32_t ids[3] = {1, 2, 3};
    enum { TOPICS = 7, PARTS = 5, RF = 3 };
    unsigned replicas[4] = {0}, leaders[4] = {0};
    for (uint64_t t = 1; t <= TOPICS; t++) {
        uint32_t out[PARTS * RF];
        meta_place(ids, 3, RF, t, 0, PARTS, out);
        for (int p = 0; p < PARTS; p++) {
            leaders[out[p * RF]]++;
            for (int r = 0; r < RF; r++) {
                replicas[out[p * RF + r]]++;
                for (int k = r + 1; k < RF; k++)
                    cr_assert_neq(out[p * RF + r], out[p * RF + k],
                                  "a node twice in one partition");
            }
        }
    }
    for (int n = 1; n <= 3; n++)
        cr_assert_eq(replicas[n], TOPICS * PARTS, "every node holds every partition at RF 3");
    unsigned lo = leaders[1], hi = leaders[1];
    for (int n = 2; n <= 3; n++) {
        lo = leaders[n] < lo ? leaders[n] : lo;
        hi = leaders[n] > hi ? leaders[n] : hi;
    }
    cr_assert_leq(hi - lo, 1, "preferred leaders spread within one: %u..%u", lo, hi);
}

Test(metadata, placement_with_more_nodes_than_rf_is_even_and_growth_continues_it)
{
    uint32_t ids[5] = {1, 2, 3, 4, 5};
    unsigned replicas[6] = {0};
    uint32_t out[10 * 3];
    meta_place(ids, 5, 3, 42, 0, 10, out);
    for (int i = 0; i < 30; i++)
        replicas[out[i]]++;
    for (int n = 1; n <= 5; n++)
        cr_assert_eq(replicas[n], 6);
    /* Partitions 10..11 placed later continue the same rotation. */
    uint32_t more[2 * 3], all[12 * 3];
    meta_place(ids, 5, 3, 42, 10, 2, more);
    meta_place(ids, 5, 3, 42, 0, 12, all);
    cr_assert_eq(memcmp(more, all + 30, sizeof(more)), 0);
    /* rf is capped at the node count. */
    uint32_t two[2];
    meta_place(ids, 2, 3, 1, 0, 1, two);
    cr_assert_neq(two[0], two[1]);
}

/* ------------------------------------------------------------ rules */

struct fake {
    const char *name;
    uint64_t id;
    uint32_t parts;
};
static struct fake topics[4];

static uint64_t fake_find(void *ctx, const char *name)
{
    (void)ctx;
    for (int i = 0; i < 4; i++)
        if (topics[i].name && !strcmp(topics[i].name, name))
            return topics[i].id;
    return 0;
}

static uint32_t fake_parts(void *ctx, uint64_t id)
{
    (void)ctx;
    for (int i = 0; i < 4; i++)
        if (topics[i].id == id)
            return topics[i].parts;
    return 0;
}

static const struct meta_view view = {.find = fake_find, .partitions = fake_parts};
static const uint32_t nodes[3] = {1, 2, 3};

static int check(const char *line)
{
    struct meta_op op;
    cr_assert_eq(decode(line, &op), 0, "line refused: %s", line);
    int rc = meta_check(&view, &op, nodes, 3);
    meta_op_free(&op);
    return rc;
}

Test(metadata, rules_give_every_node_the_same_answer)
{
    memset(topics, 0, sizeof(topics));
    topics[0] = (struct fake){"orders", 5, 3};
    cr_assert_eq(check("create topic=orders partitions=1 rf=1 replicas=1 uid=0 gid=0 mode=0755\n"),
                 -EEXIST);
    cr_assert_eq(check("create topic=new partitions=1 rf=3 replicas=1,2,3 uid=0 gid=0 mode=0755\n"),
                 0);
    cr_assert_eq(check("create topic=new partitions=1 rf=1 replicas=4 uid=0 gid=0 mode=0755\n"),
                 -EINVAL, "a replica on a node that does not exist");
    cr_assert_eq(check("delete topic=orders id=5\n"), 0);
    cr_assert_eq(check("delete topic=orders id=4\n"), -ENOENT, "an older topic of that name");
    cr_assert_eq(check("delete topic=gone id=9\n"), -ENOENT);
    cr_assert_eq(check("set topic=orders id=5 key=retention.ms value=1000\n"), 0);
    cr_assert_eq(check("grow topic=orders id=5 partitions=5 replicas=1,2/2,3\n"), 0);
    cr_assert_eq(check("grow topic=orders id=5 partitions=3 replicas=1,2\n"), -EINVAL,
                 "partitions that do not grow");
    cr_assert_eq(check("grow topic=orders id=5 partitions=5 replicas=1,2\n"), -EINVAL,
                 "replicas for one of two new partitions");
    cr_assert_eq(check("root uid=0 gid=0 mode=1777\n"), 0);
}
