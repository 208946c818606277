/*
 * check_file_recover: the file storage plugin's recovery on real files in
 * a temporary directory: restarts, torn tails cut at every length, flipped
 * bytes, corrupt closed segments; then compaction, at start and while
 * serving, of objects larger than a record, and every state a crash can
 * leave it in.  The plugin is loaded from plugins/.libs/file.so and driven
 * through tests/file_store_util.c, as in check_file_store.
 */
#include "build-config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/loop.h"
#include "fs.h"
#include "tests/file_store_util.h"

/* ---- recovery ---- */

/* What was committed is all there after a restart, with a summary line. */
START_TEST(test_recover_reopen_keeps_commits)
{
    torpor_storage_object a = fx_obj("a");
    torpor_storage_object b = fx_obj("b");
    torpor_write wa[] = {FX_PUT("x", "1"), FX_PUT("y", "2"), FX_ALARM("t", 7)};
    torpor_write wb[] = {FX_PUT("z", "3")};
    char line[700];
    char dir[512];
    struct fx_store s;

    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &a, wa, FX_N(wa)), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &b, wb, FX_N(wb)), TORPOR_OK);
    fx_store_close(&s);
    fx_log_clear();
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    fx_path(dir, sizeof(dir), "s");
    snprintf(
        line, sizeof(line),
        "loaded \"%s\": 2 objects, 3 keys, 1 alarms, 1 segments, %llu bytes",
        dir, (unsigned long long)fx_seg_bytes("s"));
    fx_assert_logged(line);
    ck_assert_str_eq(fx_list_text(&s, &a, &fx_all_keys).text, "x=1,y=2");
    ck_assert_str_eq(fx_list_text(&s, &b, &fx_all_keys).text, "z=3");
    ck_assert_str_eq(fx_alarms_text(&s, &a).text, "chat/a:t@7");
    fx_store_close(&s);
}
END_TEST

/*
 * three_commits makes BASE/s hold commits a=1, b=2 and c=333 in segment 1
 * and returns the file's size after each.
 */
static void
three_commits(uint64_t size[3], char *path, size_t path_size)
{
    torpor_storage_object o = fx_obj("room");
    torpor_write w[] = {FX_PUT("a", "1"), FX_PUT("b", "2"), FX_PUT("c", "333")};
    struct fx_store s;

    fx_path(path, path_size, "s/00000001.seg");
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fx_commit(&s, &o, &w[i], 1), TORPOR_OK);
        size[i] = fx_file_size(path);
    }
    fx_store_close(&s);
}

/* assert_ab_only: a and b survived a recovery, c did not. */
static void
assert_ab_only(struct fx_store *s)
{
    torpor_storage_object o = fx_obj("room");
    torpor_bytes keys[] = {FX_B("a"), FX_B("b"), FX_B("c")};

    ck_assert_str_eq(fx_get_text(s, &o, keys, 3).text, "a=1,b=2,c=-");
}

/* A tail cut at every length is dropped and the commits before it kept. */
START_TEST(test_recover_torn_tail_every_length)
{
    uint64_t size[3];
    char path[512];
    char line[700];
    size_t len;
    struct fx_store s;

    three_commits(size, path, sizeof(path));
    uint8_t *full = fx_file_read(path, &len);
    for (uint64_t cut = 1; cut < size[2] - size[1]; cut++) {
        fx_file_write(path, full, (size_t)(size[1] + cut));
        fx_log_clear();
        ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
        snprintf(line, sizeof(line),
                 "WARN file: dropped %llu bytes of a torn tail of \"%s\"",
                 (unsigned long long)cut, path);
        fx_assert_logged(line);
        assert_ab_only(&s);
        fx_store_close(&s);
        ck_assert_uint_eq(fx_file_size(path), size[1]);
    }
    /* The store goes on from the cut: a new commit lands and survives. */
    torpor_storage_object o = fx_obj("room");
    torpor_write w[] = {FX_PUT("d", "4")};
    torpor_bytes key = FX_B("d");
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    ck_assert_int_eq(fx_commit(&s, &o, w, 1), TORPOR_OK);
    fx_store_close(&s);
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
    assert_ab_only(&s);
    ck_assert_str_eq(fx_get_text(&s, &o, &key, 1).text, "d=4");
    fx_store_close(&s);
    free(full);
}
END_TEST

