/*
 * moderator.c: the rules of a moderated chat room.  The Node.js worker in
 * examples/workers/node/ follows the same rules, word for word.
 *
 *   a client joins      it gets "welcome USER"; the others "USER joined"
 *   a text message      the others get "USER: TEXT"
 *   ... with a refused  it is not relayed; the sender gets "warning N of
 *   word                MAX: message refused", and at the MAXth warning
 *                       is closed with 1008 "too many warnings"
 *   "!warnings"         the sender gets "warnings N"
 *   "!remind MS TEXT"   the sender gets "reminder set"; MS ms later the
 *                       whole room gets "reminder: TEXT" (TEXT up to 1000
 *                       bytes, or the sender gets "reminder too long")
 *   a binary message    the sender is closed with 1003 "text only"
 *   a client leaves     the others get "USER left"
 *
 * USER is the client's first tag (?tag=alice), kept as its attachment, or
 * "guest-ID".  The room's state is in storage, nowhere else: the warnings
 * of USER under "warnings/USER", a pending reminder's text under the
 * alarm's name.  Warnings therefore last across reconnects, hibernation
 * and restarts, and any worker can serve any event.  Reading a key takes
 * a second step: the first reply asks for the key, with a continuation
 * saying why; the second request brings its value.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

#define MOD_NAME_MAX 300
#define MOD_REMINDER_MAX 1000
#define MOD_TEXT_MAX (MOD_REMINDER_MAX + 1)

/* mod_user writes the event's user name into out. */
static void
mod_user(const Torpor__Backend__Request *req, char out[MOD_NAME_MAX])
{
    const Torpor__Backend__Connection *c = req->conn;

    if (c != NULL && c->attachment.len > 0) {
        snprintf(out, MOD_NAME_MAX, "%.*s", (int)c->attachment.len,
                 (const char *)c->attachment.data);
    } else if (c != NULL && c->n_tags > 0 && c->tags[0].len > 0) {
        snprintf(out, MOD_NAME_MAX, "%.*s", (int)c->tags[0].len,
                 (const char *)c->tags[0].data);
    } else {
        snprintf(out, MOD_NAME_MAX, "guest-%" PRIu64,
                 c != NULL ? c->id : (uint64_t)0);
    }
}

/* mod_refused: whether text holds a refused word, in any letter case. */
static bool
mod_refused(const struct moderator *m, const char *text, size_t len)
{
    char *lower = malloc(len + 1);
    bool found = false;

    if (lower == NULL) {
        return true;    /* refuse what cannot be checked */
    }
    for (size_t i = 0; i < len; i++) {
        lower[i] = (char)tolower((unsigned char)text[i]);
    }
    lower[len] = '\0';
    for (size_t w = 0; w < m->nwords && !found; w++) {
        found = memmem(lower, len, m->words[w], strlen(m->words[w])) != NULL;
    }
    free(lower);
    return found;
}

/* mod_continuation: the continuation the request carries, as text. */
static bool
mod_continued(const Torpor__Backend__Request *req, const char *what)
{
    size_t n = strlen(what);

    return req->step > 0 && req->continuation.len == n
           && memcmp(req->continuation.data, what, n) == 0;
}

/* mod_first_value: the value of the first key the last step read. */
static bool
mod_first_value(const Torpor__Backend__Request *req, char *out, size_t size)
{
    if (req->n_results < 1 || req->results[0]->n_entries < 1
        || !req->results[0]->entries[0]->found) {
        return false;
    }
    const ProtobufCBinaryData *v = &req->results[0]->entries[0]->value;
    snprintf(out, size, "%.*s", (int)v->len, (const char *)v->data);
    return true;
}

static void
mod_warn(const struct moderator *m, const Torpor__Backend__Request *req,
         const char *user, struct reply *r)
{
    char key[MOD_NAME_MAX + 16], value[32], note[128];
    uint64_t id = req->conn->id;

    snprintf(key, sizeof(key), "warnings/%s", user);
    if (!mod_continued(req, "warn")) {
        reply_get(r, key);
        reply_continue(r, "warn");
        return;
    }
    unsigned long warnings = 0;
    if (mod_first_value(req, value, sizeof(value))) {
        warnings = strtoul(value, NULL, 10);
    }
    warnings++;
    snprintf(value, sizeof(value), "%lu", warnings);
    reply_put(r, key, value);
    snprintf(note, sizeof(note), "warning %lu of %u: message refused",
             warnings, m->max_warnings);
    reply_send(r, id, note);
    if (warnings >= m->max_warnings) {
        reply_close(r, id, 1008, "too many warnings");
    }
}

