/*
 * check_pg_store: the postgres storage plugin against a real PostgreSQL.
 * Migrations apply once, also when two nodes start at once; every op
 * completes exactly once, in queue order per object, never inside its
 * call; a commit is all or nothing, also when commits of many objects
 * share a transaction; a server that goes away fails ops
 * with EIO within their deadline, and the plugin reconnects when it is
 * back.
 *
 * The plugin is driven through its entry point, loaded from
 * TORPOR_PLUGIN_PATH, with the core's host table and a real loop.  One
 * throwaway cluster (tests/pg/pgctl.sh) serves the whole binary.
 */
#include "build-config.h"

#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loader.h"
#include "core/loop.h"
#include "tests/pg/harness.h"

/* ---- core ---- */

/* The first start applies schema v1 and logs it; the next applies nothing. */
START_TEST(test_pg_migrations_apply_once)
{
    char ci[700];
    char with_pw[800];
    struct pgt_harness a;
    struct pgt_harness b;
    PGconn *c;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_fresh_db("torpor_mig", ci, sizeof(ci));
    /* Trust auth never asks for it, so it can only leak through a log. */
    snprintf(with_pw, sizeof(with_pw), "%s password=sekret", ci);
    pgt_log_clear();
    pgt_open_started(&a, with_pw, NULL);
    ck_assert(pgt_log_has("applied schema migrations 1 to PostgreSQL \"host="));
    ck_assert(pgt_log_has("dbname=torpor_mig\""));
    c = pgt_admin("torpor_mig");
    ck_assert_int_eq(
        pgt_admin_count(
            c,
            "SELECT count(*) FROM torpor_schema_migrations WHERE version = 1 AND applied_at IS NOT NULL"),
        1);
    ck_assert_int_eq(
        pgt_admin_count(
            c,
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('torpor_objects', 'torpor_kv', 'torpor_alarms')"),
        3);
    ck_assert_int_eq(
        pgt_admin_count(
            c,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'torpor_alarms_time_ms'"),
        1);

    pgt_log_clear();
    pgt_open_started(&b, with_pw, NULL);
    ck_assert(pgt_log_has("is up to date at version 1"));
    ck_assert(!pgt_log_has("applied schema migrations"));
    ck_assert_int_eq(
        pgt_admin_count(c, "SELECT count(*) FROM torpor_schema_migrations"), 1);
    ck_assert(!pgt_log_has("sekret"));
    PQfinish(c);
    pgt_close(&a);
    pgt_close(&b);
}
END_TEST

struct starter {
    struct pgt_harness *h;
    pthread_barrier_t *barrier;
    torpor_err err;
};

static void *
starter_run(void *arg)
{
    struct starter *s = arg;

    pthread_barrier_wait(s->barrier);
    s->err = pgt_start(s->h);
    return NULL;
}

/* Two nodes starting at once on an empty database both succeed. */
START_TEST(test_pg_concurrent_start)
{
    char ci[700];
    struct pgt_harness h[2];
    struct starter s[2];
    pthread_t t[2];
    pthread_barrier_t barrier;
    PGconn *c;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_fresh_db("torpor_race", ci, sizeof(ci));
    pthread_barrier_init(&barrier, NULL, 2);
    for (int i = 0; i < 2; i++) {
        pgt_open(&h[i], ci, NULL);
        s[i].h = &h[i];
        s[i].barrier = &barrier;
        s[i].err = TORPOR_EINVAL;
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_create(&t[i], NULL, starter_run, &s[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(s[i].err, TORPOR_OK);
    }
    c = pgt_admin("torpor_race");
    ck_assert_int_eq(
        pgt_admin_count(c, "SELECT count(*) FROM torpor_schema_migrations"), 1);
    PQfinish(c);
    pthread_barrier_destroy(&barrier);
    pgt_close(&h[0]);
    pgt_close(&h[1]);
}
END_TEST

/* Gets find what commits wrote; lists honour prefix, bounds, order, limit. */
START_TEST(test_pg_get_and_list)
{
    char ci[700];
    struct pgt_harness h;
    torpor_storage_object a = pgt_object(0x41, "a");
    torpor_storage_object b = pgt_object(0x42, "b");
    torpor_write w[] = {
        pgt_put(PGT_BYTES("a"), PGT_BYTES("1")),
        pgt_put(PGT_BYTES("b"), PGT_BYTES("")),
        pgt_put(PGT_BYTES("c"), PGT_BYTES("3")),
        pgt_put(PGT_BYTES("\0x"), PGT_BYTES("nul")),
        pgt_put(PGT_BYTES("\xff\xff"), PGT_BYTES("ff")),
        pgt_put(PGT_BYTES("ab"), PGT_BYTES("4")),
        pgt_put(PGT_BYTES("ac"), PGT_BYTES("5")),
        pgt_put(PGT_BYTES("b\xff"), PGT_BYTES("6")),
        pgt_put(PGT_BYTES("c"), PGT_BYTES("33")),
        pgt_del(PGT_BYTES("zz")),
    };
    torpor_bytes keys[] = {PGT_BYTES("a"), PGT_BYTES("b"), PGT_BYTES("zz"),
                           PGT_BYTES("c"), PGT_BYTES("\0x")};
    torpor_range all = {0};
    torpor_range r;
    struct pgt_res res;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_fresh_db("torpor_kv", ci, sizeof(ci));
    pgt_open_started(&h, ci, NULL);
    pgt_commit_ok(&h, &a, w, sizeof(w) / sizeof(w[0]));
    pgt_commit_ok(&h, &a, NULL, 0);

    pgt_get(&h, &a, keys, 5, &res);
    pgt_wait(&h, &res);
    ck_assert_int_eq(res.err, TORPOR_OK);
    ck_assert_str_eq(res.text, "a=1,b=,zz!,c=33,\\x00x=nul,");

    pgt_list_is(&h, &a, &all,
                "\\x00x=nul,a=1,ab=4,ac=5,b=,b\\xff=6,c=33,\\xff\\xff=ff,");
    pgt_list_is(&h, &b, &all, "");
    r = (torpor_range){.prefix = PGT_BYTES("a")};
    pgt_list_is(&h, &a, &r, "a=1,ab=4,ac=5,");
    r = (torpor_range){.prefix = PGT_BYTES("a"), .reverse = true, .limit = 2};
    pgt_list_is(&h, &a, &r, "ac=5,ab=4,");
    r = (torpor_range){.prefix = PGT_BYTES("b")};
    pgt_list_is(&h, &a, &r, "b=,b\\xff=6,");
    r = (torpor_range){.prefix = PGT_BYTES("\xff")};
    pgt_list_is(&h, &a, &r, "\\xff\\xff=ff,");
    r = (torpor_range){.start = PGT_BYTES("ab"),
                       .has_start = true,
                       .end = PGT_BYTES("b"),
                       .has_end = true};
    pgt_list_is(&h, &a, &r, "ab=4,ac=5,");
    r = (torpor_range){.prefix = PGT_BYTES("a"),
                       .start = PGT_BYTES("aa"),
                       .has_start = true,
                       .end = PGT_BYTES("ac"),
                       .has_end = true};
    pgt_list_is(&h, &a, &r, "ab=4,");
    r = (torpor_range){.prefix = PGT_BYTES("a"),
                       .end = PGT_BYTES("zz"),
                       .has_end = true,
                       .reverse = true};
    pgt_list_is(&h, &a, &r, "ac=5,ab=4,a=1,");
    r = (torpor_range){.reverse = true, .limit = 3};
    pgt_list_is(&h, &a, &r, "\\xff\\xff=ff,c=33,b\\xff=6,");
    pgt_close(&h);
}
END_TEST

/* fill_random fills p with bytes no compressor can shrink. */
static void
fill_random(uint8_t *p, size_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15u;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 32);
    }
}

/* A batch with one failing write applies nothing, and the pool goes on. */
START_TEST(test_pg_commit_atomic)
{
    static uint8_t huge[6000];
    struct pgt_harness h;
    torpor_storage_object o = pgt_object(0x51, "atomic");
    torpor_write first[] = {pgt_put(PGT_BYTES("k"), PGT_BYTES("old"))};
    torpor_write batch[] = {
        pgt_put(PGT_BYTES("k"), PGT_BYTES("new")),
        pgt_put(PGT_BYTES("x"), PGT_BYTES("1")),
        pgt_alarm(PGT_BYTES("al"), 5),
        /* Too big for a btree entry: PostgreSQL refuses the row. */
        pgt_put((torpor_bytes){huge, sizeof(huge)}, PGT_BYTES("v")),
    };
    torpor_bytes keys[] = {PGT_BYTES("k"), PGT_BYTES("x")};
    struct pgt_res r;
    struct pgt_res r2;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    fill_random(huge, sizeof(huge));
    pgt_open_started(&h, NULL, NULL);
    pgt_commit_ok(&h, &o, first, 1);
    pgt_commit(&h, &o, batch, 4, &r);
    pgt_get(&h, &o, keys, 2, &r2);
    pgt_wait(&h, &r2);
    ck_assert(r.done);
    ck_assert_int_eq(r.err, TORPOR_EIO);
    ck_assert_int_eq(r2.err, TORPOR_OK);
    ck_assert_str_eq(r2.text, "k=old,x!,");
    pgt_alarms(&h, &o, &r);
    pgt_wait(&h, &r);
    ck_assert_str_eq(r.text, "");
    ck_assert(pgt_log_has("could not run \"torpor_kv_put\""));
    pgt_close(&h);
}
END_TEST

#define N_ORDER 20

/*
 * Ops queued back to back without waiting complete in queue order per
 * object, each read sees the commit queued before it, and reads across
 * objects see commits queued before them.
 */
START_TEST(test_pg_order_per_object)
{
    char ci[700];
    struct pgt_harness h;
    torpor_storage_object a = pgt_object(0x61, "a");
    torpor_storage_object b = pgt_object(0x62, "b");
    torpor_storage_object c = pgt_object(0x63, "c");
    static struct pgt_res ca[N_ORDER], ga[N_ORDER], cb[N_ORDER];
    char vals[N_ORDER][4];
    torpor_bytes key = PGT_BYTES("n");
    struct pgt_res due;
    struct pgt_res objs;
    struct pgt_res last;
    const char *const kv[] = {"pool_size", "3", NULL};

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_fresh_db("torpor_order", ci, sizeof(ci));
    pgt_open_started(&h, ci, kv);
    for (int i = 0; i < N_ORDER; i++) {
        torpor_write w;

        snprintf(vals[i], sizeof(vals[i]), "%d", i);
        w = pgt_put(key, (torpor_bytes){vals[i], strlen(vals[i])});
        pgt_commit(&h, &a, &w, 1, &ca[i]);
        pgt_get(&h, &a, &key, 1, &ga[i]);
        pgt_commit(&h, &b, &w, 1, &cb[i]);
    }
    {
        torpor_write w = pgt_alarm(PGT_BYTES("t"), 5);

        pgt_commit(&h, &c, &w, 1, &last);
    }
    pgt_due(&h, 10, 10, &due);
    pgt_objects(&h, NULL, 10, &objs);
    pgt_wait(&h, &objs);
    pgt_wait(&h, &due);
    for (int i = 0; i < N_ORDER; i++) {
        char want[16];

        pgt_wait(&h, &ga[i]);
        pgt_wait(&h, &cb[i]);
        ck_assert_int_eq(ca[i].err, TORPOR_OK);
        ck_assert_int_eq(cb[i].err, TORPOR_OK);
        ck_assert_int_eq(ga[i].err, TORPOR_OK);
        ck_assert_int_lt(ca[i].order, ga[i].order);
        if (i > 0) {
            ck_assert_int_lt(ga[i - 1].order, ca[i].order);
            ck_assert_int_lt(cb[i - 1].order, cb[i].order);
        }
        snprintf(want, sizeof(want), "n=%d,", i);
        ck_assert_str_eq(ga[i].text, want);
    }
    ck_assert_int_eq(due.err, TORPOR_OK);
    ck_assert_str_eq(due.text, "relay/c:t@5,");
    ck_assert_int_lt(last.order, due.order);
    ck_assert_str_eq(objs.text, "relay/a,relay/b,relay/c,");
    pgt_close(&h);
}
END_TEST

#define N_GROUP 100
#define GROUP_BAD 50
#define GROUP_READ 70

/* count_xids: transaction ids taken since from, by others than c. */
static int
count_xids(PGconn *c, int from)
{
    /* Each call takes an id of its own, the one at from included. */
    return pgt_admin_count(c, "SELECT pg_current_xact_id()::text::int") - from
           - 1;
}

/*
 * Commits of many objects queued back to back share transactions, and
 * each stays atomic: one that fails at the server in the middle of a
 * group fails alone while the 99 others are applied, all complete in
 * queue order, and a read queued among them sees the commit before it.
 */
START_TEST(test_pg_group_commit)
{
    static uint8_t huge[6000];
    static char names[N_GROUP][8];
    static char vals[N_GROUP][8];
    static torpor_storage_object o[N_GROUP];
    static struct pgt_res r[N_GROUP];
    const char *const kv[] = {"pool_size", "1", NULL};
    torpor_storage_object warm = pgt_object(0xf0, "warm");
    torpor_write ww = pgt_put(PGT_BYTES("warm"), PGT_BYTES("1"));
    torpor_bytes key = PGT_BYTES("k");
    struct pgt_res g_read;
    struct pgt_res g_bad;
    struct pgt_res g_last;
    struct pgt_harness h;
    char want[16];
    char ci[700];
    PGconn *c;
    int xid0;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    fill_random(huge, sizeof(huge));
    pgt_fresh_db("torpor_group", ci, sizeof(ci));
    pgt_open_started(&h, ci, kv);
    /* With the connection up, the first commit goes at once, alone. */
    pgt_commit_ok(&h, &warm, &ww, 1);
    c = pgt_admin("torpor_group");
    xid0 = pgt_admin_count(c, "SELECT pg_current_xact_id()::text::int");
    pgt_log_clear();
    for (int i = 0; i < N_GROUP; i++) {
        torpor_write w[2];

        snprintf(names[i], sizeof(names[i]), "g%d", i);
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        o[i] = pgt_object((uint8_t)(i + 1), names[i]);
        w[0] = pgt_put(key, (torpor_bytes){vals[i], strlen(vals[i])});
        /* Too big for a btree entry: the server refuses this commit. */
        w[1] = pgt_put((torpor_bytes){huge, sizeof(huge)}, PGT_BYTES("x"));
        pgt_commit(&h, &o[i], w, i == GROUP_BAD ? 2 : 1, &r[i]);
        if (i == GROUP_READ) {
            pgt_get(&h, &o[i], &key, 1, &g_read);
        }
    }
    pgt_get(&h, &o[GROUP_BAD], &key, 1, &g_bad);
    pgt_get(&h, &o[N_GROUP - 1], &key, 1, &g_last);
    pgt_wait(&h, &g_last);

    for (int i = 0; i < N_GROUP; i++) {
        ck_assert_msg(r[i].done, "commit %d never completed", i);
        ck_assert_int_eq(r[i].err, i == GROUP_BAD ? TORPOR_EIO : TORPOR_OK);
        if (i > 0) {
            ck_assert_int_lt(r[i - 1].order, r[i].order);
        }
    }
    ck_assert_int_lt(r[GROUP_READ].order, g_read.order);
    ck_assert_int_lt(g_read.order, r[GROUP_READ + 1].order);
    snprintf(want, sizeof(want), "k=v%d,", GROUP_READ);
    ck_assert_str_eq(g_read.text, want);
    ck_assert(g_bad.done);
    ck_assert_int_lt(r[N_GROUP - 1].order, g_bad.order);
    ck_assert_int_lt(g_bad.order, g_last.order);
    ck_assert_str_eq(g_bad.text, "k!,");
    snprintf(want, sizeof(want), "k=v%d,", N_GROUP - 1);
    ck_assert_str_eq(g_last.text, want);
    /* One WARN, from the failing commit sent alone; the group's is DEBUG. */
    ck_assert(pgt_log_has("could not run \"torpor_kv_put\""));

    /* Every row of the failing commit rolled back, its object's too. */
    ck_assert_int_eq(
        pgt_admin_count(c, "SELECT count(*) FROM torpor_kv WHERE key = 'k'"),
        N_GROUP - 1);
    ck_assert_int_eq(
        pgt_admin_count(c, "SELECT count(*) FROM torpor_kv WHERE key <> 'k'"),
        1);
    ck_assert_int_eq(
        pgt_admin_count(
            c, "SELECT count(*) FROM torpor_objects WHERE name = 'g50'"),
        0);
    ck_assert_int_eq(pgt_admin_count(c, "SELECT count(*) FROM torpor_objects"),
                     N_GROUP);
    /*
     * Far fewer transactions than commits: the first commit alone, then
     * groups (the one that failed and its retry in parts included).  Each
     * writing transaction takes one id, committed or rolled back; the rows
     * name the transactions that wrote them.
     */
    ck_assert_int_le(count_xids(c, xid0), 10);
    ck_assert_int_le(
        pgt_admin_count(
            c,
            "SELECT count(DISTINCT xmin::text) FROM torpor_kv WHERE key = 'k'"),
        5);
    PQfinish(c);
    pgt_close(&h);
}
END_TEST

/* Alarms by object and by due time; objects in id order; drop. */
START_TEST(test_pg_alarms_objects_drop)
{
    char ci[700];
    struct pgt_harness h;
    torpor_storage_object x = pgt_object(0x10, "x");
    torpor_storage_object y = pgt_object(0x20, "y");
    torpor_storage_object z = pgt_object(0x30, "z");
    torpor_write wx[] = {pgt_alarm(PGT_BYTES("a1"), 300),
                         pgt_alarm(PGT_BYTES("a2"), 100),
                         pgt_put(PGT_BYTES("k"), PGT_BYTES("v"))};
    torpor_write wy[] = {pgt_alarm(PGT_BYTES("b"), 200)};
    torpor_write wz[] = {pgt_put(PGT_BYTES("k"), PGT_BYTES("v"))};
    torpor_write wy_del[] = {pgt_alarm_del(PGT_BYTES("b"))};
    torpor_write wz_del[] = {pgt_del(PGT_BYTES("k"))};
    torpor_bytes k = PGT_BYTES("k");
    struct pgt_res r;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_fresh_db("torpor_alarms", ci, sizeof(ci));
    pgt_open_started(&h, ci, NULL);
    pgt_commit_ok(&h, &x, wx, 3);
    pgt_commit_ok(&h, &y, wy, 1);
    pgt_commit_ok(&h, &z, wz, 1);

    pgt_alarms(&h, &x, &r);
    pgt_expect_text(&h, &r, "relay/x:a1@300,relay/x:a2@100,");
    pgt_due(&h, 250, 10, &r);
    pgt_expect_text(&h, &r, "relay/x:a2@100,relay/y:b@200,");
    pgt_due(&h, 1000, 1, &r);
    pgt_expect_text(&h, &r, "relay/x:a2@100,");
    pgt_due(&h, 99, 10, &r);
    pgt_expect_text(&h, &r, "");
    pgt_objects(&h, NULL, 10, &r);
    pgt_expect_text(&h, &r, "relay/x,relay/y,relay/z,");
    pgt_objects(&h, NULL, 2, &r);
    pgt_expect_text(&h, &r, "relay/x,relay/y,");
    pgt_objects(&h, y.id, 10, &r);
    pgt_expect_text(&h, &r, "relay/z,");

    /* An object left without keys or alarms is no longer listed. */
    pgt_commit_ok(&h, &y, wy_del, 1);
    pgt_objects(&h, NULL, 10, &r);
    pgt_expect_text(&h, &r, "relay/x,relay/z,");
    pgt_due(&h, 250, 10, &r);
    pgt_expect_text(&h, &r, "relay/x:a2@100,");

    pgt_drop(&h, &x, &r);
    pgt_wait(&h, &r);
    ck_assert_int_eq(r.err, TORPOR_OK);
    pgt_alarms(&h, &x, &r);
    pgt_expect_text(&h, &r, "");
    pgt_get(&h, &x, &k, 1, &r);
    pgt_expect_text(&h, &r, "k!,");
    pgt_objects(&h, NULL, 10, &r);
    pgt_expect_text(&h, &r, "relay/z,");
    pgt_commit_ok(&h, &z, wz_del, 1);
    pgt_objects(&h, NULL, 10, &r);
    pgt_expect_text(&h, &r, "");
    pgt_close(&h);
}
END_TEST

/* ---- errors ---- */

/* Unknown keys, bad values and contradictory settings are refused. */
START_TEST(test_pg_config_errors)
{
    static const char *const bad[][2] = {
        {"pool_size", "0"},          {"pool_size", "65"},
        {"pool_size", "-1"},         {"pool_size", "2x"},
        {"pool_size", ""},           {"op_timeout_ms", "abc"},
        {"connect_timeout_ms", "0"}, {"reconnect_min_ms", " 5"},
        {"conninfo", "host"},        {"conninfo", "nokey='open"},
    };
    struct pgt_harness h;
    torpor_storage_object o = pgt_object(1, "o");
    char why[128];
    void *st;

    pgt_open(&h, "", NULL);
    st = h.p->state;
    ck_assert_int_eq(h.p->desc.configure(st, "nope", "1", why, sizeof(why)),
                     TORPOR_ENOKEY);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        ck_assert_int_eq(
            h.p->desc.configure(st, bad[i][0], bad[i][1], why, sizeof(why)),
            TORPOR_EINVAL);
        ck_assert_msg(why[0] != '\0', "no reason for %s", bad[i][0]);
    }
    ck_assert_int_eq(
        h.p->desc.configure(st, "conninfo", "host", why, sizeof(why)),
        TORPOR_EINVAL);
    ck_assert_str_eq(why, "not a valid libpq connection string");
    ck_assert_int_eq(
        h.p->desc.configure(st, "pool_size", "0", why, sizeof(why)),
        TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected an integer from 1 to 64");

    /* Ops before start are refused without a callback. */
    ck_assert_int_eq(h.ops->commit(st, h.loop, &o, NULL, 0, pgt_on_done, NULL),
                     TORPOR_ESTATE);

    ck_assert_int_eq(
        h.p->desc.configure(st, "reconnect_min_ms", "500", why, sizeof(why)),
        TORPOR_OK);
    ck_assert_int_eq(
        h.p->desc.configure(st, "reconnect_max_ms", "100", why, sizeof(why)),
        TORPOR_OK);
    pgt_log_clear();
    ck_assert_int_eq(pgt_start(&h), TORPOR_EINVAL);
    ck_assert(pgt_log_has(
        "could not start: reconnect_min_ms exceeds reconnect_max_ms"));
    pgt_close(&h);
}
END_TEST

/* A server that cannot be reached fails start with one ERR line. */
START_TEST(test_pg_start_unreachable)
{
    const char *const kv[] = {"connect_timeout_ms", "2000", NULL};
    struct pgt_harness h;

    pgt_open(
        &h,
        "host=/nonexistent/torpor port=5432 dbname=torpor user=torpor password=sekret",
        kv);
    pgt_log_clear();
    ck_assert_int_eq(pgt_start(&h), TORPOR_EIO);
    ck_assert(pgt_log_has(" ERR "));
    ck_assert(pgt_log_has(
        "could not connect to PostgreSQL \"host=/nonexistent/torpor port=5432 dbname=torpor\": "));
    ck_assert(!pgt_log_has("sekret"));
    pgt_close(&h);
}
END_TEST

/* After stop, new ops are refused; one queued before still completes. */
START_TEST(test_pg_stop_refuses)
{
    struct pgt_harness h;
    torpor_storage_object o = pgt_object(0x71, "stop");
    torpor_write w = pgt_put(PGT_BYTES("k"), PGT_BYTES("v"));
    struct pgt_res r;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_open_started(&h, NULL, NULL);
    pgt_commit(&h, &o, &w, 1, &r);
    h.p->desc.stop(h.p->state);
    ck_assert_int_eq(
        h.ops->commit(h.p->state, h.loop, &o, &w, 1, pgt_on_done, &r),
        TORPOR_ECLOSED);
    pgt_wait(&h, &r);
    ck_assert_int_eq(r.err, TORPOR_OK);
    pgt_close(&h);
}
END_TEST

/* retry_commit commits until it succeeds or PGT_GUARD_MS passes. */
static void
retry_commit(struct pgt_harness *h, const torpor_storage_object *o,
             const torpor_write *w)
{
    uint64_t deadline = tpr_now_ms() + PGT_GUARD_MS;
    struct pgt_res r;

    do {
        pgt_commit(h, o, w, 1, &r);
        pgt_wait(h, &r);
        if (r.err == TORPOR_OK) {
            return;
        }
        ck_assert_int_eq(r.err, TORPOR_EIO);
        pgt_sleep(h, 100);
    } while (tpr_now_ms() < deadline);
    ck_abort_msg("the plugin did not reconnect");
}

/*
 * With the server stopped, ops fail with EIO by their deadline instead of
 * hanging; once it is back, the plugin reconnects by itself.
 */
START_TEST(test_pg_server_down_then_back)
{
    const char *const kv[] = {"op_timeout_ms",
                              "1000",
                              "connect_timeout_ms",
                              "1000",
                              "reconnect_min_ms",
                              "50",
                              "reconnect_max_ms",
                              "300",
                              NULL};
    struct pgt_harness h;
    torpor_storage_object o = pgt_object(0x81, "down");
    torpor_write w1 = pgt_put(PGT_BYTES("k"), PGT_BYTES("1"));
    torpor_write w2 = pgt_put(PGT_BYTES("k"), PGT_BYTES("2"));
    torpor_write w3 = pgt_put(PGT_BYTES("k"), PGT_BYTES("3"));
    torpor_bytes k = PGT_BYTES("k");
    struct pgt_res r;
    struct pgt_res g;
    uint64_t t0;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_open_started(&h, NULL, kv);
    pgt_commit_ok(&h, &o, &w1, 1);
    pgt_log_clear();
    ck_assert_int_eq(pgt_ctl("down", NULL, 0), 0);
    /* Let the pool see the loss and fail to reconnect for a while. */
    pgt_sleep(&h, 300);
    ck_assert(pgt_log_has("lost connection to PostgreSQL \"host="));
    ck_assert(pgt_log_has("could not connect to PostgreSQL \"host="));

    t0 = tpr_now_ms();
    pgt_commit(&h, &o, &w2, 1, &r);
    pgt_get(&h, &o, &k, 1, &g);
    pgt_wait(&h, &g);
    ck_assert(r.done);
    ck_assert_int_eq(r.err, TORPOR_EIO);
    ck_assert_int_eq(g.err, TORPOR_EIO);
    ck_assert_int_lt(tpr_now_ms() - t0, 10000);

    ck_assert_int_eq(pgt_ctl("up", NULL, 0), 0);
    retry_commit(&h, &o, &w3);
    pgt_get(&h, &o, &k, 1, &g);
    pgt_expect_text(&h, &g, "k=3,");
    ck_assert(pgt_log_has("reconnected to PostgreSQL \"host="));
    pgt_close(&h);
}
END_TEST

/*
 * An op the server does not answer in time fails with EIO; its connection
 * is replaced and later ops succeed.
 */
START_TEST(test_pg_hung_op_times_out)
{
    const char *const kv[] = {
        "op_timeout_ms", "1000", "reconnect_min_ms", "50", "reconnect_max_ms",
        "300",           NULL};
    struct pgt_harness h;
    torpor_storage_object o = pgt_object(0x91, "hung");
    torpor_write w = pgt_put(PGT_BYTES("k"), PGT_BYTES("1"));
    PGconn *c;
    struct pgt_res r;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_open_started(&h, NULL, kv);
    pgt_commit_ok(&h, &o, &w, 1);
    c = pgt_admin("torpor");
    pgt_admin_exec(c, "BEGIN");
    pgt_admin_exec(c, "LOCK TABLE torpor_kv IN ACCESS EXCLUSIVE MODE");
    pgt_log_clear();
    pgt_commit(&h, &o, &w, 1, &r);
    pgt_wait(&h, &r);
    ck_assert_int_eq(r.err, TORPOR_EIO);
    ck_assert(pgt_log_has("no answer within op_timeout_ms"));
    pgt_admin_exec(c, "ROLLBACK");
    PQfinish(c);
    retry_commit(&h, &o, &w);
    pgt_close(&h);
}
END_TEST

#define N_LOST 10

/*
 * A group of commits in flight when its connection is lost fails whole:
 * every commit with EIO, in order, and none is applied; the pool then
 * reconnects.
 */
START_TEST(test_pg_group_lost)
{
    const char *const kv[] = {"pool_size",
                              "1",
                              "op_timeout_ms",
                              "20000",
                              "reconnect_min_ms",
                              "50",
                              "reconnect_max_ms",
                              "300",
                              NULL};
    static char names[N_LOST][8];
    static torpor_storage_object o[N_LOST];
    static struct pgt_res r[N_LOST];
    torpor_write w = pgt_put(PGT_BYTES("k"), PGT_BYTES("v"));
    struct pgt_harness h;
    uint64_t deadline;
    char ci[700];
    PGconn *c;
    PGconn *k;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_fresh_db("torpor_glost", ci, sizeof(ci));
    pgt_open_started(&h, ci, kv);
    /*
     * An uncommitted row of the first object's key: the group's first
     * write waits on it, in the server, inside the group's transaction.
     */
    c = pgt_admin("torpor_glost");
    k = pgt_admin("torpor_glost");
    pgt_admin_exec(c, "BEGIN");
    pgt_admin_exec(
        c,
        "INSERT INTO torpor_kv VALUES ('\\xc00000000000000000000000000000c0', 'k', 'x')");
    /* The pool connects on the first op: all of them wait, one group. */
    for (int i = 0; i < N_LOST; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        o[i] = pgt_object((uint8_t)(0xc0 + i), names[i]);
        pgt_commit(&h, &o[i], &w, 1, &r[i]);
    }
    deadline = tpr_now_ms() + PGT_GUARD_MS;
    while (
        pgt_admin_count(
            k,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'torpor' AND wait_event_type = 'Lock'")
        != 1) {
        ck_assert_msg(tpr_now_ms() < deadline,
                      "the group never reached the lock");
        pgt_sleep(&h, 20);
    }
    ck_assert(!r[0].done);
    pgt_log_clear();
    ck_assert_int_eq(
        pgt_admin_count(
            k,
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'torpor') t"),
        1);
    PQfinish(k);
    pgt_wait(&h, &r[N_LOST - 1]);
    for (int i = 0; i < N_LOST; i++) {
        ck_assert_msg(r[i].done, "commit %d never completed", i);
        ck_assert_int_eq(r[i].err, TORPOR_EIO);
        if (i > 0) {
            ck_assert_int_eq(r[i - 1].order + 1, r[i].order);
        }
    }
    ck_assert(pgt_log_has("lost connection to PostgreSQL \"host="));
    pgt_admin_exec(c, "ROLLBACK");
    ck_assert_int_eq(pgt_admin_count(c, "SELECT count(*) FROM torpor_kv"), 0);
    ck_assert_int_eq(pgt_admin_count(c, "SELECT count(*) FROM torpor_objects"),
                     0);
    retry_commit(&h, &o[0], &w);
    ck_assert_int_eq(pgt_admin_count(c, "SELECT count(*) FROM torpor_kv"), 1);
    PQfinish(c);
    pgt_close(&h);
}
END_TEST

#define N_SHUTDOWN 20

/*
 * Ops still queued at destroy complete once each, in order: those already
 * sent with their real answer, the rest with ECLOSED; what reported
 * success is in the database.
 */
START_TEST(test_pg_destroy_completes_queued)
{
    struct pgt_harness h;
    torpor_storage_object o = pgt_object(0xa1, "shutdown");
    torpor_storage_object o2 = pgt_object(0xa2, "never");
    torpor_write w[N_SHUTDOWN];
    char keys[N_SHUTDOWN][8];
    static struct pgt_res r[N_SHUTDOWN + 1];
    torpor_range all = {0};
    struct pgt_res l;
    const char *const kv[] = {"pool_size", "1", NULL};
    int base;

    ck_assert_msg(pgt_conninfo[0] != '\0', "no PostgreSQL");
    pgt_open_started(&h, NULL, kv);
    pgt_commit_ok(&h, &o, NULL, 0);
    base = h.completed;
    for (int i = 0; i < N_SHUTDOWN; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%02d", i);
        w[i] =
            pgt_put((torpor_bytes){keys[i], strlen(keys[i])}, PGT_BYTES("v"));
        pgt_commit(&h, &o, &w[i], 1, &r[i]);
    }
    pgt_close(&h);
    for (int i = 0; i < N_SHUTDOWN; i++) {
        ck_assert_msg(r[i].done, "commit %d never completed", i);
        ck_assert_int_eq(r[i].err, TORPOR_OK);
        ck_assert_int_eq(r[i].order, base + i + 1);
    }

    /* Queued before any connection is up: nothing was sent. */
    pgt_open_started(&h, NULL, NULL);
    pgt_commit(&h, &o2, &w[0], 1, &r[N_SHUTDOWN]);
    pgt_close(&h);
    ck_assert(r[N_SHUTDOWN].done);
    ck_assert_int_eq(r[N_SHUTDOWN].err, TORPOR_ECLOSED);

    pgt_open_started(&h, NULL, NULL);
    pgt_list(&h, &o, &all, &l);
    pgt_wait(&h, &l);
    ck_assert_int_eq(l.err, TORPOR_OK);
    ck_assert_str_eq(
        l.text,
        "k00=v,k01=v,k02=v,k03=v,k04=v,k05=v,k06=v,k07=v,k08=v,k09=v,k10=v,k11=v,k12=v,k13=v,k14=v,k15=v,k16=v,k17=v,k18=v,k19=v,");
    pgt_list(&h, &o2, &all, &l);
    pgt_wait(&h, &l);
    ck_assert_str_eq(l.text, "");
    pgt_close(&h);
}
END_TEST

static Suite *
pg_store_suite(void)
{
    Suite *s = suite_create("pg_store");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");

    pgt_tcases_left = 2;
    tcase_add_unchecked_fixture(core, pgt_cluster_setup, pgt_cluster_teardown);
    tcase_add_unchecked_fixture(errors, pgt_cluster_setup,
                                pgt_cluster_teardown);
    tcase_set_timeout(core, 120);
    tcase_set_timeout(errors, 120);
    tcase_add_test(core, test_pg_migrations_apply_once);
    tcase_add_test(core, test_pg_concurrent_start);
    tcase_add_test(core, test_pg_get_and_list);
    tcase_add_test(core, test_pg_commit_atomic);
    tcase_add_test(core, test_pg_order_per_object);
    tcase_add_test(core, test_pg_group_commit);
    tcase_add_test(core, test_pg_alarms_objects_drop);
    tcase_add_test(errors, test_pg_config_errors);
    tcase_add_test(errors, test_pg_start_unreachable);
    tcase_add_test(errors, test_pg_stop_refuses);
    tcase_add_test(errors, test_pg_destroy_completes_queued);
    tcase_add_test(errors, test_pg_server_down_then_back);
    tcase_add_test(errors, test_pg_hung_op_times_out);
    tcase_add_test(errors, test_pg_group_lost);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(pg_store_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