/* A flipped byte anywhere in the last record drops that record alone. */
START_TEST(test_recover_flipped_last_record_cut)
{
    uint64_t size[3];
    char path[512];
    char line[700];
    size_t len;
    struct fx_store s;

    three_commits(size, path, sizeof(path));
    uint8_t *full = fx_file_read(path, &len);
    for (uint64_t off = size[1]; off < size[2]; off++) {
        fx_file_write(path, full, len);
        fx_file_flip(path, off);
        fx_log_clear();
        ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_OK);
        snprintf(line, sizeof(line),
                 "dropped %llu bytes of a torn tail of \"%s\"",
                 (unsigned long long)(size[2] - size[1]), path);
        fx_assert_logged(line);
        assert_ab_only(&s);
        fx_store_close(&s);
    }
    free(full);
}
END_TEST

/* A flipped byte in a record that valid ones follow refuses to start. */
START_TEST(test_recover_flipped_middle_refuses)
{
    uint64_t size[3];
    char path[512];
    char line[700];
    struct fx_store s;

    three_commits(size, path, sizeof(path));
    fx_file_flip(path, size[0] + 20);
    fx_log_clear();
    ck_assert_int_eq(fx_store_open(&s, "s", NULL), TORPOR_EIO);
    snprintf(
        line, sizeof(line),
        "ERR file: could not recover \"%s\": corrupt record at offset %llu (bad checksum) followed by a valid record at offset %llu",
        path, (unsigned long long)size[0], (unsigned long long)size[1]);
    fx_assert_logged(line);
    fx_store_close(&s);
    /* Nothing was cut: an operator can still look at every byte. */
    ck_assert_uint_eq(fx_file_size(path), size[2]);
}
END_TEST

/* A corrupt record in a closed segment refuses to start, even its last. */
START_TEST(test_recover_corrupt_closed_segment_refuses)
{
    static const char *const kv[] = {"segment_bytes", "4096", NULL};
    torpor_storage_object o = fx_obj("room");
    char value[200];
    char path[512];
    char line[700];
    struct fx_store s;

    memset(value, 'v', sizeof(value));
    ck_assert_int_eq(fx_store_open(&s, "s", kv), TORPOR_OK);
    for (int i = 0; i < 60; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", i);
        torpor_write w = {.kind = TORPOR_WRITE_PUT,
                          .key = {key, strlen(key)},
                          .value = {value, sizeof(value)}};
        ck_assert_int_eq(fx_commit(&s, &o, &w, 1), TORPOR_OK);
    }
    fx_store_close(&s);
    ck_assert_uint_ge(fx_seg_count("s"), 2);
    fx_path(path, sizeof(path), "s/00000001.seg");
    fx_file_flip(path, fx_file_size(path) - 1);
    fx_log_clear();
    ck_assert_int_eq(fx_store_open(&s, "s", kv), TORPOR_EIO);
    snprintf(line, sizeof(line),
             "could not recover \"%s\": corrupt record at offset", path);
    fx_assert_logged(line);
    fx_store_close(&s);
}
END_TEST
/* ---- compaction ---- */

enum { MODEL_OBJECTS = 20, MODEL_KEYS = 5 };

static const char *const no_compaction[] = {
    "segment_bytes", "4096", "compact_min_bytes", "1125899906842624", "fsync",
    "never",         NULL};
static const char *const compaction[] = {
    "segment_bytes", "4096", "compact_min_bytes", "4096", "fsync",
    "never",         NULL};

static void
model_value(char *buf, int round, int o, int k)
{
    int n = snprintf(buf, 101, "r%d-o%02d-k%d-", round, o, k);

    memset(buf + n, 'x', (size_t)(100 - n));
    buf[100] = '\0';
}

/*
 * model_build writes rounds of every key of MODEL_OBJECTS objects, an
 * alarm on the even ones, a key that is deleted again, and an object that
 * is dropped: plenty of dead bytes for a compaction to shed.
 */
