/*
 * test_config — mount options under Kafka's names (cfg_set), per-topic
 * settings (topic_config_*) and Kafka's topic name rule (topic_name_check).
 */
#include "broker/config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static struct mk_config cfg;

static void setup(void)
{
    memset(&cfg, 0x5a, sizeof(cfg));
    cfg_defaults(&cfg);
}

static void teardown(void) {}

TestSuite(config, .init = setup, .fini = teardown);

/* ------------------------------------------------------------ topic names */

Test(config, topic_names_of_kafka_characters_are_accepted)
{
    static const char *ok[] = {"orders", "a", "A.b_c-D9", "x..y", "9", "-", "_"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_assert_eq(topic_name_check(ok[i]), 0, "refused \"%s\"", ok[i]);
}

Test(config, topic_names_outside_the_rule_are_einval)
{
    static const char *bad[] = {"",    ".", "..",  ".cluster", "a/b", "a b",
                                "a\n", "é", "a:b", "a*",       "a\t", "topic!"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(topic_name_check(bad[i]), -EINVAL, "accepted \"%s\"", bad[i]);
}

Test(config, topic_name_of_249_chars_passes_250_is_too_long)
{
    char name[251];
    memset(name, 'n', 250);
    name[249] = '\0';
    cr_assert_eq(topic_name_check(name), 0);
    name[249] = 'n';
    name[250] = '\0';
    cr_assert_eq(topic_name_check(name), -ENAMETOOLONG);
}

/* ----------------------------------------------------------------- options */

Test(config, defaults_are_kafkas)
{
    cr_assert_eq(cfg.num_partitions, 1);
    cr_assert_eq(cfg.segment_bytes, 1LL << 30);
    cr_assert_eq(cfg.segment_ms, 7LL * 24 * 3600 * 1000);
    cr_assert_eq(cfg.retention_ms, 7LL * 24 * 3600 * 1000);
    cr_assert_eq(cfg.retention_bytes, -1);
    cr_assert_eq(cfg.message_max_bytes, 1048588);
    cr_assert_eq(cfg.fsync, MK_FSYNC_ALWAYS);
    cr_assert_eq(cfg.node_id, 1);
}

Test(config, valid_values_are_set)
{
    const char *why = NULL;
    cr_assert_eq(cfg_set(&cfg, "num.partitions", "3", &why), 0);
    cr_assert_eq(cfg_set(&cfg, "log.segment.bytes", "64", &why), 0);
    cr_assert_eq(cfg_set(&cfg, "log.segment.ms", "1000", &why), 0);
    cr_assert_eq(cfg_set(&cfg, "log.retention.ms", "-1", &why), 0);
    cr_assert_eq(cfg_set(&cfg, "log.retention.bytes", "0", &why), 0);
    cr_assert_eq(cfg_set(&cfg, "message.max.bytes", "67108864", &why), 0);
    cr_assert_eq(cfg_set(&cfg, "fsync", "never", &why), 0);
    cr_assert_eq(cfg_set(&cfg, "node.id", "0", &why), 0);
    cr_assert_eq(cfg.num_partitions, 3);
    cr_assert_eq(cfg.segment_bytes, 64);
    cr_assert_eq(cfg.segment_ms, 1000);
    cr_assert_eq(cfg.retention_ms, -1);
    cr_assert_eq(cfg.retention_bytes, 0);
    cr_assert_eq(cfg.message_max_bytes, 64u << 20);
    cr_assert_eq(cfg.fsync, MK_FSYNC_NEVER);
    cr_assert_eq(cfg.node_id, 0);
    cr_assert_eq(cfg_set(&cfg, "fsync", "always", NULL), 0);
    cr_assert_eq(cfg.fsync, MK_FSYNC_ALWAYS);
}

Test(config, invalid_values_are_einval_and_change_nothing)
{
    static const struct {
        const char *key, *value;
    } bad[] = {
        {"num.partitions", "0"},
        {"num.partitions", "100001"},
        {"num.partitions", "3x"},
        {"num.partitions", ""},
        {"log.segment.bytes", "63"},
        {"log.segment.bytes", "1099511627777"},
        {"log.segment.ms", "0"},
        {"log.retention.ms", "-2"},
        {"log.retention.bytes", "-2"},
        {"log.retention.bytes", "1e9"},
        {"message.max.bytes", "0"},
        {"message.max.bytes", "67108865"},
        {"fsync", "sometimes"},
        {"fsync", ""},
        {"node.id", "-1"},
        {"node.id", "2147483648"},
        {"num.partitions", "99999999999999999999999"},
    };
    struct mk_config before = cfg;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        cr_assert_eq(cfg_set(&cfg, bad[i].key, bad[i].value, &why), -EINVAL, "%s=%s accepted",
                     bad[i].key, bad[i].value);
        cr_assert_not_null(why, "%s=%s: no explanation", bad[i].key, bad[i].value);
        cr_assert_eq(memcmp(&before, &cfg, sizeof(cfg)), 0, "%s=%s changed the config", bad[i].key,
                     bad[i].value);
    }
}

Test(config, unknown_key_is_enoent)
{
    struct mk_config before = cfg;
    cr_assert_eq(cfg_set(&cfg, "log.retention.hours", "1", NULL), -ENOENT);
    cr_assert_eq(cfg_set(&cfg, "allow_other", "", NULL), -ENOENT);
    cr_assert_eq(memcmp(&before, &cfg, sizeof(cfg)), 0);
}

Test(config, parse_i64_takes_the_whole_string_within_bounds)
{
    int64_t v = 0;
    cr_assert_eq(cfg_parse_i64("-5", -5, 5, &v), 0);
    cr_assert_eq(v, -5);
    cr_assert_eq(cfg_parse_i64("6", -5, 5, &v), -EINVAL);
    cr_assert_eq(cfg_parse_i64("5 ", -5, 5, &v), -EINVAL);
    cr_assert_eq(cfg_parse_i64(NULL, -5, 5, &v), -EINVAL);
    cr_assert_eq(cfg_parse_i64("9223372036854775808", 0, INT64_MAX, &v), -EINVAL);
    cr_assert_eq(v, -5);
}

/* "the whole string" (config.h): no blanks or signs that strtoll would skip. */
Test(config, parse_i64_refuses_leading_blanks)
{
    int64_t v = 7;
    cr_assert_eq(cfg_parse_i64(" 3", 0, 10, &v), -EINVAL);
    cr_assert_eq(cfg_parse_i64("\t3", 0, 10, &v), -EINVAL);
    cr_assert_eq(cfg_set(&cfg, "num.partitions", " 3", NULL), -EINVAL);
    cr_assert_eq(v, 7);
}

/* --------------------------------------------------------- topic settings */

Test(config, topic_setting_names_are_kafkas)
{
    cr_assert_eq(topic_config_index("retention.ms"), TOPIC_RETENTION_MS);
    cr_assert_eq(topic_config_index("retention.bytes"), TOPIC_RETENTION_BYTES);
    cr_assert_eq(topic_config_index("segment.bytes"), TOPIC_SEGMENT_BYTES);
    cr_assert_eq(topic_config_index("segment.ms"), TOPIC_SEGMENT_MS);
    cr_assert_eq(topic_config_index("partitions"), -ENOENT);
    cr_assert_eq(topic_config_index("log.retention.ms"), -ENOENT);
}

Test(config, topic_setting_values_are_checked)
{
    int64_t v;
    cr_assert_eq(topic_config_check(TOPIC_RETENTION_MS, "-1", &v), 0);
    cr_assert_eq(v, -1);
    cr_assert_eq(topic_config_check(TOPIC_RETENTION_BYTES, "-2", &v), -EINVAL);
    cr_assert_eq(topic_config_check(TOPIC_SEGMENT_BYTES, "63", &v), -EINVAL);
    cr_assert_eq(topic_config_check(TOPIC_SEGMENT_BYTES, "64", &v), 0);
    cr_assert_eq(topic_config_check(TOPIC_SEGMENT_MS, "0", &v), -EINVAL);
    cr_assert_eq(topic_config_check(TOPIC_NCONF, "1", &v), -ENOENT);
}

Test(config, topic_override_wins_over_the_mount_default)
{
    struct topic_config tc = {0};
    cr_assert_eq(topic_config_get(&tc, &cfg, TOPIC_SEGMENT_BYTES), cfg.segment_bytes);
    cr_assert_eq(topic_config_get(NULL, &cfg, TOPIC_RETENTION_MS), cfg.retention_ms);
    tc.v[TOPIC_SEGMENT_BYTES] = 4096;
    cr_assert_eq(topic_config_get(&tc, &cfg, TOPIC_SEGMENT_BYTES), cfg.segment_bytes,
                 "a value without its `set` bit is no override");
    tc.set |= 1u << TOPIC_SEGMENT_BYTES;
    cr_assert_eq(topic_config_get(&tc, &cfg, TOPIC_SEGMENT_BYTES), 4096);
    cr_assert_eq(topic_config_get(&tc, &cfg, TOPIC_SEGMENT_MS), cfg.segment_ms);
    cr_assert_eq(topic_config_get(&tc, &cfg, TOPIC_RETENTION_BYTES), cfg.retention_bytes);
}

/* Kafka's retention.ms, retention.bytes and segment.ms are Longs: every
 * value it accepts is accepted here, Long.MAX included. */
Test(config, kafkas_long_max_is_accepted)
{
    int64_t v;
    const char *max = "9223372036854775807";
    cr_assert_eq(topic_config_check(TOPIC_RETENTION_MS, max, &v), 0);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(topic_config_check(TOPIC_RETENTION_BYTES, max, &v), 0);
    cr_assert_eq(topic_config_check(TOPIC_SEGMENT_MS, max, &v), 0);
    cr_assert_eq(cfg_set(&cfg, "log.retention.ms", max, NULL), 0);
    cr_assert_eq(cfg.retention_ms, INT64_MAX);
    cr_assert_eq(cfg_set(&cfg, "log.retention.bytes", max, NULL), 0);
    cr_assert_eq(cfg_set(&cfg, "log.segment.ms", max, NULL), 0);
    cr_assert_eq(cfg.segment_ms, INT64_MAX);
}

Test(config, modes_are_octal_up_to_07777)
{
    uint32_t m;
    cr_assert_eq(cfg_parse_mode("0755", &m), 0);
    cr_assert_eq(m, 0755);
    cr_assert_eq(cfg_parse_mode("1777", &m), 0);
    cr_assert_eq(m, 01777);
    cr_assert_eq(cfg_parse_mode("17777", &m), -EINVAL);
    cr_assert_eq(cfg_parse_mode("0758", &m), -EINVAL);
    cr_assert_eq(cfg_parse_mode("", &m), -EINVAL);
    cr_assert_eq(cfg_parse_mode(" 755", &m), -EINVAL);
}
