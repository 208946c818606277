/*
 * check_backend_wire: the backend class's Request, written by hand around
 * parts packed once, is a Request that protobuf-c reads back field for
 * field; and every malformed Reply is refused whole, with the reason the
 * log will give.
 */
#include "build-config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static const uint8_t wire_id[16] = {0x7f, 1, 2, 3, 4, 5, 6, 7,
                                    8, 9, 10, 11, 12, 13, 14, 15};

/* wire_message_event packs a text message of conn 42 to room "lob\0by". */
static void
wire_message_event(uint8_t **buf, size_t *len)
{
    struct bk_event_desc d = {
        .name = {.data = "lob\0by", .len = 6},
        .conn_id = 42,
        .time_ms = 1700000000000ull,
        .body = BK_MESSAGE,
        .kind = TORPOR_MSG_TEXT,
        .data = {.data = "hello", .len = 5},
    };

    memcpy(d.id, wire_id, 16);
    ck_assert_int_eq(bk_pack_event(&d, buf, len), TORPOR_OK);
}

/* A request with every part unpacks to the same fields. */
START_TEST(test_wire_request_round_trip)
{
    uint8_t *event, *conn;
    size_t event_len, conn_len;
    torpor_bytes tags[2] = {{.data = "alice", .len = 5},
                            {.data = "admins", .len = 6}};
    torpor_bytes attachment = {.data = "a\0b", .len = 3};
    torpor_kv rows[2] = {
        {.key = {.data = "k1", .len = 2}, .value = {.data = "v1", .len = 2},
         .found = true},
        {.key = {.data = "k2", .len = 2}, .found = false},
    };
    struct bk_result results[2];

    wire_message_event(&event, &event_len);
    ck_assert_int_eq(bk_pack_conn(42, tags, 2, attachment, &conn, &conn_len),
                     TORPOR_OK);
    ck_assert_int_eq(bk_pack_result(rows, 2, &results[0]), TORPOR_OK);
    ck_assert_int_eq(bk_pack_result(rows, 0, &results[1]), TORPOR_OK);
    struct bk_request_parts p = {
        .event_id = 0x123456789abcull, .step = 2, .attempt = 1,
        .conn_count = 3, .event = event, .event_len = event_len,
        .conn = conn, .conn_len = conn_len, .results = results,
        .nresults = 2, .continuation = (const uint8_t *)"warn",
        .continuation_len = 4,
    };
    size_t len = bk_request_size(&p);
    uint8_t *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    bk_request_write(&p, buf);

    Torpor__Backend__Request *r =
        torpor__backend__request__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->version, 1);
    ck_assert_uint_eq(r->event_id, 0x123456789abcull);
    ck_assert_uint_eq(r->step, 2);
    ck_assert_uint_eq(r->attempt, 1);
    ck_assert_uint_eq(r->conn_count, 3);
    ck_assert_str_eq(r->event->object->class_name, "backend");
    ck_assert_uint_eq(r->event->object->name.len, 6);
    ck_assert_mem_eq(r->event->object->name.data, "lob\0by", 6);
    ck_assert_mem_eq(r->event->object->id.data, wire_id, 16);
    ck_assert_uint_eq(r->event->conn_id, 42);
    ck_assert_uint_eq(r->event->time_ms, 1700000000000ull);
    ck_assert_int_eq(r->event->body_case, TORPOR__EVENT__BODY_MESSAGE);
    ck_assert_int_eq(r->event->message->kind, TORPOR__MESSAGE__KIND__TEXT);
    ck_assert_mem_eq(r->event->message->data.data, "hello", 5);
    ck_assert_uint_eq(r->conn->id, 42);
    ck_assert_uint_eq(r->conn->n_tags, 2);
    ck_assert_mem_eq(r->conn->tags[1].data, "admins", 6);
    ck_assert_uint_eq(r->conn->attachment.len, 3);
    ck_assert_mem_eq(r->conn->attachment.data, "a\0b", 3);
    ck_assert_uint_eq(r->n_results, 2);
    ck_assert_uint_eq(r->results[0]->n_entries, 2);
    ck_assert_mem_eq(r->results[0]->entries[0]->value.data, "v1", 2);
    ck_assert(r->results[0]->entries[0]->found);
    ck_assert(!r->results[0]->entries[1]->found);
    ck_assert_uint_eq(r->results[1]->n_entries, 0);
    ck_assert_uint_eq(r->continuation.len, 4);
    ck_assert_mem_eq(r->continuation.data, "warn", 4);
    torpor__backend__request__free_unpacked(r, NULL);
    free(buf);
    free(event);
    free(conn);
    free(results[0].data);
    free(results[1].data);
}
END_TEST