static void
mod_count(const Torpor__Backend__Request *req, const char *user,
          struct reply *r)
{
    char key[MOD_NAME_MAX + 16], value[32] = "0", note[64];

    snprintf(key, sizeof(key), "warnings/%s", user);
    if (!mod_continued(req, "count")) {
        reply_get(r, key);
        reply_continue(r, "count");
        return;
    }
    mod_first_value(req, value, sizeof(value));
    snprintf(note, sizeof(note), "warnings %s", value);
    reply_send(r, req->conn->id, note);
}

static void
mod_remind(const Torpor__Backend__Request *req, const char *args,
           struct reply *r)
{
    char name[64];
    char *end;
    unsigned long long ms = strtoull(args, &end, 10);

    if (end == args || *end != ' ') {
        reply_send(r, req->conn->id, "usage: !remind MS TEXT");
        return;
    }
    if (strlen(end + 1) > MOD_REMINDER_MAX) {
        reply_send(r, req->conn->id, "reminder too long");
        return;
    }
    snprintf(name, sizeof(name), "reminder/%" PRIu64, req->event_id);
    reply_put(r, name, end + 1);
    reply_set_alarm(r, name, ms);
    reply_send(r, req->conn->id, "reminder set");
}

static void
mod_message(const struct moderator *m, const Torpor__Backend__Request *req,
            const char *user, struct reply *r)
{
    const Torpor__Message *msg = req->event->message;
    uint64_t id = req->conn->id;
    size_t len = msg->data.len;

    if (msg->kind != TORPOR__MESSAGE__KIND__TEXT) {
        reply_close(r, id, 1003, "text only");
        return;
    }
    /* Text is not NUL-terminated on the wire, and may be a megabyte. */
    char *text = malloc(len + 1);
    char *note = malloc(strlen(user) + len + 3);
    if (text == NULL || note == NULL) {
        r->failed = true;
    } else {
        memcpy(text, msg->data.data, len);
        text[len] = '\0';
        if (strcmp(text, "!warnings") == 0) {
            mod_count(req, user, r);
        } else if (strncmp(text, "!remind ", 8) == 0) {
            mod_remind(req, text + 8, r);
        } else if (mod_refused(m, text, len)) {
            mod_warn(m, req, user, r);
        } else {
            /* Byte for byte: the text may hold a NUL. */
            size_t ulen = strlen(user);
            memcpy(note, user, ulen);
            memcpy(note + ulen, ": ", 2);
            memcpy(note + ulen + 2, msg->data.data, len);
            reply_broadcast_n(r, note, ulen + 2 + len, id);
        }
    }
    free(text);
    free(note);
}

static void
mod_alarm(const Torpor__Backend__Request *req, struct reply *r)
{
    const char *name = req->event->alarm->name;
    char text[MOD_TEXT_MAX], note[MOD_TEXT_MAX + 16];

    if (strncmp(name, "reminder/", 9) != 0) {
        return;     /* not ours: succeeding deletes it */
    }
    if (!mod_continued(req, "remind")) {
        reply_get(r, name);
        reply_continue(r, "remind");
        return;
    }
    if (mod_first_value(req, text, sizeof(text))) {
        snprintf(note, sizeof(note), "reminder: %s", text);
        reply_broadcast(r, note, 0);
        reply_delete(r, name);
    }
}

void
moderate(const struct moderator *m, const Torpor__Backend__Request *req,
         struct reply *r)
{
    char user[MOD_NAME_MAX], note[MOD_NAME_MAX + 16];
    const Torpor__Event *ev = req->event;

    if (ev == NULL) {
        return;
    }
    mod_user(req, user);
    switch (ev->body_case) {
    case TORPOR__EVENT__BODY_OPEN:
        reply_set_attachment(r, req->conn->id, user);
        snprintf(note, sizeof(note), "welcome %s", user);
        reply_send(r, req->conn->id, note);
        snprintf(note, sizeof(note), "%s joined", user);
        reply_broadcast(r, note, req->conn->id);
        break;
    case TORPOR__EVENT__BODY_MESSAGE:
        mod_message(m, req, user, r);
        break;
    case TORPOR__EVENT__BODY_CLOSE:
        snprintf(note, sizeof(note), "%s left", user);
        reply_broadcast(r, note, req->conn->id);
        break;
    case TORPOR__EVENT__BODY_ALARM:
        mod_alarm(req, r);
        break;
    default:
        break;
    }
}
