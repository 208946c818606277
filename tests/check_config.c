/*
 * check_config: the INI reader keeps defaults for what a file leaves out,
 * hands plugin sections on with their lines, and reports every problem as
 * FILE:LINE: reason.
 */
#include "build-config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static char config_path[64];

/* write_config puts text in a fresh temporary file. */
static const char *
write_config(const char *text)
{
    snprintf(config_path, sizeof(config_path), "/tmp/torpor-cfg-XXXXXX");
    int fd = mkstemp(config_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return config_path;
}

static void
remove_config(void)
{
    if (config_path[0] != '\0') {
        unlink(config_path);
        config_path[0] = '\0';
    }
}

/* load_bad loads text, expects refusal and returns the diag text. */
static char *
load_bad(const char *text, unsigned want_count)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg = (void *)1;

    const char *path = write_config(text);
    ck_assert_int_eq(tpr_config_load(path, &cfg, &diag), TORPOR_EINVAL);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(diag.count, want_count);
    char *out = strdup(diag.text);
    tpr_diag_free(&diag);
    return out;
}

static void
assert_has(const char *text, const char *line, const char *what)
{
    char want[256];

    snprintf(want, sizeof(want), "%s:%s: %s", config_path, line, what);
    ck_assert_msg(strstr(text, want) != NULL, "wanted \"%s\" in:\n%s", want,
                  text);
}

/* No file at all: the defaults a new user needs. */
START_TEST(test_config_defaults)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg;

    ck_assert_int_eq(tpr_config_load(NULL, &cfg, &diag), TORPOR_OK);
    ck_assert_uint_eq(diag.count, 0);
    ck_assert_int_eq(cfg->log_level, TORPOR_LOG_NOTICE);
    ck_assert_uint_eq(cfg->nplugins, 4);
    ck_assert_str_eq(cfg->plugins[0], "websocket");
    ck_assert_str_eq(cfg->plugins[1], "relay");
    ck_assert_str_eq(cfg->plugins[2], "echo");
    ck_assert_str_eq(cfg->plugins[3], "chat");
    ck_assert_uint_eq(cfg->nroutes, 3);
    ck_assert_str_eq(cfg->routes[0].name, "relay");
    ck_assert_str_eq(cfg->routes[0].class_name, "relay");
    ck_assert_str_eq(cfg->routes[1].name, "echo");
    ck_assert_str_eq(cfg->routes[2].name, "chat");
    ck_assert_str_eq(cfg->storage_backend, "file");
    ck_assert_uint_eq(cfg->max_key_bytes, 2048);
    ck_assert_uint_eq(cfg->max_value_bytes, 131072);
    ck_assert_uint_eq(cfg->nentries, 0);
    ck_assert_uint_eq(cfg->shutdown_timeout_ms, 5000);
    tpr_config_free(cfg);
}
END_TEST

/* A file that sets one thing keeps every other default. */
START_TEST(test_config_partial_file_keeps_defaults)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg;

    const char *path = write_config("; only the level\n[core]\n"
                                    "log_level = debug\n");
    ck_assert_int_eq(tpr_config_load(path, &cfg, &diag), TORPOR_OK);
    ck_assert_int_eq(cfg->log_level, TORPOR_LOG_DEBUG);
    ck_assert_uint_eq(cfg->nplugins, 4);
    ck_assert_uint_eq(cfg->nroutes, 3);
    ck_assert_str_eq(cfg->path, path);
    tpr_config_free(cfg);
}
END_TEST

/* Plugin sections are kept, in order, with their line numbers. */
START_TEST(test_config_plugin_sections_kept_with_lines)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg;

    const char *path = write_config("[transport.websocket]\n"
                                    "listen = 127.0.0.1:9000\n"
                                    "\n"
                                    "  max_message_bytes = 10   ; indented\n"
                                    "[class.chat]\n"
                                    "history = 5\n");
    ck_assert_int_eq(tpr_config_load(path, &cfg, &diag), TORPOR_OK);
    ck_assert_uint_eq(cfg->nentries, 3);
    ck_assert_str_eq(cfg->entries[0].kind, "transport");
    ck_assert_str_eq(cfg->entries[0].plugin, "websocket");
    ck_assert_str_eq(cfg->entries[0].key, "listen");
    ck_assert_str_eq(cfg->entries[0].value, "127.0.0.1:9000");
    ck_assert_uint_eq(cfg->entries[0].line, 2);
    ck_assert_str_eq(cfg->entries[1].key, "max_message_bytes");
    ck_assert_str_eq(cfg->entries[1].value, "10");
    ck_assert_uint_eq(cfg->entries[1].line, 4);
    ck_assert_str_eq(cfg->entries[2].kind, "class");
    ck_assert_str_eq(cfg->entries[2].plugin, "chat");
    ck_assert_uint_eq(cfg->entries[2].line, 6);
    tpr_config_free(cfg);
}
END_TEST

