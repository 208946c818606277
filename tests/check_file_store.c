/*
 * check_file_store: the file storage plugin's record codec, its
 * configuration, its operations and the lock on its data directory, on
 * real files in a temporary directory.  The plugin is loaded from
 * plugins/.libs/file.so and driven through its descriptor with the core's
 * own host table and loop (tests/file_store_util.c); the codec is compiled
 * in from plugins/file/fs_record.c.  Recovery and compaction are in
 * check_file_recover.
 */
#include "build-config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/loader.h"
#include "fs.h"
#include "tests/file_store_util.h"

/* ---- the record codec ---- */

/* A commit record decodes to the object and the writes it was made of. */
START_TEST(test_record_commit_round_trip)
{
    torpor_storage_object o = fx_obj("lobby");
    torpor_write w[] = {FX_PUT("k", "value"),
                        FX_DEL("gone"),
                        FX_ALARM("tick", 1234),
                        {.kind = TORPOR_WRITE_ALARM_DELETE, .key = FX_B("old")},
                        FX_PUT("empty", "")};
    struct fs_buf b = {0};
    struct fs_rec_header h;
    struct fs_obj_view v;
    struct fs_rec_cursor c;
    struct fs_write_view wv;
    const char *why;
    bool bad;

    size_t size = fs_rec_commit_bytes(&o, w, FX_N(w), &bad);
    fs_rec_put_commit(&b, &o, w, FX_N(w));
    ck_assert(!b.oom);
    ck_assert_uint_eq(b.len, size);
    ck_assert(fs_rec_parse_header(b.p, &h, &why));
    ck_assert_uint_eq(h.type, FS_REC_COMMIT);
    ck_assert_uint_eq(h.len, size - FS_REC_HEADER_BYTES);
    ck_assert(fs_rec_verify(&h, b.p, b.p + FS_REC_HEADER_BYTES));

    const uint8_t *payload = b.p + FS_REC_HEADER_BYTES;
    ck_assert(fs_rec_object(payload, h.len, &v, &c));
    ck_assert_mem_eq(v.id, o.id, 16);
    ck_assert_uint_eq(v.class_len, 4);
    ck_assert_mem_eq(v.class_name, "chat", 4);
    ck_assert_uint_eq(v.name_len, 5);
    ck_assert_mem_eq(v.name, "lobby", 5);
    ck_assert_int_eq(fs_rec_next_write(&c, &wv), 1);
    ck_assert_uint_eq(wv.kind, TORPOR_WRITE_PUT);
    ck_assert_mem_eq(payload + wv.value_off, "value", 5);
    ck_assert_int_eq(fs_rec_next_write(&c, &wv), 1);
    ck_assert_uint_eq(wv.kind, TORPOR_WRITE_DELETE);
    ck_assert_mem_eq(wv.key, "gone", 4);
    ck_assert_int_eq(fs_rec_next_write(&c, &wv), 1);
    ck_assert_uint_eq(wv.kind, TORPOR_WRITE_ALARM_SET);
    ck_assert_uint_eq(wv.time_ms, 1234);
    ck_assert_int_eq(fs_rec_next_write(&c, &wv), 1);
    ck_assert_uint_eq(wv.kind, TORPOR_WRITE_ALARM_DELETE);
    ck_assert_int_eq(fs_rec_next_write(&c, &wv), 1);
    ck_assert_uint_eq(wv.vlen, 0);
    ck_assert_int_eq(fs_rec_next_write(&c, &wv), 0);
    fs_buf_free(&b);
}
END_TEST

