/*
 * bk_call.c: one event's exchange with the workers, attempt by attempt.
 *
 * Each room has one nng REQ context.  An attempt sends the Request on it
 * and waits for the reply; nng completes both on its own threads, and
 * bk_call_on_aio posts the outcome to the room's loop, where
 * bk_call_on_task decides: apply the reply, start the reads it asks for,
 * or try again.  nng's own resending is off, so every retry is one of
 * ours, counted and logged: after timeout_ms without a reply, when the
 * worker's connection drops mid-request, or when the reply is malformed.
 * Sending again on the context abandons the earlier request: nng drops a
 * late reply to it, so no event's actions are applied twice.  After
 * retries further attempts the event is given up.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "backend.h"

static void bk_call_on_aio(void *arg);
static void bk_call_on_task(torpor_task *task);

torpor_err
bk_call_new(struct bk_state *bk, torpor_object *object, struct bk_call **out)
{
    struct bk_call *call = calloc(1, sizeof(*call));

    *out = NULL;
    if (call == NULL) {
        return TORPOR_ENOMEM;
    }
    call->task.run = bk_call_on_task;
    call->bk = bk;
    call->object = object;
    call->loop = bk->host->object_loop(object);
    if (nng_aio_alloc(&call->aio, bk_call_on_aio, call) != 0) {
        free(call);
        return TORPOR_ENOMEM;
    }
    int rv = nng_ctx_open(&call->ctx, bk->sock);
    if (rv != 0) {
        nng_aio_free(call->aio);
        free(call);
        return rv == NNG_ECLOSED ? TORPOR_ECLOSED : TORPOR_ENOMEM;
    }
    *out = call;
    return TORPOR_OK;
}

/* bk_call_clear frees what the event in flight owns. */
static void
bk_call_clear(struct bk_call *call)
{
    free(call->event_buf);
    free(call->conn_buf);
    call->event_buf = NULL;
    call->conn_buf = NULL;
    for (size_t i = 0; i < call->nresults; i++) {
        free(call->results[i].data);
    }
    call->nresults = 0;
    free(call->continuation);
    call->continuation = NULL;
    call->continuation_len = 0;
    if (call->reply != NULL) {
        nng_msg_free(call->reply);
        call->reply = NULL;
    }
    call->phase = BK_IDLE;
}

void
bk_call_free(struct bk_call *call)
{
    if (call == NULL) {
        return;
    }
    /*
     * Cancels an attempt in flight and waits for its completion, which
     * then posts the task (bk_call_on_aio runs even when cancelled); no
     * other completion follows.
     */
    nng_aio_stop(call->aio);
    nng_ctx_close(call->ctx);
    nng_aio_free(call->aio);
    call->aio = NULL;
    bk_call_clear(call);
    if (call->posted) {
        /* Queued on the loop: its run frees it. */
        call->detached = true;
        return;
    }
    free(call);
}

/* ---- nng's side ---- */

/* bk_call_on_aio runs on an nng thread when a send or a receive ends. */
static void
bk_call_on_aio(void *arg)
{
    struct bk_call *call = arg;
    int rv = nng_aio_result(call->aio);

    if (call->phase == BK_SENDING && rv == 0) {
        /* A worker took it: wait for the answer until the deadline. */
        nng_time now = nng_clock();
        call->phase = BK_WAITING;
        nng_aio_set_timeout(call->aio, call->deadline > now
                                           ? (nng_duration)(call->deadline - now)
                                           : 1);
        nng_ctx_recv(call->ctx, call->aio);
        return;
    }
    if (call->phase == BK_SENDING) {
        /* Not sent: the message is still ours. */
        nng_msg_free(nng_aio_get_msg(call->aio));
        nng_aio_set_msg(call->aio, NULL);
    } else if (rv == 0) {
        call->reply = nng_aio_get_msg(call->aio);
        nng_aio_set_msg(call->aio, NULL);
    }
    call->result = rv;
    call->posted = true;
    call->bk->host->loop_post(call->loop, &call->task);
}