static void
model_build(struct fx_store *s, int rounds)
{
    char name[16];
    char key[MODEL_KEYS][8];
    char value[MODEL_KEYS][101];
    torpor_write w[MODEL_KEYS + 2];

    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < MODEL_OBJECTS; i++) {
            snprintf(name, sizeof(name), "obj%02d", i);
            torpor_storage_object o = fx_obj(name);
            for (int k = 0; k < MODEL_KEYS; k++) {
                snprintf(key[k], sizeof(key[k]), "k%d", k);
                model_value(value[k], r, i, k);
                w[k] = (torpor_write){.kind = TORPOR_WRITE_PUT,
                                      .key = {key[k], strlen(key[k])},
                                      .value = {value[k], 100}};
            }
            w[MODEL_KEYS] = FX_PUT("tmp", "scratch");
            w[MODEL_KEYS + 1] =
                i % 2 == 0 ? FX_ALARM("tick", 1000 + i) : FX_DEL("nothing");
            ck_assert_int_eq(fx_commit(s, &o, w, FX_N(w)), TORPOR_OK);
            torpor_write d[] = {FX_DEL("tmp")};
            ck_assert_int_eq(fx_commit(s, &o, d, 1), TORPOR_OK);
        }
        torpor_storage_object gone = fx_obj("gone");
        torpor_write g[] = {FX_PUT("k", "v"), FX_ALARM("never", 1)};
        ck_assert_int_eq(fx_commit(s, &gone, g, FX_N(g)), TORPOR_OK);
        fx_drop(s, &gone);
    }
}

/* model_verify checks that s holds exactly the last round of model_build. */
static void
model_verify(struct fx_store *s, int rounds)
{
    char name[16];
    char want[1024];
    char value[101];

    for (int i = 0; i < MODEL_OBJECTS; i++) {
        snprintf(name, sizeof(name), "obj%02d", i);
        torpor_storage_object o = fx_obj(name);
        want[0] = '\0';
        for (int k = 0; k < MODEL_KEYS; k++) {
            model_value(value, rounds - 1, i, k);
            size_t len = strlen(want);
            snprintf(want + len, sizeof(want) - len, "%sk%d=%s",
                     k > 0 ? "," : "", k, value);
        }
        ck_assert_str_eq(fx_list_text(s, &o, &fx_all_keys).text, want);
    }
    ck_assert_str_eq(fx_due_text(s, 1003, 100).text,
                     "chat/obj00:tick@1000,chat/obj02:tick@1002");
    struct fx_result all = fx_due_text(s, UINT64_MAX, 100);
    ck_assert_uint_eq(strlen(all.text),
                      10 * strlen("chat/obj00:tick@1000") + 9);
    struct fx_result objs = fx_objects_text(s, NULL, 100);
    ck_assert_uint_eq(strlen(objs.text), 20 * 5 + 19);
}

/* Compaction keeps every live key and alarm, and shrinks the files. */
START_TEST(test_compact_keeps_live_data_and_shrinks)
{
    struct fx_store s;

    ck_assert_int_eq(fx_store_open(&s, "s", no_compaction), TORPOR_OK);
    model_build(&s, 5);
    model_verify(&s, 5);
    fx_store_close(&s);
    uint64_t before = fx_seg_bytes("s");
    size_t nbefore = fx_seg_count("s");

    fx_log_clear();
    ck_assert_int_eq(fx_store_open(&s, "s", compaction), TORPOR_OK);
    fx_assert_logged("NOTICE file: compacted");
    model_verify(&s, 5);
    fx_store_close(&s);
    uint64_t after = fx_seg_bytes("s");
    ck_assert_msg(after < before / 3, "%llu bytes before, %llu after",
                  (unsigned long long)before, (unsigned long long)after);
    ck_assert_uint_lt(fx_seg_count("s"), nbefore);

    /* A compacted store recovers as it is, with nothing left to compact. */
    fx_log_clear();
    ck_assert_int_eq(fx_store_open(&s, "s", compaction), TORPOR_OK);
    model_verify(&s, 5);
    pthread_mutex_lock(&fx_log_mu);
    ck_assert_ptr_null(strstr(fx_log, "compacted"));
    pthread_mutex_unlock(&fx_log_mu);
    fx_store_close(&s);
}
END_TEST