/* Every single flipped bit of a record fails its header or its checksum. */
START_TEST(test_record_checksum_catches_every_flip)
{
    torpor_storage_object o = fx_obj("room");
    torpor_write w[] = {FX_PUT("key", "some value"), FX_ALARM("a", 99)};
    struct fs_buf b = {0};

    fs_rec_put_commit(&b, &o, w, FX_N(w));
    for (size_t i = 0; i < b.len * 8; i++) {
        struct fs_rec_header h;
        const char *why;

        b.p[i / 8] ^= (uint8_t)(1u << (i % 8));
        bool ok = fs_rec_parse_header(b.p, &h, &why)
                  && FS_REC_HEADER_BYTES + (size_t)h.len <= b.len
                  && fs_rec_verify(&h, b.p, b.p + FS_REC_HEADER_BYTES);
        ck_assert_msg(!ok, "flipped bit %zu went unnoticed", i);
        b.p[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    fs_buf_free(&b);
}
END_TEST

/* An unknown write kind and a batch past the record limit are refused. */
START_TEST(test_record_commit_bytes_limits)
{
    torpor_storage_object o = fx_obj("room");
    torpor_write bad_kind[] = {{.kind = 9, .key = FX_B("k")}};
    torpor_write huge[] = {{.kind = TORPOR_WRITE_PUT,
                            .key = FX_B("k"),
                            .value = {"x", (size_t)FS_REC_MAX_BYTES + 1}}};
    bool bad;

    ck_assert_uint_eq(fs_rec_commit_bytes(&o, bad_kind, 1, &bad), 0);
    ck_assert(bad);
    ck_assert_uint_eq(fs_rec_commit_bytes(&o, huge, 1, &bad), 0);
    ck_assert(!bad);
}
END_TEST

/* ---- configuration ---- */

static torpor_err
configure(struct fx_store *s, const char *key, const char *value, char *why)
{
    why[0] = '\0';
    return s->p->desc.configure(s->st, key, value, why, 128);
}

/* Unknown keys and bad values are refused with a reason; good ones kept. */
START_TEST(test_config_keys_and_values)
{
    struct tpr_diag diag = {0};
    struct fx_store s = {0};
    char why[128];

    ck_assert_int_eq(
        tpr_plugin_open("file", fx_plugin_path(), NULL, 0, &diag, &s.p),
        TORPOR_OK);
    ck_assert_int_eq(s.p->desc.create(&fx_host, s.p, &s.st), TORPOR_OK);
    ck_assert_int_eq(configure(&s, "nope", "1", why), TORPOR_ENOKEY);
    ck_assert_int_eq(configure(&s, "fsync", "sometimes", why), TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected always, interval or never");
    ck_assert_int_eq(configure(&s, "fsync_interval_ms", "0", why),
                     TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected an integer from 1 to 60000");
    ck_assert_int_eq(configure(&s, "segment_bytes", "12", why), TORPOR_EINVAL);
    ck_assert_int_eq(configure(&s, "compact_ratio", "1.0", why), TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected a number from 1.1 to 1000");
    ck_assert_int_eq(configure(&s, "compact_ratio", "two", why), TORPOR_EINVAL);
    ck_assert_int_eq(configure(&s, "compact_min_bytes", "-1", why),
                     TORPOR_EINVAL);
    ck_assert_int_eq(configure(&s, "dir", "", why), TORPOR_EINVAL);
    ck_assert_int_eq(configure(&s, "fsync", "interval", why), TORPOR_OK);
    ck_assert_int_eq(configure(&s, "fsync_interval_ms", "5", why), TORPOR_OK);
    ck_assert_int_eq(configure(&s, "segment_bytes", "4096", why), TORPOR_OK);
    ck_assert_int_eq(configure(&s, "compact_ratio", "1.5", why), TORPOR_OK);
    ck_assert_int_eq(configure(&s, "compact_min_bytes", "4096", why),
                     TORPOR_OK);
    s.p->desc.destroy(s.st);
    tpr_plugin_close(s.p);
}
END_TEST

/* ---- operations ---- */

/* A read sees every commit queued before it; completions keep queue order. */
START_TEST(test_ops_read_sees_queued_commit)
{
    static const char *const kv[] = {"fsync", "interval", NULL};
    torpor_storage_object o = fx_obj("room");
    torpor_write w1[] = {FX_PUT("a", "1")};
    torpor_write w2[] = {FX_PUT("a", "2"), FX_PUT("b", "3")};
    torpor_bytes key = FX_B("a");
    struct fx_result r[5];
    struct fx_store s;

    memset(r, 0, sizeof(r));
    ck_assert_int_eq(fx_store_open(&s, "s", kv), TORPOR_OK);
    ck_assert_int_eq(
        fx_ops(&s)->commit(s.st, fx_loop, &o, w1, 1, fx_on_done, &r[0]),
        TORPOR_OK);
    ck_assert_int_eq(
        fx_ops(&s)->get(s.st, fx_loop, &o, &key, 1, fx_on_rows, &r[1]),
        TORPOR_OK);
    ck_assert_int_eq(
        fx_ops(&s)->commit(s.st, fx_loop, &o, w2, 2, fx_on_done, &r[2]),
        TORPOR_OK);
    ck_assert_int_eq(
        fx_ops(&s)->get(s.st, fx_loop, &o, &key, 1, fx_on_rows, &r[3]),
        TORPOR_OK);
    ck_assert_int_eq(
        fx_ops(&s)->list(s.st, fx_loop, &o, &fx_all_keys, fx_on_rows, &r[4]),
        TORPOR_OK);
    /* Nothing completes inside a call: the loop has not run yet. */
    ck_assert_int_eq(fx_done, 0);
    fx_wait_done(5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(r[i].err, TORPOR_OK);
        ck_assert_int_eq(r[i].seq, i + 1);
    }
    ck_assert_str_eq(r[1].text, "a=1");
    ck_assert_str_eq(r[3].text, "a=2");
    ck_assert_str_eq(r[4].text, "a=2,b=3");
    fx_store_close(&s);
}
END_TEST

/* get and list with prefix, bounds, reverse and limit, in bytewise order. */
START_TEST(test_ops_get_and_list_ranges)
{
    torpor_storage_object o = fx_obj("room");
    torpor_write w[] = {FX_PUT("b", "2"),   FX_PUT("ab", "4"), FX_PUT("a", "1"),
                        FX_PUT("abc", "5"), FX_PUT("ba", "6"), FX_PUT("c", "3"),
                        FX_PUT("e", "")};
    torpor_bytes keys[] = {FX_B("c"), FX_B("nope"), FX_B("a"), FX_B("e")};
    struct fx_store s;

    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &o, w, FX_N(w)), TORPOR_OK);
    ck_assert_str_eq(fx_get_text(&s, &o, keys, FX_N(keys)).text,
                     "c=3,nope=-,a=1,e=");
    ck_assert_str_eq(fx_list_text(&s, &o, &fx_all_keys).text,
                     "a=1,ab=4,abc=5,b=2,ba=6,c=3,e=");
    torpor_range pre = {.prefix = FX_B("a")};
    ck_assert_str_eq(fx_list_text(&s, &o, &pre).text, "a=1,ab=4,abc=5");
    torpor_range bounds = {.start = FX_B("ab"),
                           .end = FX_B("c"),
                           .has_start = true,
                           .has_end = true};
    ck_assert_str_eq(fx_list_text(&s, &o, &bounds).text, "ab=4,abc=5,b=2,ba=6");
    torpor_range back = {.reverse = true, .limit = 2};
    ck_assert_str_eq(fx_list_text(&s, &o, &back).text, "e=,c=3");
    torpor_range pre_start = {
        .prefix = FX_B("a"), .start = FX_B("abc"), .has_start = true};
    ck_assert_str_eq(fx_list_text(&s, &o, &pre_start).text, "abc=5");
    torpor_range pre_back = {.prefix = FX_B("a"), .reverse = true, .limit = 1};
    ck_assert_str_eq(fx_list_text(&s, &o, &pre_back).text, "abc=5");
    torpor_range none = {.prefix = FX_B("zz")};
    ck_assert_str_eq(fx_list_text(&s, &o, &none).text, "");
    torpor_write d[] = {FX_DEL("ab"), FX_DEL("missing")};
    ck_assert_int_eq(fx_commit(&s, &o, d, FX_N(d)), TORPOR_OK);
    ck_assert_str_eq(fx_list_text(&s, &o, &pre).text, "a=1,abc=5");
    fx_store_close(&s);
}
END_TEST

/* alarms_due takes due alarms of every object, earliest first, to limit. */
START_TEST(test_ops_alarms_due_in_time_order)
{
    torpor_storage_object o1 = fx_obj("one");
    torpor_storage_object o2 = fx_obj("two");
    torpor_storage_object o3 = fx_obj("three");
    torpor_write w1[] = {FX_ALARM("x", 300), FX_ALARM("y", 100)};
    torpor_write w2[] = {FX_ALARM("z", 200), FX_ALARM("w", 900)};
    torpor_write w3[] = {FX_PUT("k", "v")};
    torpor_write w4[] = {FX_ALARM("y", 500)};
    torpor_write w5[] = {{.kind = TORPOR_WRITE_ALARM_DELETE, .key = FX_B("x")}};
    struct fx_store s;

    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &o1, w1, FX_N(w1)), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &o2, w2, FX_N(w2)), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &o3, w3, FX_N(w3)), TORPOR_OK);
    ck_assert_str_eq(fx_due_text(&s, 600, 10).text,
                     "chat/one:y@100,chat/two:z@200,chat/one:x@300");
    ck_assert_int_eq(fx_commit(&s, &o1, w4, FX_N(w4)), TORPOR_OK);
    ck_assert_str_eq(fx_due_text(&s, 600, 2).text,
                     "chat/two:z@200,chat/one:x@300");
    ck_assert_str_eq(fx_alarms_text(&s, &o1).text,
                     "chat/one:x@300,chat/one:y@500");
    ck_assert_int_eq(fx_commit(&s, &o1, w5, FX_N(w5)), TORPOR_OK);
    ck_assert_str_eq(fx_due_text(&s, 1000, 10).text,
                     "chat/two:z@200,chat/one:y@500,chat/two:w@900");
    ck_assert_str_eq(fx_due_text(&s, 99, 10).text, "");
    ck_assert_str_eq(fx_alarms_text(&s, &o3).text, "");
    fx_store_close(&s);
}
END_TEST