/* bk_call_send starts one attempt of the current step.  Room loop. */
static void
bk_call_send(struct bk_call *call)
{
    struct bk_state *bk = call->bk;
    struct bk_request_parts parts = {
        .event_id = call->event_id, .step = call->step,
        .attempt = call->attempt, .conn_count = call->conn_count,
        .event = call->event_buf, .event_len = call->event_len,
        .conn = call->conn_buf, .conn_len = call->conn_len,
        .results = call->results, .nresults = call->nresults,
        .continuation = call->continuation,
        .continuation_len = call->continuation_len,
    };
    size_t len = bk_request_size(&parts);
    nng_msg *msg;

    if (nng_msg_alloc(&msg, len) != 0) {
        bk->host->log(bk->self, TORPOR_LOG_ERR, call->object, NULL, "could not send event %llu (%s): out of memory; dropped", (unsigned long long)call->event_id, call->what);
        __atomic_add_fetch(&bk->stats.dropped, 1, __ATOMIC_RELAXED);
        bk_call_finish(call, TORPOR_ENOMEM);
        return;
    }
    bk_request_write(&parts, nng_msg_body(msg));
    call->phase = BK_SENDING;
    call->deadline = nng_clock() + bk->timeout_ms;
    nng_aio_set_msg(call->aio, msg);
    nng_aio_set_timeout(call->aio, (nng_duration)bk->timeout_ms);
    nng_ctx_send(call->ctx, call->aio);
}

/* ---- the room's side ---- */

torpor_err
bk_call_begin(struct bk_call *call, const char *what, uint64_t conn_id,
              uint8_t *event_buf, size_t event_len, uint8_t *conn_buf,
              size_t conn_len)
{
    struct bk_state *bk = call->bk;

    if (call->phase != BK_IDLE) {
        /* The core delivers one event at a time: this never happens. */
        free(event_buf);
        free(conn_buf);
        return TORPOR_EBUSY;
    }
    call->event_buf = event_buf;
    call->event_len = event_len;
    call->conn_buf = conn_buf;
    call->conn_len = conn_len;
    torpor_err err = bk->host->event_hold(call->object);
    if (err != TORPOR_OK) {
        bk_call_clear(call);
        return err;
    }
    call->event_id = __atomic_add_fetch(&bk->next_event_id, 1,
                                        __ATOMIC_RELAXED);
    call->step = 0;
    call->attempt = 0;
    call->what = what;
    call->conn_id = conn_id;
    call->conn_count = (uint32_t)bk->host->conn_count(call->object);
    __atomic_add_fetch(&bk->stats.events, 1, __ATOMIC_RELAXED);
    bk_call_send(call);
    return TORPOR_OK;
}

void
bk_call_step(struct bk_call *call)
{
    call->step++;
    call->attempt = 0;
    bk_call_send(call);
}

void
bk_call_finish(struct bk_call *call, torpor_err result)
{
    torpor_object *object = call->object;
    const struct torpor_host *host = call->bk->host;

    bk_call_clear(call);
    host->event_release(object, result);
}

/*
 * bk_call_retry starts the next attempt after a failed one, or gives the
 * event up after the last; why says what went wrong, for the log line.
 */
static void TORPOR_PRINTF(2, 3)
bk_call_retry(struct bk_call *call, const char *fmt, ...)
{
    struct bk_state *bk = call->bk;
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (call->attempt < bk->retries) {
        call->attempt++;
        bk->host->log(bk->self, TORPOR_LOG_WARN, call->object, NULL, "event %llu (%s of conn %llu) step %u: %s; retry %u of %u", (unsigned long long)call->event_id, call->what, (unsigned long long)call->conn_id, call->step, why, call->attempt, bk->retries);
        bk_call_send(call);
        return;
    }
    __atomic_add_fetch(&bk->stats.dropped, 1, __ATOMIC_RELAXED);
    bk->host->log(bk->self, TORPOR_LOG_ERR, call->object, NULL, "event %llu (%s of conn %llu) step %u: %s; dropped after %u attempts", (unsigned long long)call->event_id, call->what, (unsigned long long)call->conn_id, call->step, why, call->attempt + 1);
    bk_call_finish(call, TORPOR_EIO);
}