/* Routes: a default can be disabled, a new one added, plugins listed. */
START_TEST(test_config_routes_and_plugins)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg;

    const char *path = write_config("[core]\n"
                                    "plugins = websocket,relay  shout\n"
                                    "plugin_path = /x:/y\n"
                                    "[route.echo]\n"
                                    "enabled = false\n"
                                    "[route.loud]\n"
                                    "class = shout\n");
    ck_assert_int_eq(tpr_config_load(path, &cfg, &diag), TORPOR_OK);
    ck_assert_uint_eq(cfg->nplugins, 3);
    ck_assert_str_eq(cfg->plugins[2], "shout");
    ck_assert_uint_eq(cfg->plugins_line, 2);
    ck_assert_str_eq(cfg->plugin_path, "/x:/y");
    ck_assert_uint_eq(cfg->nroutes, 4);
    ck_assert(!cfg->routes[1].enabled);
    ck_assert_str_eq(cfg->routes[3].name, "loud");
    ck_assert_str_eq(cfg->routes[3].class_name, "shout");
    ck_assert_uint_eq(cfg->routes[3].line, 6);
    tpr_config_free(cfg);
}
END_TEST

/* [storage] names the backend and the limits every backend enforces. */
START_TEST(test_config_storage_section)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg;

    const char *path = write_config("[storage]\n"
                                    "backend = postgres\n"
                                    "max_key_bytes = 100\n"
                                    "max_value_bytes = 1000\n"
                                    "[storage.postgres]\n"
                                    "conninfo = dbname=x\n");
    ck_assert_int_eq(tpr_config_load(path, &cfg, &diag), TORPOR_OK);
    ck_assert_str_eq(cfg->storage_backend, "postgres");
    ck_assert_uint_eq(cfg->storage_backend_line, 2);
    ck_assert_uint_eq(cfg->max_key_bytes, 100);
    ck_assert_uint_eq(cfg->max_value_bytes, 1000);
    ck_assert_uint_eq(cfg->nentries, 1);
    ck_assert_str_eq(cfg->entries[0].kind, "storage");
    ck_assert_str_eq(cfg->entries[0].plugin, "postgres");
    tpr_config_free(cfg);
}
END_TEST

/* Bad [storage] values are refused with their lines. */
START_TEST(test_config_storage_bad_values)
{
    char *text = load_bad("[storage]\n"
                          "backend = ../evil\n"
                          "max_key_bytes = 0\n"
                          "max_value_bytes = huge\n"
                          "compression = on\n",
                          4);

    assert_has(text, "2", "bad backend \"../evil\"");
    assert_has(text, "3", "bad max_key_bytes \"0\"");
    assert_has(text, "4", "bad max_value_bytes \"huge\"");
    assert_has(text, "5", "unknown key \"compression\" in section [storage]");
    free(text);
}
END_TEST

/* An unknown section is reported at its header, even when empty. */
START_TEST(test_config_unknown_section)
{
    char *text = load_bad("[core]\nlog_level = info\n\n[bogus]\n", 1);

    assert_has(text, "4", "unknown section [bogus]");
    free(text);
}
END_TEST

/* An unknown key in [core] names the key and the line. */
START_TEST(test_config_unknown_key)
{
    char *text = load_bad("[core]\nlog_level = info\nloglevel = info\n", 1);

    assert_has(text, "3", "unknown key \"loglevel\" in section [core]");
    free(text);
}
END_TEST

