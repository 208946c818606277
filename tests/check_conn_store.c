/*
 * check_conn_store: a loop's store of connection records
 * (core/conn_store.c).  A record is the transport's part, copied or
 * pointed to, then the core's; it finds its transport and shard from its
 * address, is named by a 32-bit ref, and goes back to a block that is
 * unmapped once empty.  Teardown hands unreleased records to the
 * transport's conn_discard.  A walk visits a transport's records in
 * batches.
 */
#include "build-config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/object_internal.h"
#include "core/runtime.h"

/* More records than two blocks of 64 KiB hold. */
#define MANY 4000

static void *discarded[8];
static int ndiscarded;

static void
fake_discard(void *tconn)
{
    if (ndiscarded < 8) {
        discarded[ndiscarded] = tconn;
    }
    ndiscarded++;
}

/* A transport as the loader leaves it: only what the store reads. */
static struct torpor_plugin_ctx *
fake_transport(uint32_t conn_bytes)
{
    struct torpor_plugin_ctx *p = calloc(1, sizeof(*p));

    ck_assert_ptr_nonnull(p);
    p->desc.kind = TORPOR_KIND_TRANSPORT;
    p->ops.transport.conn_bytes = conn_bytes;
    p->ops.transport.conn_discard = conn_bytes > 0 ? fake_discard : NULL;
    return p;
}

/* The transport's bytes are copied right before a zeroed core part. */
START_TEST(test_store_copies_transport_part)
{
    struct tpr_shard shard = {0};
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *t = fake_transport(20);
    uint8_t tconn[20];
    torpor_conn *conn;

    for (size_t i = 0; i < sizeof(tconn); i++) {
        tconn[i] = (uint8_t)(0xa0 + i);
    }
    ck_assert_int_eq(tpr_conn_store_new(&shard, &store), TORPOR_OK);
    ck_assert_int_eq(tpr_conn_new(store, t, tconn, &conn), TORPOR_OK);
    ck_assert_ptr_eq(tpr_conn_tconn(conn),
                     (uint8_t *)conn - TORPOR_CONN_SPAN(20));
    ck_assert_mem_eq(tpr_conn_tconn(conn), tconn, sizeof(tconn));
    ck_assert_uint_eq((uintptr_t)tpr_conn_tconn(conn) % 8, 0);
    ck_assert_ptr_eq(tpr_conn_transport(conn), t);
    ck_assert_ptr_eq(tpr_conn_shard(conn), &shard);
    ck_assert_ptr_null(conn->object);
    ck_assert_uint_eq(conn->id, 0);
    ck_assert_uint_eq(conn->next, 0);
    conn->transport_done = true;
    tpr_conn_delete(conn);
    tpr_conn_store_free(store);
    free(t);
}
END_TEST

/* A transport without conn_bytes keeps its record: the slot points to it. */
START_TEST(test_store_points_to_own_record)
{
    struct tpr_shard shard = {0};
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *t = fake_transport(0);
    int own;
    torpor_conn *conn;

    ck_assert_int_eq(tpr_conn_store_new(&shard, &store), TORPOR_OK);
    ck_assert_int_eq(tpr_conn_new(store, t, &own, &conn), TORPOR_OK);
    ck_assert_ptr_eq(tpr_conn_tconn(conn), &own);
    ck_assert_ptr_eq(tpr_conn_transport(conn), t);
    conn->transport_done = true;
    tpr_conn_delete(conn);
    tpr_conn_store_free(store);
    free(t);
}
END_TEST