/* Compaction between batches keeps data, and its result recovers. */
START_TEST(test_compact_while_serving)
{
    struct fx_store s;

    ck_assert_int_eq(fx_store_open(&s, "s", compaction), TORPOR_OK);
    fx_log_clear();
    model_build(&s, 8);
    fx_assert_logged("NOTICE file: compacted");
    model_verify(&s, 8);
    fx_store_close(&s);
    ck_assert_int_eq(fx_store_open(&s, "s", no_compaction), TORPOR_OK);
    model_verify(&s, 8);
    model_build(&s, 9);
    fx_store_close(&s);
    ck_assert_int_eq(fx_store_open(&s, "s", no_compaction), TORPOR_OK);
    model_verify(&s, 9);
    fx_store_close(&s);
}
END_TEST

/* big_value fills a 40000-byte value that says which round and key. */
static void
big_value(char *buf, int round, int k)
{
    char tag[16];
    int n = snprintf(tag, sizeof(tag), "r%d-k%02d-", round, k);

    memset(buf, 'a' + (round + k) % 26, 40000);
    memcpy(buf, tag, (size_t)n);
}

/* A copy of the first row's value, for values too long for text. */
struct value_result {
    torpor_err err;
    size_t len;
    uint8_t *data;
};

static void
on_value(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct value_result *r = arg;

    r->err = err;
    if (n > 0 && rows[0].found) {
        r->len = rows[0].value.len;
        r->data = malloc(r->len);
        memcpy(r->data, rows[0].value.data, r->len);
    }
    fx_done++;
    tpr_loop_break(fx_loop);
}

/* assert_big checks every key of the big object holds its last round. */
static void
assert_big(struct fx_store *s, const torpor_storage_object *o, int keys)
{
    char key[8];
    char want[40000];

    for (int k = 0; k < keys; k++) {
        struct value_result r = {0};
        torpor_bytes kb = {key, (size_t)snprintf(key, sizeof(key), "k%02d", k)};

        ck_assert_int_eq(
            fx_ops(s)->get(s->st, fx_loop, o, &kb, 1, on_value, &r), TORPOR_OK);
        fx_wait_done(1);
        ck_assert_int_eq(r.err, TORPOR_OK);
        big_value(want, 2, k);
        ck_assert_uint_eq(r.len, sizeof(want));
        ck_assert_int_eq(memcmp(r.data, want, sizeof(want)), 0);
        free(r.data);
    }
}

/* An object larger than a snapshot record is split and read back whole. */
START_TEST(test_compact_splits_large_object)
{
    enum { KEYS = 40 };
    torpor_storage_object o = fx_obj("big");
    char *value = malloc(40000);
    char key[8];
    struct fx_store s;

    ck_assert_ptr_nonnull(value);
    ck_assert_int_eq(fx_store_open(&s, "s", compaction), TORPOR_OK);
    fx_log_clear();
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < KEYS; k++) {
            snprintf(key, sizeof(key), "k%02d", k);
            big_value(value, r, k);
            torpor_write w = {.kind = TORPOR_WRITE_PUT,
                              .key = {key, strlen(key)},
                              .value = {value, 40000}};
            ck_assert_int_eq(fx_commit(&s, &o, &w, 1), TORPOR_OK);
        }
    }
    fx_assert_logged("NOTICE file: compacted");
    assert_big(&s, &o, KEYS);
    fx_store_close(&s);
    ck_assert_int_eq(fx_store_open(&s, "s", no_compaction), TORPOR_OK);
    assert_big(&s, &o, KEYS);
    fx_store_close(&s);
    free(value);
}
END_TEST

/*
 * crash_state lays out BASE/sub as a crash could leave it: the old
 * segments from index first_old on, then snapshot segments [0, nsnap) of
 * snap, the last of them cut to last_len bytes (0: whole), then its log
 * segment if with_log.  A recovery must then find the model intact.
 */
static void
crash_state(const char *sub, const struct fx_dir_copy *old, size_t first_old,
            const struct fx_dir_copy *snap, size_t nsnap, size_t last_len,
            bool with_log)
{
    size_t snaps = 0;

    fx_dir_make(sub);
    for (size_t i = first_old; i < old->n; i++) {
        fx_dir_put(sub, old, i, old->len[i], NULL);
    }
    for (size_t i = 0; i < snap->n; i++) {
        if (snap->kind[i] == FS_SEG_SNAPSHOT && snaps < nsnap) {
            snaps++;
            bool cut = snaps == nsnap && last_len > 0;
            fx_dir_put(sub, snap, i, cut ? last_len : snap->len[i], NULL);
        } else if (snap->kind[i] == FS_SEG_LOG && with_log) {
            fx_dir_put(sub, snap, i, snap->len[i], NULL);
        }
    }
}