/* Bad values are refused with what was expected. */
START_TEST(test_config_bad_values)
{
    char *text = load_bad("[core]\n"
                          "log_level = loud\n"
                          "shutdown_timeout_ms = soon\n"
                          "[route.x]\n"
                          "enabled = maybe\n"
                          "class = a/b\n",
                          4);

    assert_has(text, "2", "bad log_level \"loud\"");
    assert_has(text, "3", "bad shutdown_timeout_ms \"soon\"");
    assert_has(text, "5", "bad enabled \"maybe\"");
    assert_has(text, "6", "bad class \"a/b\"");
    free(text);
}
END_TEST

/* A number out of range or with trailing text is a bad value. */
START_TEST(test_config_parse_uint_limits)
{
    uint64_t v = 7;

    ck_assert_int_eq(tpr_config_parse_uint("10", 1, 10, &v), TORPOR_OK);
    ck_assert_uint_eq(v, 10);
    ck_assert_int_eq(tpr_config_parse_uint("11", 1, 10, &v), TORPOR_EINVAL);
    ck_assert_int_eq(tpr_config_parse_uint("0", 1, 10, &v), TORPOR_EINVAL);
    ck_assert_int_eq(tpr_config_parse_uint("-1", 0, 10, &v), TORPOR_EINVAL);
    ck_assert_int_eq(tpr_config_parse_uint("5k", 0, 10, &v), TORPOR_EINVAL);
    ck_assert_int_eq(tpr_config_parse_uint("", 0, 10, &v), TORPOR_EINVAL);
    ck_assert_int_eq(tpr_config_parse_uint("99999999999999999999", 0,
                                           UINT64_MAX, &v),
                     TORPOR_EINVAL);
    ck_assert_uint_eq(v, 10);
}
END_TEST

/* Duplicates, keys before any section, syntax errors, routes w/o class. */
START_TEST(test_config_structure_errors)
{
    char *text = load_bad("orphan = 1\n"
                          "[core]\n"
                          "log_level = info\n"
                          "log_level = debug\n"
                          "this line has no equals sign\n"
                          "[route.empty]\n"
                          "[route.relay]\n"
                          "[route.relay]\n",
                          5);

    assert_has(text, "1", "key \"orphan\" outside any section");
    assert_has(text, "4", "duplicate key \"log_level\"");
    assert_has(text, "5", "syntax error");
    assert_has(text, "6", "route \"empty\" has no class");
    assert_has(text, "8", "duplicate section [route.relay], first at line 7");
    free(text);
}
END_TEST

/* A line longer than libinih's buffer is refused, not silently cut. */
START_TEST(test_config_line_too_long)
{
    char buf[600] = "[core]\nplugin_path = ";
    size_t len = strlen(buf);

    memset(buf + len, 'a', 400);
    buf[len + 400] = '\n';
    buf[len + 401] = '\0';
    char *text = load_bad(buf, 1);
    assert_has(text, "2", "line longer than");
    free(text);
}
END_TEST

/* A file that cannot be opened is reported with the OS reason. */
START_TEST(test_config_missing_file)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg = (void *)1;

    ck_assert_int_eq(tpr_config_load("/nonexistent/torpor.conf", &cfg, &diag),
                     TORPOR_EIO);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(diag.text, "/nonexistent/torpor.conf: could not open: No such file or directory") != NULL, "%s", diag.text);
    tpr_diag_free(&diag);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");

    tcase_add_checked_fixture(core, NULL, remove_config);
    tcase_add_checked_fixture(errors, NULL, remove_config);
    tcase_add_test(core, test_config_defaults);
    tcase_add_test(core, test_config_partial_file_keeps_defaults);
    tcase_add_test(core, test_config_plugin_sections_kept_with_lines);
    tcase_add_test(core, test_config_routes_and_plugins);
    tcase_add_test(core, test_config_parse_uint_limits);
    tcase_add_test(core, test_config_storage_section);
    tcase_add_test(errors, test_config_storage_bad_values);
    tcase_add_test(errors, test_config_unknown_section);
    tcase_add_test(errors, test_config_unknown_key);
    tcase_add_test(errors, test_config_bad_values);
    tcase_add_test(errors, test_config_structure_errors);
    tcase_add_test(errors, test_config_line_too_long);
    tcase_add_test(errors, test_config_missing_file);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
