/*
 * check_loader: the plugin loader accepts a good plugin and refuses each
 * broken one with one line naming the file, the reason and both versions.
 * Every fixture is a real shared object built in tests/fixtures.
 */
#include "build-config.h"

#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/loader.h"

static const char *
fixture_dir(void)
{
    const char *dir = getenv("TORPOR_FIXTURE_PATH");

    return dir != NULL ? dir : "tests/fixtures/.libs";
}

/* load opens fixture NAME and returns the code; diag gets the text. */
static torpor_err
load(const char *name, struct tpr_diag *diag, struct torpor_plugin_ctx **p)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s.so", fixture_dir(), name);
    return tpr_plugin_open(path, NULL, "test.conf", 7, diag, p);
}

/* assert_refusal checks one refusal's code and its single line. */
static void
assert_refusal(const char *fixture, torpor_err want, const char *reason,
               const char *plugin_abi)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = (void *)1;
    char core_abi[32];

    ck_assert_int_eq(load(fixture, &diag, &p), want);
    ck_assert_ptr_null(p);
    ck_assert_uint_eq(diag.count, 1);
    ck_assert_ptr_nonnull(diag.text);
    /* One line, with where the config asked, the file and the reason. */
    ck_assert_ptr_eq(strchr(diag.text, '\n'), diag.text + diag.len - 1);
    ck_assert_msg(strncmp(diag.text, "test.conf:7: ", 13) == 0, "%s",
                  diag.text);
    ck_assert_msg(strstr(diag.text, fixture) != NULL, "%s", diag.text);
    ck_assert_msg(strstr(diag.text, reason) != NULL, "%s", diag.text);
    snprintf(core_abi, sizeof(core_abi), "core ABI %d.%d", TORPOR_ABI_MAJOR,
             TORPOR_ABI_MINOR);
    ck_assert_msg(strstr(diag.text, core_abi) != NULL, "%s", diag.text);
    if (plugin_abi != NULL) {
        ck_assert_msg(strstr(diag.text, plugin_abi) != NULL, "%s",
                      diag.text);
    }
    tpr_diag_free(&diag);
}

/* A well-formed plugin loads and its descriptor is copied whole. */
START_TEST(test_loader_accepts_good_plugin)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = NULL;

    ck_assert_int_eq(load("good", &diag, &p), TORPOR_OK);
    ck_assert_uint_eq(diag.count, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->desc.name, "fixture");
    ck_assert_str_eq(p->desc.version, "1.2.3");
    ck_assert_uint_eq(p->desc.kind, TORPOR_KIND_CLASS);
    ck_assert_ptr_nonnull(p->ops.klass.object_create);
    ck_assert_ptr_null(p->ops.klass.message);
    ck_assert(tpr_plugin_has_reload(p));
    tpr_plugin_close(p);
}
END_TEST

/*
 * A plugin built against ABI 1.0 loads into this 1.1 core, and the hook
 * that lies past its descriptor's size reads as absent, whatever the
 * memory beyond holds.
 */
START_TEST(test_loader_accepts_abi_1_0_descriptor)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = NULL;

    ck_assert_int_eq(load("abi_1_0", &diag, &p), TORPOR_OK);
    ck_assert_uint_eq(diag.count, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->desc.abi_minor, 0);
    ck_assert_uint_eq(p->desc.size, offsetof(struct torpor_plugin, reload));
    ck_assert_ptr_null(p->desc.reload);
    ck_assert(!tpr_plugin_has_reload(p));
    tpr_plugin_close(p);
}
END_TEST

/* A name is looked up as NAME.so in each folder of the search path. */
START_TEST(test_loader_searches_path)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = NULL;
    char search[4200];

    snprintf(search, sizeof(search), "/nonexistent:%s", fixture_dir());
    ck_assert_int_eq(tpr_plugin_open("good", search, NULL, 0, &diag, &p),
                     TORPOR_OK);
    ck_assert_ptr_nonnull(p);
    tpr_plugin_close(p);
}
END_TEST

/* A plugin that is nowhere is refused with ENOENT and the search path. */
START_TEST(test_loader_refuses_missing_file)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = NULL;

    ck_assert_int_eq(tpr_plugin_open("nosuch", "/a:/b", "x.conf", 3, &diag,
                                     &p),
                     TORPOR_ENOENT);
    ck_assert_ptr_null(p);
    ck_assert_uint_eq(diag.count, 1);
    ck_assert_msg(strstr(diag.text, "x.conf:3: could not find plugin \"nosuch\"") != NULL, "%s", diag.text);
    ck_assert_msg(strstr(diag.text, "\"/a:/b\"") != NULL, "%s", diag.text);
    tpr_diag_free(&diag);
}
END_TEST

/* A file that is not a shared object is refused with dlopen's reason. */
START_TEST(test_loader_refuses_non_elf)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = NULL;
    char path[] = "/tmp/torpor-check-XXXXXX.so";
    int fd = mkstemps(path, 3);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not elf", 7), 7);
    close(fd);
    ck_assert_int_eq(tpr_plugin_open(path, NULL, NULL, 0, &diag, &p),
                     TORPOR_EIO);
    ck_assert_msg(strstr(diag.text, path) != NULL, "%s", diag.text);
    unlink(path);
    tpr_diag_free(&diag);
}
END_TEST

/* No torpor_plugin_entry: refused, naming the missing symbol. */
START_TEST(test_loader_refuses_missing_entry)
{
    assert_refusal("no_entry", TORPOR_EABI,
                   "no entry point \"torpor_plugin_entry\"", NULL);
}
END_TEST