/* objects pages through objects with data or alarms, in id order. */
START_TEST(test_ops_objects_in_id_order)
{
    const char *names[] = {"d", "b", "a", "c", "e"};
    torpor_write w[] = {FX_PUT("k", "v")};
    torpor_write d[] = {FX_DEL("k")};
    struct fx_store s;

    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    for (size_t i = 0; i < FX_N(names); i++) {
        torpor_storage_object o = fx_obj(names[i]);
        ck_assert_int_eq(fx_commit(&s, &o, w, 1), TORPOR_OK);
    }
    torpor_storage_object e = fx_obj("e");
    ck_assert_int_eq(fx_commit(&s, &e, d, 1), TORPOR_OK);
    ck_assert_str_eq(fx_objects_text(&s, NULL, 10).text, "a,b,c,d");
    ck_assert_str_eq(fx_objects_text(&s, NULL, 2).text, "a,b");
    torpor_storage_object b = fx_obj("b");
    ck_assert_str_eq(fx_objects_text(&s, b.id, 2).text, "c,d");
    torpor_storage_object dd = fx_obj("d");
    ck_assert_str_eq(fx_objects_text(&s, dd.id, 5).text, "");
    fx_drop(&s, &b);
    ck_assert_str_eq(fx_objects_text(&s, NULL, 10).text, "a,c,d");
    fx_store_close(&s);
}
END_TEST