/* Refs are distinct, never 0, and name their record across blocks. */
START_TEST(test_store_refs_round_trip)
{
    struct tpr_shard shard = {0};
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *t = fake_transport(16);
    struct torpor_plugin_ctx *u = fake_transport(0);
    static torpor_conn *conns[MANY];
    static uint32_t refs[MANY];
    uint8_t tconn[16] = {0};

    ck_assert_int_eq(tpr_conn_store_new(&shard, &store), TORPOR_OK);
    for (int i = 0; i < MANY; i++) {
        /* Two transports: two kinds of slot in one store. */
        ck_assert_int_eq(
            tpr_conn_new(store, i % 3 == 0 ? u : t, tconn, &conns[i]),
            TORPOR_OK);
        refs[i] = tpr_conn_ref(conns[i]);
        ck_assert_uint_ne(refs[i], 0);
    }
    for (int i = 0; i < MANY; i++) {
        ck_assert_ptr_eq(tpr_conn_near(conns[0], refs[i]), conns[i]);
        ck_assert_ptr_eq(tpr_conn_near(conns[MANY - 1 - i], refs[i]), conns[i]);
        ck_assert_uint_ne(refs[i], refs[(i + 1) % MANY]);
    }
    ck_assert_ptr_null(tpr_conn_near(conns[0], 0));
    for (int i = 0; i < MANY; i++) {
        conns[i]->transport_done = true;
        tpr_conn_delete(conns[i]);
    }
    tpr_conn_store_free(store);
    free(t);
    free(u);
}
END_TEST

/* mapped: whether the page holding p is mapped. */
static bool
mapped(const void *p)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char v;
    void *start = (void *)((uintptr_t)p & ~(uintptr_t)(page - 1));

    return mincore(start, (size_t)page, &v) == 0;
}

/* Freed slots are used again; emptied blocks go back, but for one. */
START_TEST(test_store_reuses_and_unmaps)
{
    struct tpr_shard shard = {0};
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *t = fake_transport(16);
    static torpor_conn *conns[MANY];
    uint8_t tconn[16] = {0};
    torpor_conn *again;
    int still = 0;

    ck_assert_int_eq(tpr_conn_store_new(&shard, &store), TORPOR_OK);
    for (int i = 0; i < MANY; i++) {
        ck_assert_int_eq(tpr_conn_new(store, t, tconn, &conns[i]), TORPOR_OK);
        conns[i]->transport_done = true;
    }
    /* One slot freed in a full block is the next one handed out. */
    tpr_conn_delete(conns[7]);
    ck_assert_int_eq(tpr_conn_new(store, t, tconn, &again), TORPOR_OK);
    ck_assert_ptr_eq(again, conns[7]);
    again->transport_done = true;
    for (int i = 0; i < MANY; i++) {
        tpr_conn_delete(conns[i]);
    }
    /* The records were in at least three blocks; one stays mapped. */
    ck_assert(((uintptr_t)conns[0] ^ (uintptr_t)conns[MANY - 1]) >= 65536);
    for (int i = 0; i < MANY; i += 100) {
        still += mapped(conns[i]);
    }
    ck_assert_int_lt(still, MANY / 100 / 2);
    tpr_conn_store_free(store);
    free(t);
}
END_TEST

/* Teardown gives each record its transport has not released to discard. */
START_TEST(test_store_free_discards_unreleased)
{
    struct tpr_shard shard = {0};
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *t = fake_transport(16);
    uint8_t tconn[16] = {0};
    torpor_conn *a, *b, *c;

    ndiscarded = 0;
    ck_assert_int_eq(tpr_conn_store_new(&shard, &store), TORPOR_OK);
    ck_assert_int_eq(tpr_conn_new(store, t, tconn, &a), TORPOR_OK);
    ck_assert_int_eq(tpr_conn_new(store, t, tconn, &b), TORPOR_OK);
    ck_assert_int_eq(tpr_conn_new(store, t, tconn, &c), TORPOR_OK);
    b->transport_done = true; /* its close waits for its class */
    void *ta = tpr_conn_tconn(a);
    void *tc = tpr_conn_tconn(c);
    tpr_conn_store_free(store);
    ck_assert_int_eq(ndiscarded, 2);
    ck_assert(discarded[0] == ta || discarded[1] == ta);
    ck_assert(discarded[0] == tc || discarded[1] == tc);
    free(t);
}
END_TEST

/* Visits per record of a walk, by the index kept in its transport part. */
static uint8_t walk_seen[MANY];

static void
walk_count(void *arg, void *tconn)
{
    uint32_t i;

    (void)arg;
    memcpy(&i, tconn, sizeof(i));
    ck_assert_uint_lt(i, MANY);
    walk_seen[i]++;
}

