/*
 * check_schema: the generated protobuf-c code for room events round-trips,
 * and a reader ignores fields it does not know, which is what lets a newer
 * torpord talk to an older peer.
 */
#include "build-config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "torpor/event.pb-c.h"

/* pack_message packs a text message event for object relay/lobby. */
static size_t
pack_message(uint8_t **out)
{
    Torpor__ObjectId object = TORPOR__OBJECT_ID__INIT;
    Torpor__Message message = TORPOR__MESSAGE__INIT;
    Torpor__Event event = TORPOR__EVENT__INIT;
    static const uint8_t id[16] = {1, 2, 3};

    object.class_name = "relay";
    object.name.data = (uint8_t *)"lob\0by";
    object.name.len = 6;
    object.id.data = (uint8_t *)id;
    object.id.len = sizeof(id);
    message.kind = TORPOR__MESSAGE__KIND__TEXT;
    message.data.data = (uint8_t *)"hello";
    message.data.len = 5;
    event.object = &object;
    event.conn_id = 42;
    event.time_ms = 1700000000000ull;
    event.body_case = TORPOR__EVENT__BODY_MESSAGE;
    event.message = &message;

    size_t len = torpor__event__get_packed_size(&event);
    *out = malloc(len + 16);
    ck_assert_ptr_nonnull(*out);
    ck_assert_uint_eq(torpor__event__pack(&event, *out), len);
    return len;
}

/* An event packs and unpacks with every field, NUL bytes included. */
START_TEST(test_schema_event_round_trip)
{
    uint8_t *buf;
    size_t len = pack_message(&buf);

    Torpor__Event *e = torpor__event__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->object->class_name, "relay");
    ck_assert_uint_eq(e->object->name.len, 6);
    ck_assert_mem_eq(e->object->name.data, "lob\0by", 6);
    ck_assert_uint_eq(e->object->id.len, 16);
    ck_assert_uint_eq(e->conn_id, 42);
    ck_assert_uint_eq(e->time_ms, 1700000000000ull);
    ck_assert_int_eq(e->body_case, TORPOR__EVENT__BODY_MESSAGE);
    ck_assert_int_eq(e->message->kind, TORPOR__MESSAGE__KIND__TEXT);
    ck_assert_uint_eq(e->message->data.len, 5);
    ck_assert_mem_eq(e->message->data.data, "hello", 5);
    torpor__event__free_unpacked(e, NULL);
    free(buf);
}
END_TEST

/* A field from a newer schema (number 99) is skipped, not an error. */
START_TEST(test_schema_ignores_unknown_fields)
{
    uint8_t *buf;
    size_t len = pack_message(&buf);

    /* field 99, varint: key (99 << 3 | 0) = 792 = 0x98 0x06, value 7 */
    buf[len++] = 0x98;
    buf[len++] = 0x06;
    buf[len++] = 0x07;
    Torpor__Event *e = torpor__event__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->conn_id, 42);
    ck_assert_mem_eq(e->message->data.data, "hello", 5);
    torpor__event__free_unpacked(e, NULL);
    free(buf);
}
END_TEST

/* Truncated bytes are refused with NULL, never read past the end. */
START_TEST(test_schema_refuses_truncated)
{
    uint8_t *buf;
    size_t len = pack_message(&buf);

    for (size_t cut = 1; cut < len; cut++) {
        Torpor__Event *e = torpor__event__unpack(NULL, len - cut, buf);
        /* Some prefixes end on a field boundary and are valid events. */
        if (e != NULL) {
            torpor__event__free_unpacked(e, NULL);
        }
    }
    buf[1] = 0xff;  /* a length prefix far past the end */
    ck_assert_ptr_null(torpor__event__unpack(NULL, len, buf));
    free(buf);
}
END_TEST

static Suite *
schema_suite(void)
{
    Suite *s = suite_create("schema");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");

    tcase_add_test(core, test_schema_event_round_trip);
    tcase_add_test(core, test_schema_ignores_unknown_fields);
    tcase_add_test(errors, test_schema_refuses_truncated);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(schema_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