/* drop removes every key and alarm of one object, and stays dropped. */
START_TEST(test_ops_drop_survives_reopen)
{
    torpor_storage_object o = fx_obj("gone");
    torpor_storage_object k = fx_obj("kept");
    torpor_write w[] = {FX_PUT("a", "1"), FX_PUT("b", "2"), FX_ALARM("t", 5)};
    struct fx_store s;

    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &o, w, FX_N(w)), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &k, w, FX_N(w)), TORPOR_OK);
    fx_drop(&s, &o);
    ck_assert_str_eq(fx_list_text(&s, &o, &fx_all_keys).text, "");
    fx_store_close(&s);
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    ck_assert_str_eq(fx_list_text(&s, &o, &fx_all_keys).text, "");
    ck_assert_str_eq(fx_alarms_text(&s, &o).text, "");
    ck_assert_str_eq(fx_list_text(&s, &k, &fx_all_keys).text, "a=1,b=2");
    ck_assert_str_eq(fx_due_text(&s, 10, 10).text, "chat/kept:t@5");
    fx_store_close(&s);
}
END_TEST

/* A malformed call, or one before start, queues nothing and says so. */
START_TEST(test_ops_refuse_bad_calls)
{
    struct tpr_diag diag = {0};
    torpor_storage_object o = fx_obj("room");
    torpor_write bad_kind[] = {{.kind = 9, .key = FX_B("k")}};
    torpor_write huge[] = {{.kind = TORPOR_WRITE_PUT,
                            .key = FX_B("k"),
                            .value = {"x", (size_t)FS_REC_MAX_BYTES + 1}}};
    struct fx_result r = {0};
    struct fx_store s;

    ck_assert_int_eq(
        tpr_plugin_open("file", fx_plugin_path(), NULL, 0, &diag, &s.p),
        TORPOR_OK);
    ck_assert_int_eq(s.p->desc.create(&fx_host, s.p, &s.st), TORPOR_OK);
    ck_assert_int_eq(fx_ops(&s)->alarms(s.st, fx_loop, &o, fx_on_alarms, &r),
                     TORPOR_ESTATE);
    s.p->desc.destroy(s.st);
    tpr_plugin_close(s.p);

    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    ck_assert_int_eq(
        fx_ops(&s)->commit(s.st, fx_loop, &o, bad_kind, 1, fx_on_done, &r),
        TORPOR_EINVAL);
    ck_assert_int_eq(
        fx_ops(&s)->commit(s.st, fx_loop, &o, huge, 1, fx_on_done, &r),
        TORPOR_ELIMIT);
    ck_assert_int_eq(
        fx_ops(&s)->alarms_due(s.st, fx_loop, 1, 0, fx_on_alarms, &r),
        TORPOR_EINVAL);
    ck_assert_int_eq(
        fx_ops(&s)->objects(s.st, fx_loop, NULL, 0, fx_on_objects, &r),
        TORPOR_EINVAL);
    fx_drain();
    ck_assert_int_eq(fx_done, 0);
    fx_store_close(&s);
}
END_TEST