/* The first attempt of an alarm: zeros left out, no connection. */
START_TEST(test_wire_request_alarm_minimal)
{
    struct bk_event_desc d = {.body = BK_ALARM, .alarm = "reminder/1",
                              .retry = 2};
    uint8_t *event;
    size_t event_len;

    ck_assert_int_eq(bk_pack_event(&d, &event, &event_len), TORPOR_OK);
    struct bk_request_parts p = {.event_id = 9, .event = event,
                                 .event_len = event_len};
    size_t len = bk_request_size(&p);
    uint8_t *buf = malloc(len);
    bk_request_write(&p, buf);
    Torpor__Backend__Request *r =
        torpor__backend__request__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->event_id, 9);
    ck_assert_uint_eq(r->step, 0);
    ck_assert_uint_eq(r->attempt, 0);
    ck_assert_ptr_null(r->conn);
    ck_assert_int_eq(r->event->body_case, TORPOR__EVENT__BODY_ALARM);
    ck_assert_str_eq(r->event->alarm->name, "reminder/1");
    ck_assert_uint_eq(r->event->alarm->retry, 2);
    torpor__backend__request__free_unpacked(r, NULL);
    free(buf);
    free(event);
}
END_TEST

/* ---- replies ---- */

/* A reply to event 7, step 0, with room for two actions and two reads. */
struct wire_reply {
    Torpor__Backend__Reply reply;
    Torpor__Backend__Action actions[2];
    Torpor__Backend__Action *action_ptrs[2];
    Torpor__Message messages[2];
    Torpor__Backend__Send sends[2];
    Torpor__Backend__CloseConn close;
    Torpor__Backend__SetAttachment attach;
    Torpor__Backend__Read reads[BK_MAX_READS + 1];
    Torpor__Backend__Read *read_ptrs[BK_MAX_READS + 1];
    Torpor__Backend__Get get;
    ProtobufCBinaryData key;
};

static void
wire_reply_init(struct wire_reply *w)
{
    memset(w, 0, sizeof(*w));
    torpor__backend__reply__init(&w->reply);
    w->reply.version = 1;
    w->reply.event_id = 7;
    for (size_t i = 0; i < 2; i++) {
        torpor__backend__action__init(&w->actions[i]);
        torpor__message__init(&w->messages[i]);
        torpor__backend__send__init(&w->sends[i]);
        w->messages[i].kind = TORPOR__MESSAGE__KIND__TEXT;
        w->messages[i].data.data = (uint8_t *)"hi";
        w->messages[i].data.len = 2;
        w->sends[i].conn_id = 1;
        w->sends[i].message = &w->messages[i];
        w->actions[i].action_case = TORPOR__BACKEND__ACTION__ACTION_SEND;
        w->actions[i].send = &w->sends[i];
        w->action_ptrs[i] = &w->actions[i];
    }
    torpor__backend__close_conn__init(&w->close);
    torpor__backend__set_attachment__init(&w->attach);
    torpor__backend__get__init(&w->get);
    w->key.data = (uint8_t *)"k";
    w->key.len = 1;
    w->get.n_keys = 1;
    w->get.keys = &w->key;
    for (size_t i = 0; i <= BK_MAX_READS; i++) {
        torpor__backend__read__init(&w->reads[i]);
        w->reads[i].read_case = TORPOR__BACKEND__READ__READ_GET;
        w->reads[i].get = &w->get;
        w->read_ptrs[i] = &w->reads[i];
    }
    w->reply.actions = w->action_ptrs;
    w->reply.reads = w->read_ptrs;
}

