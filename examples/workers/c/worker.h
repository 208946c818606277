/*
 * A backend worker in C: a chat moderator.  It dials torpord's workers
 * address with an nng REP socket, and answers each Request
 * (schemas/torpor/backend.proto) with a Reply.  docs/backend-workers.md
 * describes the protocol; this program is one way to speak it.
 */
#ifndef TORPOR_EXAMPLES_WORKER_H
#define TORPOR_EXAMPLES_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torpor/backend.pb-c.h"

/*
 * A Reply under construction.  Everything it points to is allocated here
 * and listed in allocs, so reply_free releases it all at once.
 */
struct reply {
    Torpor__Backend__Reply msg;
    Torpor__Backend__Action **actions;
    size_t nactions;
    Torpor__Backend__Read **reads;
    size_t nreads;
    void **allocs;
    size_t nallocs;
    bool failed;                /* out of memory somewhere: send nothing */
};

/* reply_init starts the reply to req: version, event id and step. */
void reply_init(struct reply *r, const Torpor__Backend__Request *req);
void reply_free(struct reply *r);

/* Actions, applied by torpord in the order they are added. */
void reply_send(struct reply *r, uint64_t conn, const char *text);
void reply_broadcast(struct reply *r, const char *text, uint64_t exclude);
void reply_broadcast_n(struct reply *r, const void *text, size_t len,
                       uint64_t exclude);
void reply_close(struct reply *r, uint64_t conn, uint32_t code,
                 const char *reason);
void reply_set_attachment(struct reply *r, uint64_t conn, const char *text);
void reply_put(struct reply *r, const char *key, const char *value);
void reply_delete(struct reply *r, const char *key);
void reply_set_alarm(struct reply *r, const char *name, uint64_t delay_ms);

/* reply_get asks for one key, read before the event's next step. */
void reply_get(struct reply *r, const char *key);
/* reply_continue carries text to the next step, as its continuation. */
void reply_continue(struct reply *r, const char *text);

/* reply_pack packs the reply into a new buffer; NULL when out of memory. */
uint8_t *reply_pack(struct reply *r, size_t *len);

/* The moderator's settings. */
struct moderator {
    char **words;               /* refused, lowercase */
    size_t nwords;
    unsigned max_warnings;
};

/*
 * moderate decides what to do with req, adding actions or reads to r.
 * The rules are in moderator.c.
 */
void moderate(const struct moderator *m, const Torpor__Backend__Request *req,
              struct reply *r);

#endif /* TORPOR_EXAMPLES_WORKER_H */