static void
crash_recover(const char *sub, size_t want_segs, const char *want_log)
{
    struct fx_store s;

    fx_log_clear();
    ck_assert_int_eq(fx_store_open(&s, sub, no_compaction), TORPOR_OK);
    if (want_log != NULL) {
        fx_assert_logged(want_log);
    }
    model_verify(&s, 5);
    fx_store_close(&s);
    ck_assert_uint_eq(fx_seg_count(sub), want_segs);
}

/* Every state a crash can leave mid-compaction recovers without loss. */
START_TEST(test_compact_crash_at_each_step)
{
    struct fx_dir_copy old;
    struct fx_dir_copy snap;
    struct fx_store s;
    size_t nsnap = 0;
    char path[600];

    ck_assert_int_eq(fx_store_open(&s, "old", no_compaction), TORPOR_OK);
    model_build(&s, 5);
    fx_store_close(&s);
    fx_dir_save("old", &old);
    crash_state("new", &old, 0, &old, 0, 0, false);
    ck_assert_int_eq(fx_store_open(&s, "new", compaction), TORPOR_OK);
    fx_store_close(&s);
    fx_dir_save("new", &snap);
    for (size_t i = 0; i < snap.n; i++) {
        nsnap += snap.kind[i] == FS_SEG_SNAPSHOT;
    }
    ck_assert_uint_ge(nsnap, 2);
    ck_assert_uint_eq(snap.n, nsnap + 1);

    /* Step 2, a snapshot segment still being written as .tmp. */
    crash_state("c1", &old, 0, &snap, 0, 0, false);
    snprintf(path, sizeof(path), "%s/c1/%.8s.tmp", fx_base, snap.name[0]);
    fx_file_write(path, snap.data[0], snap.len[0] / 2);
    crash_recover("c1", old.n, "a segment left unfinished");
    ck_assert_int_eq(access(path, F_OK), -1);
    /* Step 2, the first snapshot segment renamed, the others not yet. */
    crash_state("c2", &old, 0, &snap, 1, 0, false);
    crash_recover("c2", old.n, "a compaction left unfinished");
    /* Step 2, every snapshot segment there but the end record. */
    crash_state("c3", &old, 0, &snap, nsnap,
                snap.len[nsnap - 1] - FS_REC_HEADER_BYTES - 16, false);
    crash_recover("c3", old.n, "a compaction left unfinished");
    /* Step 3, the snapshot complete, no new log segment yet. */
    crash_state("c4", &old, 0, &snap, nsnap, 0, false);
    crash_recover("c4", nsnap + 1, NULL);
    /* Step 4, the oldest segments deleted, the rest not yet. */
    crash_state("c5", &old, old.n / 2, &snap, nsnap, 0, true);
    crash_recover("c5", nsnap + 1, NULL);
    fx_dir_free(&old);
    fx_dir_free(&snap);
}
END_TEST

static Suite *
file_recover_suite(void)
{
    Suite *s = suite_create("file_recover");
    TCase *recover = tcase_create("recover");
    TCase *compact = tcase_create("compact");
    TCase *all[] = {recover, compact};

    for (size_t i = 0; i < FX_N(all); i++) {
        tcase_add_checked_fixture(all[i], fx_setup, fx_teardown);
        tcase_set_timeout(all[i], 120);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_test(recover, test_recover_reopen_keeps_commits);
    tcase_add_test(recover, test_recover_torn_tail_every_length);
    tcase_add_test(recover, test_recover_flipped_last_record_cut);
    tcase_add_test(recover, test_recover_flipped_middle_refuses);
    tcase_add_test(recover, test_recover_corrupt_closed_segment_refuses);
    tcase_add_test(compact, test_compact_keeps_live_data_and_shrinks);
    tcase_add_test(compact, test_compact_while_serving);
    tcase_add_test(compact, test_compact_splits_large_object);
    tcase_add_test(compact, test_compact_crash_at_each_step);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(file_recover_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