/* bk_call_on_reply acts on a worker's answer. */
static void
bk_call_on_reply(struct bk_call *call, nng_msg *msg)
{
    struct bk_state *bk = call->bk;
    Torpor__Backend__Reply *reply;
    char why[256];

    torpor_err err = bk_reply_parse(nng_msg_body(msg), nng_msg_len(msg),
                                    call->event_id, call->step, &reply, why,
                                    sizeof(why));
    nng_msg_free(msg);
    if (err != TORPOR_OK) {
        __atomic_add_fetch(&bk->stats.malformed, 1, __ATOMIC_RELAXED);
        bk_call_retry(call, "malformed reply: %s", why);
        return;
    }
    if (reply->error != NULL && reply->error[0] != '\0') {
        __atomic_add_fetch(&bk->stats.refused, 1, __ATOMIC_RELAXED);
        bk->host->log(bk->self, TORPOR_LOG_WARN, call->object, NULL, "event %llu (%s of conn %llu): the worker could not handle it: %.200s", (unsigned long long)call->event_id, call->what, (unsigned long long)call->conn_id, reply->error);
        torpor__backend__reply__free_unpacked(reply, NULL);
        bk_call_finish(call, TORPOR_EREFUSED);
        return;
    }
    if (reply->n_reads > 0) {
        bk_apply_reads(call, reply);
        torpor__backend__reply__free_unpacked(reply, NULL);
        return;
    }
    bk->host->log(bk->self, TORPOR_LOG_DEBUG, call->object, NULL, "event %llu (%s of conn %llu): applying %zu actions of step %u, attempt %u", (unsigned long long)call->event_id, call->what, (unsigned long long)call->conn_id, reply->n_actions, call->step, call->attempt);
    bk_apply_actions(call, reply);
    torpor__backend__reply__free_unpacked(reply, NULL);
    __atomic_add_fetch(&bk->stats.applied, 1, __ATOMIC_RELAXED);
    bk_call_finish(call, TORPOR_OK);
}

/* bk_call_on_task runs on the room's loop with the attempt's outcome. */
static void
bk_call_on_task(torpor_task *task)
{
    struct bk_call *call = (struct bk_call *)task;
    struct bk_state *bk;

    call->posted = false;
    if (call->detached) {
        free(call);
        return;
    }
    bk = call->bk;
    int rv = call->result;
    if (rv == 0) {
        nng_msg *msg = call->reply;
        call->reply = NULL;
        bk_call_on_reply(call, msg);
    } else if (rv == NNG_ETIMEDOUT && call->phase == BK_SENDING) {
        __atomic_add_fetch(&bk->stats.timeouts, 1, __ATOMIC_RELAXED);
        bk_call_retry(call, "no worker took it within %u ms (%u connected)", bk->timeout_ms, __atomic_load_n(&bk->connected, __ATOMIC_RELAXED));
    } else if (rv == NNG_ETIMEDOUT) {
        __atomic_add_fetch(&bk->stats.timeouts, 1, __ATOMIC_RELAXED);
        bk_call_retry(call, "no reply within %u ms", bk->timeout_ms);
    } else if (rv == NNG_ECLOSED) {
        /* The socket is closing: torpord is stopping. */
        bk_call_finish(call, TORPOR_ECLOSED);
    } else {
        __atomic_add_fetch(&bk->stats.lost, 1, __ATOMIC_RELAXED);
        bk_call_retry(call, "lost the worker: %s", nng_strerror(rv));
    }
}
