/*
 * bk_reply.c: reading a worker's Reply and deciding whether torpord can
 * apply it.
 *
 * A reply is checked whole before any of it is applied, so a malformed
 * one changes nothing: the event is retried, and the room sees nothing of
 * it.  What can only fail when applied (a key over the storage limit) is
 * left to the core, which refuses that one action.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "ws_utf8.h"

/* The RFC 6455 close codes an endpoint may send. */
static bool
reply_close_code_ok(uint32_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}

bool
bk_utf8_valid(const void *data, size_t len)
{
    struct ws_utf8 v;

    ws_utf8_init(&v);
    return ws_utf8_feed(&v, data, len) && ws_utf8_complete(&v);
}

static torpor_err
reply_bad(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    return TORPOR_EINVAL;
}

static bool
reply_message_ok(const Torpor__Message *m, char *detail, size_t size)
{
    if (m == NULL) {
        snprintf(detail, size, "no message");
        return false;
    }
    if (m->kind != TORPOR__MESSAGE__KIND__TEXT
        && m->kind != TORPOR__MESSAGE__KIND__BINARY) {
        snprintf(detail, size, "message kind %d, expected 1 (text) or 2 (binary)", (int)m->kind);
        return false;
    }
    if (m->kind == TORPOR__MESSAGE__KIND__TEXT
        && !bk_utf8_valid(m->data.data, m->data.len)) {
        snprintf(detail, size, "text is not valid UTF-8");
        return false;
    }
    return true;
}

/* reply_action_ok checks one action; detail says why not. */
static bool
reply_action_ok(const Torpor__Backend__Action *a, const char **name,
                char *detail, size_t size)
{
    switch (a->action_case) {
    case TORPOR__BACKEND__ACTION__ACTION_SEND:
        *name = "send";
        return reply_message_ok(a->send->message, detail, size);
    case TORPOR__BACKEND__ACTION__ACTION_BROADCAST:
        *name = "broadcast";
        return reply_message_ok(a->broadcast->message, detail, size);
    case TORPOR__BACKEND__ACTION__ACTION_CLOSE:
        *name = "close";
        if (!reply_close_code_ok(a->close->code)) {
            snprintf(detail, size, "close code %u, expected 1000-1003, 1007-1014 or 3000-4999", a->close->code);
            return false;
        }
        if (a->close->reason.len > 123
            || !bk_utf8_valid(a->close->reason.data, a->close->reason.len)) {
            snprintf(detail, size, "reason of %zu bytes, expected UTF-8 of at most 123", a->close->reason.len);
            return false;
        }
        return true;
    case TORPOR__BACKEND__ACTION__ACTION_SET_ATTACHMENT:
        *name = "set_attachment";
        if (a->set_attachment->data.len > TORPOR_ATTACHMENT_MAX_BYTES) {
            snprintf(detail, size, "%zu bytes, limit %d", a->set_attachment->data.len, TORPOR_ATTACHMENT_MAX_BYTES);
            return false;
        }
        return true;
    case TORPOR__BACKEND__ACTION__ACTION_PUT:
        *name = "put";
        return true;
    case TORPOR__BACKEND__ACTION__ACTION_DELETE:
        *name = "delete";
        return true;
    case TORPOR__BACKEND__ACTION__ACTION_SET_ALARM:
        *name = "set_alarm";
        return true;
    case TORPOR__BACKEND__ACTION__ACTION_DELETE_ALARM:
        *name = "delete_alarm";
        return true;
    default:
        *name = "?";
        snprintf(detail, size, "no action set");
        return false;
    }
}

static torpor_err
reply_check_reads(const Torpor__Backend__Reply *r, char *why, size_t size)
{
    if (r->n_reads > BK_MAX_READS) {
        return reply_bad(why, size, "%zu reads, limit %d", r->n_reads, BK_MAX_READS);
    }
    for (size_t i = 0; i < r->n_reads; i++) {
        const Torpor__Backend__Read *rd = r->reads[i];
        if (rd->read_case == TORPOR__BACKEND__READ__READ_GET) {
            if (rd->get->n_keys == 0 || rd->get->n_keys > BK_MAX_GET_KEYS) {
                return reply_bad(why, size, "read %zu (get): %zu keys, expected 1 to %d", i, rd->get->n_keys, BK_MAX_GET_KEYS);
            }
        } else if (rd->read_case != TORPOR__BACKEND__READ__READ_LIST) {
            return reply_bad(why, size, "read %zu: neither get nor list", i);
        }
    }
    return TORPOR_OK;
}

static torpor_err
reply_check(const Torpor__Backend__Reply *r, uint64_t event_id,
            uint32_t step, char *why, size_t size)
{
    char detail[160];

    if (r->version != BK_PROTOCOL_VERSION) {
        return reply_bad(why, size, "protocol version %u, expected %d", r->version, BK_PROTOCOL_VERSION);
    }
    if (r->event_id != event_id || r->step != step) {
        return reply_bad(why, size, "reply to event %llu step %u, expected event %llu step %u", (unsigned long long)r->event_id, r->step, (unsigned long long)event_id, step);
    }
    if (r->error != NULL && r->error[0] != '\0') {
        return TORPOR_OK;   /* nothing of it applies */
    }
    if (r->n_actions > 0 && r->n_reads > 0) {
        return reply_bad(why, size, "%zu actions and %zu reads in one reply, expected one or the other", r->n_actions, r->n_reads);
    }
    if (r->n_reads > 0 && step + 1 >= BK_MAX_STEPS) {
        return reply_bad(why, size, "reads at step %u, limit %d steps per event", step, BK_MAX_STEPS);
    }
    torpor_err err = reply_check_reads(r, why, size);
    if (err != TORPOR_OK) {
        return err;
    }
    for (size_t i = 0; i < r->n_actions; i++) {
        const char *name;
        if (!reply_action_ok(r->actions[i], &name, detail, sizeof(detail))) {
            return reply_bad(why, size, "action %zu (%s): %s", i, name, detail);
        }
    }
    return TORPOR_OK;
}

torpor_err
bk_reply_parse(const void *data, size_t len, uint64_t event_id,
               uint32_t step, Torpor__Backend__Reply **out, char *why,
               size_t why_size)
{
    Torpor__Backend__Reply *r =
        torpor__backend__reply__unpack(NULL, len, data);

    *out = NULL;
    if (r == NULL) {
        return reply_bad(why, why_size, "%zu bytes that are not a Reply message", len);
    }
    torpor_err err = reply_check(r, event_id, step, why, why_size);
    if (err != TORPOR_OK) {
        torpor__backend__reply__free_unpacked(r, NULL);
        return err;
    }
    *out = r;
    return TORPOR_OK;
}
