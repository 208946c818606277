/*
 * Unit tests of the nng transport's [transport.nng] keys
 * (plugins/nng/nngt_config.c) and of its event topics
 * (plugins/nng/nngt_topic.c): what each listen line allows, every way a
 * line is refused and the reason given, and that a room's topic is
 * matched by prefix by that room alone.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nngt.h"

static struct nngt_config cfg;
static char why[256];

static void
setup(void)
{
    nngt_config_defaults(&cfg);
    why[0] = '\0';
}

static void
teardown(void)
{
    nngt_config_free(&cfg);
}

static torpor_err
set(const char *key, const char *value)
{
    why[0] = '\0';
    return nngt_config_set(&cfg, key, value, why, sizeof(why));
}

/* refused asserts that key = value is refused with why holding words. */
static void
refused(const char *key, const char *value, const char *words)
{
    size_t before = cfg.naddrs;

    ck_assert_int_eq(set(key, value), TORPOR_EINVAL);
    ck_assert_msg(strstr(why, words) != NULL, "reason \"%s\" lacks \"%s\"",
                  why, words);
    ck_assert_uint_eq(cfg.naddrs, before);
}

/* A rep line keeps its pattern, address and exactly the listed ops. */
START_TEST(test_config_rep_line)
{
    ck_assert_int_eq(set("listen.ops", "rep tcp://127.0.0.1:7450 publish, inspect,storage_read"), TORPOR_OK);
    ck_assert_uint_eq(cfg.naddrs, 1);
    ck_assert_str_eq(cfg.addrs[0].key, "listen.ops");
    ck_assert_int_eq(cfg.addrs[0].pattern, NNGT_REP);
    ck_assert_str_eq(cfg.addrs[0].url, "tcp://127.0.0.1:7450");
    ck_assert_uint_eq(cfg.addrs[0].ops, NNGT_OP_PUBLISH | NNGT_OP_INSPECT
                                            | NNGT_OP_STORAGE_READ);
}
END_TEST

/* pull takes publish and deliver; ipc addresses are accepted. */
START_TEST(test_config_pull_ipc)
{
    ck_assert_int_eq(set("listen", "pull ipc:///tmp/torpor-test.ipc deliver,publish"), TORPOR_OK);
    ck_assert_int_eq(cfg.addrs[0].pattern, NNGT_PULL);
    ck_assert_uint_eq(cfg.addrs[0].ops, NNGT_OP_PUBLISH | NNGT_OP_DELIVER);
}
END_TEST

/* A pub line allows subscribe whether it says so or not. */
START_TEST(test_config_pub_default)
{
    ck_assert_int_eq(set("listen.a", "pub tcp://[::1]:7452"), TORPOR_OK);
    ck_assert_int_eq(set("listen.b", "pub tcp://127.0.0.1:7453 subscribe"),
                     TORPOR_OK);
    ck_assert_uint_eq(cfg.addrs[0].ops, NNGT_OP_SUBSCRIBE);
    ck_assert_uint_eq(cfg.addrs[1].ops, NNGT_OP_SUBSCRIBE);
}
END_TEST

/* Port 0 may repeat, since each takes its own free port. */
START_TEST(test_config_port_zero_repeats)
{
    ck_assert_int_eq(set("listen.a", "rep tcp://127.0.0.1:0 publish"),
                     TORPOR_OK);
    ck_assert_int_eq(set("listen.b", "pub tcp://127.0.0.1:0"), TORPOR_OK);
    ck_assert_uint_eq(cfg.naddrs, 2);
}
END_TEST

/* Sizes take their bounds and nothing else. */
START_TEST(test_config_sizes)
{
    ck_assert_int_eq(set("max_message_bytes", "65536"), TORPOR_OK);
    ck_assert_uint_eq(cfg.max_message_bytes, 65536);
    ck_assert_int_eq(set("subscriber_queue", "8192"), TORPOR_OK);
    ck_assert_uint_eq(cfg.subscriber_queue, 8192);
    ck_assert_int_eq(set("max_message_bytes", "0"), TORPOR_EINVAL);
    ck_assert_int_eq(set("max_message_bytes", "-1"), TORPOR_EINVAL);
    ck_assert_int_eq(set("subscriber_queue", "8193"), TORPOR_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "from 1 to 8192"));
    ck_assert_int_eq(set("subscriber_queue", "10x"), TORPOR_EINVAL);
}
END_TEST

/* An unknown key is not this plugin's, so the core names it. */
START_TEST(test_config_unknown_key)
{
    ck_assert_int_eq(set("listening", "rep tcp://127.0.0.1:1 publish"),
                     TORPOR_ENOKEY);
    ck_assert_int_eq(set("listen.", "rep tcp://127.0.0.1:1 publish"),
                     TORPOR_ENOKEY);
    ck_assert_int_eq(set("listen.a b", "rep tcp://127.0.0.1:1 publish"),
                     TORPOR_ENOKEY);
}
END_TEST

/* Addresses nng could not listen on are refused with the address. */
START_TEST(test_config_bad_addresses)
{
    refused("listen", "rep http://127.0.0.1:80 publish", "scheme must be tcp or ipc");
    refused("listen", "rep tcp://127.0.0.1 publish", "numeric port");
    refused("listen", "rep tcp://127.0.0.1:99999 publish", "numeric port");
    refused("listen", "rep tcp://127.0.0.1:port publish", "numeric port");
    refused("listen", "rep tcp://:7450 publish", "tcp://HOST:PORT");
    refused("listen", "rep tcp://127.0.0.1:7450/x publish", "tcp://HOST:PORT");
    refused("listen", "rep nonsense publish", "bad address \"nonsense\"");
}
END_TEST