/* wire_parse packs w's reply and parses it as the reply to event 7. */
static torpor_err
wire_parse(struct wire_reply *w, uint32_t step, char *why,
           Torpor__Backend__Reply **out)
{
    uint8_t buf[4096];
    size_t len = torpor__backend__reply__pack(&w->reply, buf);

    why[0] = '\0';
    return bk_reply_parse(buf, len, 7, step, out, why, 256);
}

/* wire_refused asserts that w's reply is refused with reason want. */
static void
wire_refused(struct wire_reply *w, uint32_t step, const char *want)
{
    Torpor__Backend__Reply *r = (void *)1;
    char why[256];

    ck_assert_int_eq(wire_parse(w, step, why, &r), TORPOR_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(why, want);
}

/* Two actions in order, and a reply with nothing at all, are accepted. */
START_TEST(test_reply_accepts_actions_and_nothing)
{
    struct wire_reply w;
    Torpor__Backend__Reply *r;
    char why[256];

    wire_reply_init(&w);
    w.reply.n_actions = 2;
    ck_assert_int_eq(wire_parse(&w, 0, why, &r), TORPOR_OK);
    ck_assert_uint_eq(r->n_actions, 2);
    torpor__backend__reply__free_unpacked(r, NULL);
    w.reply.n_actions = 0;
    ck_assert_int_eq(wire_parse(&w, 0, why, &r), TORPOR_OK);
    torpor__backend__reply__free_unpacked(r, NULL);
}
END_TEST

/* A worker's error is accepted, whatever else the reply holds. */
START_TEST(test_reply_accepts_error)
{
    struct wire_reply w;
    Torpor__Backend__Reply *r;
    char why[256];

    wire_reply_init(&w);
    w.reply.error = "database down";
    w.reply.n_actions = 1;
    w.reply.n_reads = 1;
    ck_assert_int_eq(wire_parse(&w, 0, why, &r), TORPOR_OK);
    ck_assert_str_eq(r->error, "database down");
    torpor__backend__reply__free_unpacked(r, NULL);
}
END_TEST

/* Bytes that are not protobuf are refused. */
START_TEST(test_reply_refuses_garbage)
{
    static const char garbage[] = "\xff\xff\xff\xff not protobuf";
    Torpor__Backend__Reply *r;
    char why[256];

    ck_assert_int_eq(bk_reply_parse(garbage, sizeof(garbage) - 1, 7, 0, &r,
                                    why, sizeof(why)),
                     TORPOR_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(why, "17 bytes that are not a Reply message");
}
END_TEST

/* Another protocol version, event or step is refused. */
START_TEST(test_reply_refuses_other_event)
{
    struct wire_reply w;

    wire_reply_init(&w);
    w.reply.version = 2;
    wire_refused(&w, 0, "protocol version 2, expected 1");
    w.reply.version = 1;
    w.reply.event_id = 8;
    wire_refused(&w, 0, "reply to event 8 step 0, expected event 7 step 0");
    w.reply.event_id = 7;
    wire_refused(&w, 1, "reply to event 7 step 0, expected event 7 step 1");
}
END_TEST

/* Actions and reads together, too many reads, bad reads are refused. */
START_TEST(test_reply_refuses_bad_reads)
{
    struct wire_reply w;

    wire_reply_init(&w);
    w.reply.n_actions = 1;
    w.reply.n_reads = 1;
    wire_refused(&w, 0, "1 actions and 1 reads in one reply, expected one or the other");
    w.reply.n_actions = 0;
    w.reply.n_reads = BK_MAX_READS + 1;
    wire_refused(&w, 0, "17 reads, limit 16");
    w.reply.n_reads = 1;
    w.reply.step = BK_MAX_STEPS - 1;
    wire_refused(&w, BK_MAX_STEPS - 1, "reads at step 7, limit 8 steps per event");
    w.reply.step = 0;
    w.get.n_keys = 0;
    wire_refused(&w, 0, "read 0 (get): 0 keys, expected 1 to 256");
    w.get.n_keys = 1;
    w.reads[0].read_case = TORPOR__BACKEND__READ__READ__NOT_SET;
    wire_refused(&w, 0, "read 0: neither get nor list");
}
END_TEST

/* An action that cannot be applied as sent is refused with its index. */
START_TEST(test_reply_refuses_bad_actions)
{
    struct wire_reply w;
    char reason[130];

    wire_reply_init(&w);
    w.reply.n_actions = 2;
    w.actions[1].action_case = TORPOR__BACKEND__ACTION__ACTION__NOT_SET;
    wire_refused(&w, 0, "action 1 (?): no action set");
    w.actions[1].action_case = TORPOR__BACKEND__ACTION__ACTION_SEND;
    w.messages[1].data.data = (uint8_t *)"\xc3\x28";
    wire_refused(&w, 0, "action 1 (send): text is not valid UTF-8");
    w.messages[1].kind = TORPOR__MESSAGE__KIND__BINARY;
    Torpor__Backend__Reply *r;
    char why[256];
    ck_assert_int_eq(wire_parse(&w, 0, why, &r), TORPOR_OK);
    torpor__backend__reply__free_unpacked(r, NULL);
    w.messages[1].kind = TORPOR__MESSAGE__KIND__KIND_UNSPECIFIED;
    wire_refused(&w, 0, "action 1 (send): message kind 0, expected 1 (text) or 2 (binary)");

    w.reply.n_actions = 1;
    w.actions[0].action_case = TORPOR__BACKEND__ACTION__ACTION_CLOSE;
    w.actions[0].close = &w.close;
    w.close.code = 1005;
    wire_refused(&w, 0, "action 0 (close): close code 1005, expected 1000-1003, 1007-1014 or 3000-4999");
    w.close.code = 4000;
    memset(reason, 'x', sizeof(reason));
    w.close.reason.data = (uint8_t *)reason;
    w.close.reason.len = 124;
    wire_refused(&w, 0, "action 0 (close): reason of 124 bytes, expected UTF-8 of at most 123");

    static uint8_t big[TORPOR_ATTACHMENT_MAX_BYTES + 1];
    w.actions[0].action_case = TORPOR__BACKEND__ACTION__ACTION_SET_ATTACHMENT;
    w.actions[0].set_attachment = &w.attach;
    w.attach.data.data = big;
    w.attach.data.len = sizeof(big);
    uint8_t buf[32768];
    size_t len = torpor__backend__reply__pack(&w.reply, buf);
    ck_assert_int_eq(bk_reply_parse(buf, len, 7, 0, &r, why, sizeof(why)),
                     TORPOR_EINVAL);
    ck_assert_str_eq(why, "action 0 (set_attachment): 16385 bytes, limit 16384");
}
END_TEST

static Suite *
backend_wire_suite(void)
{
    Suite *s = suite_create("backend_wire");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");

    tcase_add_test(core, test_wire_request_round_trip);
    tcase_add_test(core, test_wire_request_alarm_minimal);
    tcase_add_test(core, test_reply_accepts_actions_and_nothing);
    tcase_add_test(core, test_reply_accepts_error);
    tcase_add_test(errors, test_reply_refuses_garbage);
    tcase_add_test(errors, test_reply_refuses_other_event);
    tcase_add_test(errors, test_reply_refuses_bad_reads);
    tcase_add_test(errors, test_reply_refuses_bad_actions);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(backend_wire_suite());

    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