/* destroy finishes every queued request, and all of it is on disk. */
START_TEST(test_ops_destroy_drains_queue)
{
    enum { COUNT = 200 };
    torpor_storage_object o = fx_obj("room");
    struct fx_result *r = calloc(COUNT, sizeof(*r));
    char key[COUNT][8];
    struct fx_store s;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    for (int i = 0; i < COUNT; i++) {
        snprintf(key[i], sizeof(key[i]), "k%03d", i);
        torpor_write w = {.kind = TORPOR_WRITE_PUT,
                          .key = {key[i], strlen(key[i])},
                          .value = {key[i], strlen(key[i])}};
        ck_assert_int_eq(
            fx_ops(&s)->commit(s.st, fx_loop, &o, &w, 1, fx_on_done, &r[i]),
            TORPOR_OK);
    }
    fx_store_close(&s);
    ck_assert_int_eq(fx_done, COUNT);
    fx_done = 0;
    for (int i = 0; i < COUNT; i++) {
        ck_assert_int_eq(r[i].err, TORPOR_OK);
        ck_assert_int_eq(r[i].seq, i + 1);
    }
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    torpor_bytes keys[] = {FX_B("k000"), FX_B("k199")};
    ck_assert_str_eq(fx_get_text(&s, &o, keys, 2).text, "k000=k000,k199=k199");
    fx_store_close(&s);
    free(r);
}
END_TEST
/* ---- the lock ---- */

/* A second opener is refused, in this process and in another one. */
START_TEST(test_lock_refuses_second_opener)
{
    char dir[512];
    char line[700];
    struct fx_store s1;
    struct fx_store s2;
    int status;

    ck_assert_int_eq(fx_store_open(&s1, "s", NULL), TORPOR_OK);
    fx_log_clear();
    ck_assert_int_eq(fx_store_open(&s2, "s", NULL), TORPOR_EBUSY);
    fx_path(dir, sizeof(dir), "s");
    snprintf(
        line, sizeof(line),
        "ERR file: could not lock data directory \"%s\": in use by another process (pid %ld)",
        dir, (long)getpid());
    fx_assert_logged(line);
    fx_store_close(&s2);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        void *st;
        char why[128];

        if (s1.p->desc.create(&fx_host, s1.p, &st) != TORPOR_OK
            || s1.p->desc.configure(st, "dir", dir, why, sizeof(why))
                   != TORPOR_OK) {
            _exit(100);
        }
        _exit((int)s1.p->desc.start(st));
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), TORPOR_EBUSY);

    fx_store_close(&s1);
    ck_assert_int_eq(fx_store_open(&s2, "s", NULL), TORPOR_OK);
    fx_store_close(&s2);
}
END_TEST

static Suite *
file_store_suite(void)
{
    Suite *s = suite_create("file_store");
    TCase *record = tcase_create("record");
    TCase *config = tcase_create("config");
    TCase *opers = tcase_create("ops");
    TCase *lock = tcase_create("lock");
    TCase *all[] = {record, config, opers, lock};

    for (size_t i = 0; i < FX_N(all); i++) {
        tcase_add_checked_fixture(all[i], fx_setup, fx_teardown);
        tcase_set_timeout(all[i], 120);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_test(record, test_record_commit_round_trip);
    tcase_add_test(record, test_record_checksum_catches_every_flip);
    tcase_add_test(record, test_record_commit_bytes_limits);
    tcase_add_test(config, test_config_keys_and_values);
    tcase_add_test(opers, test_ops_read_sees_queued_commit);
    tcase_add_test(opers, test_ops_get_and_list_ranges);
    tcase_add_test(opers, test_ops_alarms_due_in_time_order);
    tcase_add_test(opers, test_ops_objects_in_id_order);
    tcase_add_test(opers, test_ops_drop_survives_reopen);
    tcase_add_test(opers, test_ops_refuse_bad_calls);
    tcase_add_test(opers, test_ops_destroy_drains_queue);
    tcase_add_test(lock, test_lock_refuses_second_opener);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(file_store_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