/* Every malformed line is refused with its reason. */
START_TEST(test_config_bad_lines)
{
    refused("listen", "rep", "expected \"PATTERN ADDRESS OPERATIONS\"");
    refused("listen", "", "expected \"PATTERN ADDRESS OPERATIONS\"");
    refused("listen", "req tcp://127.0.0.1:1 publish", "unknown pattern \"req\"");
    refused("listen", "rep tcp://127.0.0.1:1 publish,write", "unknown operation \"write\"");
    refused("listen", "rep tcp://127.0.0.1:1 publish,publish", "listed twice");
    refused("listen", "rep tcp://127.0.0.1:1", "name the operations");
    refused("listen", "pull tcp://127.0.0.1:1", "name the operations");
}
END_TEST

/* An operation a pattern cannot serve is refused with the right place. */
START_TEST(test_config_ops_fit_pattern)
{
    refused("listen", "pull tcp://127.0.0.1:1 publish,inspect", "inspect needs a reply");
    refused("listen", "pull tcp://127.0.0.1:1 storage_read", "list it on a rep address");
    refused("listen", "pub tcp://127.0.0.1:1 publish", "a pub address serves only subscribe");
    refused("listen", "rep tcp://127.0.0.1:1 publish,subscribe", "served by pub addresses only");
}
END_TEST

/* One address in two lines is refused, naming the first. */
START_TEST(test_config_duplicate_address)
{
    ck_assert_int_eq(set("listen.a", "rep tcp://127.0.0.1:7450 publish"),
                     TORPOR_OK);
    refused("listen.b", "pub tcp://127.0.0.1:7450", "already listed by \"listen.a\"");
}
END_TEST

/* At most NNGT_ADDRS_MAX addresses. */
START_TEST(test_config_address_limit)
{
    char key[32];
    char value[64];

    for (int i = 0; i < NNGT_ADDRS_MAX; i++) {
        snprintf(key, sizeof(key), "listen.a%d", i);
        snprintf(value, sizeof(value), "rep tcp://127.0.0.1:%d publish",
                 7000 + i);
        ck_assert_int_eq(set(key, value), TORPOR_OK);
    }
    refused("listen.more", "rep tcp://127.0.0.1:6999 publish", "at most 16");
}
END_TEST

static size_t
topic_of(char *buf, const char *class_name, const void *name, size_t len)
{
    return nngt_topic(buf, class_name, strlen(class_name), name, len);
}

/* Plain names stay readable; everything else is percent-encoded. */
START_TEST(test_topic_encoding)
{
    char buf[256];
    size_t n = topic_of(buf, "chat", "lobby", 5);

    ck_assert_uint_eq(n, 11);
    ck_assert_mem_eq(buf, "chat/lobby:", 11);
    n = topic_of(buf, "chat", "a/b:c d\0\xff~._-", 13);
    ck_assert_uint_eq(n, 29);
    ck_assert_mem_eq(buf, "chat/a%2Fb%3Ac%20d%00%FF~._-:", 29);
}
END_TEST

/* One room's topic is no prefix of another's, NULs and colons included. */
START_TEST(test_topic_prefix_free)
{
    static const struct {
        const char *name;
        size_t len;
    } names[] = {
        {"lob", 3}, {"lobby", 5}, {"lob\0by", 6}, {"lob:", 4},
        {"lob%3A", 6}, {"", 0}, {"lob/by", 6},
    };
    char a[64];
    char b[64];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t na = topic_of(a, "chat", names[i].name, names[i].len);
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            size_t nb = topic_of(b, "chat", names[k].name, names[k].len);
            bool prefix = na <= nb && memcmp(a, b, na) == 0;
            ck_assert_msg(prefix == (i == k), "topic %zu prefixes topic %zu",
                          i, k);
        }
        /* ...and the class's prefix matches them all. */
        ck_assert_mem_eq(a, "chat/", 5);
        size_t nc = topic_of(b, "chatty", names[i].name, names[i].len);
        ck_assert(nc < 5 || memcmp(b, "chat/", 5) != 0);
    }
}
END_TEST

static Suite *
nng_config_suite(void)
{
    Suite *s = suite_create("nng_config");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");
    TCase *topics = tcase_create("topics");

    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, test_config_rep_line);
    tcase_add_test(core, test_config_pull_ipc);
    tcase_add_test(core, test_config_pub_default);
    tcase_add_test(core, test_config_port_zero_repeats);
    tcase_add_test(core, test_config_sizes);
    suite_add_tcase(s, core);

    tcase_add_checked_fixture(errors, setup, teardown);
    tcase_add_test(errors, test_config_unknown_key);
    tcase_add_test(errors, test_config_bad_addresses);
    tcase_add_test(errors, test_config_bad_lines);
    tcase_add_test(errors, test_config_ops_fit_pattern);
    tcase_add_test(errors, test_config_duplicate_address);
    tcase_add_test(errors, test_config_address_limit);
    suite_add_tcase(s, errors);

    tcase_add_test(topics, test_topic_encoding);
    tcase_add_test(topics, test_topic_prefix_free);
    suite_add_tcase(s, topics);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(nng_config_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