/*
 * A walk in batches visits every record of its transport that is not
 * released, once a pass, and no other transport's.
 */
START_TEST(test_store_walk_visits_each_once)
{
    struct tpr_shard shard = {0};
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *t = fake_transport(16);
    struct torpor_plugin_ctx *u = fake_transport(16);
    static torpor_conn *conns[MANY];
    uint8_t tconn[16] = {0};
    uint64_t cursor = 0;
    int calls = 0;

    ck_assert_int_eq(tpr_conn_store_new(&shard, &store), TORPOR_OK);
    for (uint32_t i = 0; i < MANY; i++) {
        memcpy(tconn, &i, sizeof(i));
        ck_assert_int_eq(tpr_conn_new(store, i % 5 == 0 ? u : t, tconn,
                                      &conns[i]),
                         TORPOR_OK);
    }
    conns[1]->transport_done = true; /* released: no longer the walk's */
    for (int pass = 0; pass < 2; pass++) {
        memset(walk_seen, 0, sizeof(walk_seen));
        do {
            calls++;
            ck_assert_int_lt(calls, 100);
        } while (!tpr_conn_store_walk(store, t, &cursor, 100, walk_count,
                                      NULL));
        ck_assert_uint_eq(cursor, 0);
        for (int i = 0; i < MANY; i++) {
            ck_assert_uint_eq(walk_seen[i], i % 5 == 0 || i == 1 ? 0 : 1);
        }
    }
    /* 3199 records in batches of 100, twice. */
    ck_assert_int_eq(calls, 2 * 32);
    for (int i = 0; i < MANY; i++) {
        conns[i]->transport_done = true;
        tpr_conn_delete(conns[i]);
    }
    tpr_conn_store_free(store);
    free(t);
    free(u);
}
END_TEST

static void
walk_delete(void *arg, void *tconn)
{
    torpor_conn *conn = (torpor_conn *)((uint8_t *)tconn
                                        + TORPOR_CONN_SPAN(16));

    walk_count(arg, tconn);
    conn->transport_done = true;
    tpr_conn_delete(conn);
}

/*
 * A callback may free the record it is given, down to emptying and
 * unmapping its block, and the walk goes on with the rest.
 */
START_TEST(test_store_walk_survives_frees)
{
    struct tpr_shard shard = {0};
    struct tpr_conn_store *store;
    struct torpor_plugin_ctx *t = fake_transport(16);
    uint8_t tconn[16] = {0};
    uint64_t cursor = 0;
    torpor_conn *conn;
    int calls = 0;

    ck_assert_int_eq(tpr_conn_store_new(&shard, &store), TORPOR_OK);
    for (uint32_t i = 0; i < MANY; i++) {
        memcpy(tconn, &i, sizeof(i));
        ck_assert_int_eq(tpr_conn_new(store, t, tconn, &conn), TORPOR_OK);
    }
    memset(walk_seen, 0, sizeof(walk_seen));
    do {
        calls++;
        ck_assert_int_lt(calls, 100);
    } while (!tpr_conn_store_walk(store, t, &cursor, 333, walk_delete, NULL));
    for (int i = 0; i < MANY; i++) {
        ck_assert_uint_eq(walk_seen[i], 1);
    }
    /* Nothing is left to visit. */
    ck_assert(tpr_conn_store_walk(store, t, &cursor, 333, walk_delete, NULL));
    ck_assert_uint_eq(cursor, 0);
    tpr_conn_store_free(store);
    free(t);
}
END_TEST

static Suite *
conn_store_suite(void)
{
    Suite *s = suite_create("conn_store");
    TCase *core = tcase_create("core");

    tcase_add_test(core, test_store_copies_transport_part);
    tcase_add_test(core, test_store_points_to_own_record);
    tcase_add_test(core, test_store_refs_round_trip);
    tcase_add_test(core, test_store_reuses_and_unmaps);
    tcase_add_test(core, test_store_free_discards_unreleased);
    tcase_add_test(core, test_store_walk_visits_each_once);
    tcase_add_test(core, test_store_walk_survives_frees);
    suite_add_tcase(s, core);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(conn_store_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