/* An entry point that returns NULL is refused. */
START_TEST(test_loader_refuses_null_descriptor)
{
    assert_refusal("null_desc", TORPOR_EABI, "returned NULL", NULL);
}
END_TEST

/* A wrong magic is refused before any other field is read. */
START_TEST(test_loader_refuses_bad_magic)
{
    assert_refusal("bad_magic", TORPOR_EABI,
                   "bad magic 0xdeadbeef, expected 0x74707231", NULL);
}
END_TEST

/* Another major version is refused, with both versions named. */
START_TEST(test_loader_refuses_other_major)
{
    char abi[32];

    snprintf(abi, sizeof(abi), "plugin ABI %d.%d", TORPOR_ABI_MAJOR + 1,
             TORPOR_ABI_MINOR);
    assert_refusal("major_next", TORPOR_EABI, "ABI major version differs",
                   abi);
}
END_TEST

/* A plugin built for a newer minor than the core's is refused. */
START_TEST(test_loader_refuses_newer_minor)
{
    char abi[32];

    snprintf(abi, sizeof(abi), "plugin ABI %d.%d", TORPOR_ABI_MAJOR,
             TORPOR_ABI_MINOR + 1);
    assert_refusal("minor_next", TORPOR_EABI, "needs a newer core", abi);
}
END_TEST

/* A descriptor smaller than the ABI's is refused with both sizes. */
START_TEST(test_loader_refuses_short_descriptor)
{
    char reason[64], abi[32];

    snprintf(reason, sizeof(reason), "descriptor of 16 bytes, core needs %zu",
             offsetof(struct torpor_plugin, reload));
    snprintf(abi, sizeof(abi), "plugin ABI %d.%d", TORPOR_ABI_MAJOR,
             TORPOR_ABI_MINOR);
    assert_refusal("short_size", TORPOR_EABI, reason, abi);
}
END_TEST

/* A mandatory hook left NULL is refused by name. */
START_TEST(test_loader_refuses_missing_hook)
{
    char abi[32];

    snprintf(abi, sizeof(abi), "plugin ABI %d.%d", TORPOR_ABI_MAJOR,
             TORPOR_ABI_MINOR);
    assert_refusal("no_create", TORPOR_EABI,
                   "mandatory hook \"create\" is NULL", abi);
}
END_TEST

/* A transport's conn_bytes and conn_discard reach the core's copy. */
START_TEST(test_loader_accepts_transport_records)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = NULL;

    ck_assert_int_eq(load("conn_bytes", &diag, &p), TORPOR_OK);
    ck_assert_uint_eq(diag.count, 0);
    ck_assert_uint_eq(p->desc.kind, TORPOR_KIND_TRANSPORT);
    ck_assert_uint_eq(p->ops.transport.conn_bytes, 24);
    ck_assert_ptr_nonnull(p->ops.transport.conn_discard);
    tpr_plugin_close(p);
}
END_TEST

/*
 * Transport ops of ABI 1.0 end before conn_bytes: they load, and the core
 * reads neither conn_bytes nor conn_discard beyond their size.
 */
START_TEST(test_loader_accepts_transport_of_abi_1_0)
{
    struct tpr_diag diag = {0};
    struct torpor_plugin_ctx *p = NULL;

    ck_assert_int_eq(load("transport_1_0", &diag, &p), TORPOR_OK);
    ck_assert_uint_eq(diag.count, 0);
    ck_assert_uint_eq(p->desc.kind, TORPOR_KIND_TRANSPORT);
    ck_assert_uint_eq(p->ops.transport.conn_bytes, 0);
    ck_assert_ptr_null(p->ops.transport.conn_discard);
    tpr_plugin_close(p);
}
END_TEST

/* Records over TORPOR_CONN_BYTES_MAX are refused with both sizes. */
START_TEST(test_loader_refuses_big_records)
{
    char reason[64];

    snprintf(reason, sizeof(reason), "conn_bytes of %u, at most %u",
             TORPOR_CONN_BYTES_MAX + 1, TORPOR_CONN_BYTES_MAX);
    assert_refusal("conn_too_big", TORPOR_EABI, reason, "plugin ABI 1.1");
}
END_TEST

/* Records the core keeps need conn_discard, or teardown leaks them. */
START_TEST(test_loader_refuses_records_without_discard)
{
    assert_refusal("conn_no_discard", TORPOR_EABI,
                   "conn_bytes is set but hook \"conn_discard\" is NULL",
                   "plugin ABI 1.1");
}
END_TEST

static Suite *
loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");

    tcase_add_test(core, test_loader_accepts_good_plugin);
    tcase_add_test(core, test_loader_accepts_abi_1_0_descriptor);
    tcase_add_test(core, test_loader_accepts_transport_of_abi_1_0);
    tcase_add_test(core, test_loader_searches_path);
    tcase_add_test(core, test_loader_accepts_transport_records);
    tcase_add_test(errors, test_loader_refuses_missing_file);
    tcase_add_test(errors, test_loader_refuses_non_elf);
    tcase_add_test(errors, test_loader_refuses_missing_entry);
    tcase_add_test(errors, test_loader_refuses_null_descriptor);
    tcase_add_test(errors, test_loader_refuses_bad_magic);
    tcase_add_test(errors, test_loader_refuses_other_major);
    tcase_add_test(errors, test_loader_refuses_newer_minor);
    tcase_add_test(errors, test_loader_refuses_short_descriptor);
    tcase_add_test(errors, test_loader_refuses_missing_hook);
    tcase_add_test(errors, test_loader_refuses_big_records);
    tcase_add_test(errors, test_loader_refuses_records_without_discard);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(loader_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
