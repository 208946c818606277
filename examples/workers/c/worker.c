/*
 * torpor-moderator: a backend worker in C, with nng and protobuf-c.
 *
 *   torpor-moderator --url tcp://127.0.0.1:5600 [--words darn,heck]
 *                    [--max-warnings 3] [--name NAME] [--quiet]
 *                    [--marker PATH] [--stall-on WORD] [--slow-on WORD]
 *                    [--slow-ms MS] [--garbage-on WORD]
 *
 * It dials torpord's [class.backend] workers address with a REP socket,
 * redialling whenever the connection drops, and answers one request at a
 * time: run several for a pool.  Each event is logged on stderr, one
 * line, starting with the worker's name, unless --quiet.  SIGINT or
 * SIGTERM ends it.
 *
 * The last four options misbehave on purpose, so the tests can watch
 * torpord cope: at the step that would answer with actions, a text
 * message containing the word given to --stall-on gets no answer ever,
 * --slow-on an answer after --slow-ms (default 2000), --garbage-on an
 * answer that is not protobuf.  With --marker, each misbehaves only if it
 * can delete the file PATH first, so among workers sharing PATH exactly
 * one misbehaves, once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "worker.h"

struct options {
    const char *url;
    const char *name;
    const char *marker;
    const char *stall_on;
    const char *slow_on;
    unsigned slow_ms;
    const char *garbage_on;
    bool quiet;
    struct moderator mod;
};

static volatile sig_atomic_t worker_stop;

static void
worker_on_signal(int sig)
{
    (void)sig;
    worker_stop = 1;
}

static void
worker_usage(void)
{
    fprintf(stderr, "usage: torpor-moderator --url URL [--words W1,W2] [--max-warnings N] [--name NAME] [--quiet] [--marker PATH] [--stall-on WORD] [--slow-on WORD] [--slow-ms MS] [--garbage-on WORD]\n");
    exit(2);
}

/* worker_words splits "a,b" into lowercase words. */
static void
worker_words(struct moderator *m, const char *list)
{
    char *copy = strdup(list);
    char *save = NULL;

    m->nwords = 0;
    for (char *w = strtok_r(copy, ",", &save); w != NULL;
         w = strtok_r(NULL, ",", &save)) {
        char **grown = realloc(m->words, (m->nwords + 1) * sizeof(*grown));
        if (grown == NULL) {
            break;
        }
        m->words = grown;
        for (char *p = w; *p != '\0'; p++) {
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        }
        m->words[m->nwords++] = strdup(w);
    }
    free(copy);
}

static void
worker_options(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->name = "c-worker";
    o->slow_ms = 2000;
    o->mod.max_warnings = 3;
    worker_words(&o->mod, "darn,heck");
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--quiet") == 0) {
            o->quiet = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            worker_usage();
        }
        i++;
        if (strcmp(arg, "--url") == 0) {
            o->url = v;
        } else if (strcmp(arg, "--words") == 0) {
            worker_words(&o->mod, v);
        } else if (strcmp(arg, "--max-warnings") == 0) {
            o->mod.max_warnings = (unsigned)atoi(v);
        } else if (strcmp(arg, "--name") == 0) {
            o->name = v;
        } else if (strcmp(arg, "--marker") == 0) {
            o->marker = v;
        } else if (strcmp(arg, "--stall-on") == 0) {
            o->stall_on = v;
        } else if (strcmp(arg, "--slow-on") == 0) {
            o->slow_on = v;
        } else if (strcmp(arg, "--slow-ms") == 0) {
            o->slow_ms = (unsigned)atoi(v);
        } else if (strcmp(arg, "--garbage-on") == 0) {
            o->garbage_on = v;
        } else {
            worker_usage();
        }
    }
    if (o->url == NULL || o->mod.max_warnings == 0) {
        worker_usage();
    }
}

/* worker_fault: whether to misbehave with word on this request. */
static bool
worker_fault(const struct options *o, const char *word,
             const Torpor__Backend__Request *req, const struct reply *r)
{
    const Torpor__Event *ev = req->event;

    if (word == NULL || r->nreads > 0 || ev == NULL
        || ev->body_case != TORPOR__EVENT__BODY_MESSAGE
        || memmem(ev->message->data.data, ev->message->data.len, word,
                  strlen(word)) == NULL) {
        return false;
    }
    return o->marker == NULL || unlink(o->marker) == 0;
}

static const char *
worker_event_name(const Torpor__Event *ev)
{
    switch (ev != NULL ? ev->body_case : TORPOR__EVENT__BODY__NOT_SET) {
    case TORPOR__EVENT__BODY_OPEN:
        return "open";
    case TORPOR__EVENT__BODY_MESSAGE:
        return "message";
    case TORPOR__EVENT__BODY_CLOSE:
        return "close";
    case TORPOR__EVENT__BODY_ALARM:
        return "alarm";
    default:
        return "?";
    }
}

/*
 * worker_answer turns one request into the reply to send; NULL to send
 * nothing (the request is malformed, or memory ran out).
 */
static nng_msg *
worker_answer(const struct options *o, const void *data, size_t len)
{
    Torpor__Backend__Request *req =
        torpor__backend__request__unpack(NULL, len, data);
    struct reply r;
    nng_msg *out = NULL;

    if (req == NULL || req->version != TORPOR__BACKEND__VERSION__PROTOCOL_VERSION) {
        fprintf(stderr, "%s: refusing a request that is not protocol version 1 (%zu bytes)\n", o->name, len);
        torpor__backend__request__free_unpacked(req, NULL);
        return NULL;
    }
    if (!o->quiet) {
        fprintf(stderr, "%s: event %llu step %u attempt %u: %s of conn %llu\n", o->name, (unsigned long long)req->event_id, req->step, req->attempt, worker_event_name(req->event), (unsigned long long)(req->conn != NULL ? req->conn->id : 0));
    }
    reply_init(&r, req);
    moderate(&o->mod, req, &r);
    if (worker_fault(o, o->stall_on, req, &r)) {
        fprintf(stderr, "%s: stalling on event %llu\n", o->name, (unsigned long long)req->event_id);
        while (!worker_stop) {
            pause();
        }
    } else if (worker_fault(o, o->slow_on, req, &r)) {
        fprintf(stderr, "%s: answering event %llu after %u ms\n", o->name, (unsigned long long)req->event_id, o->slow_ms);
        nng_msleep(o->slow_ms);
    } else if (worker_fault(o, o->garbage_on, req, &r)) {
        fprintf(stderr, "%s: answering event %llu with garbage\n", o->name, (unsigned long long)req->event_id);
        static const char garbage[] = "\xff\xff\xff\xff not protobuf";
        if (nng_msg_alloc(&out, 0) == 0) {
            nng_msg_append(out, garbage, sizeof(garbage) - 1);
        }
        reply_free(&r);
        torpor__backend__request__free_unpacked(req, NULL);
        return out;
    }
    size_t n;
    uint8_t *packed = reply_pack(&r, &n);
    if (packed != NULL && nng_msg_alloc(&out, n) == 0) {
        memcpy(nng_msg_body(out), packed, n);
    }
    free(packed);
    reply_free(&r);
    torpor__backend__request__free_unpacked(req, NULL);
    return out;
}

int
main(int argc, char **argv)
{
    struct options o;
    nng_socket sock;
    int rv;

    worker_options(argc, argv, &o);
    signal(SIGINT, worker_on_signal);
    signal(SIGTERM, worker_on_signal);
    if ((rv = nng_rep0_open(&sock)) != 0) {
        fprintf(stderr, "%s: could not open a REP socket: %s\n", o.name, nng_strerror(rv));
        return 1;
    }
    /* Wakes the loop now and then to see a signal. */
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 200);
    /* No limit on requests, whatever this nng's default: torpord sends
     * a client's message whole, up to its max_message_bytes. */
    nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 0);
    nng_socket_set_ms(sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(sock, NNG_OPT_RECONNMAXT, 1000);
    /* Non-blocking: torpord may not be listening yet; nng redials. */
    if ((rv = nng_dial(sock, o.url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        fprintf(stderr, "%s: could not dial \"%s\": %s\n", o.name, o.url, nng_strerror(rv));
        return 1;
    }
    fprintf(stderr, "%s: pid %d serving \"%s\"\n", o.name, (int)getpid(), o.url);
    while (!worker_stop) {
        nng_msg *msg;
        rv = nng_recvmsg(sock, &msg, 0);
        if (rv == NNG_ETIMEDOUT || rv == NNG_EINTR) {
            continue;
        }
        if (rv != 0) {
            fprintf(stderr, "%s: could not receive: %s\n", o.name, nng_strerror(rv));
            break;
        }
        nng_msg *reply = worker_answer(&o, nng_msg_body(msg), nng_msg_len(msg));
        nng_msg_free(msg);
        if (reply != NULL && (rv = nng_sendmsg(sock, reply, 0)) != 0) {
            fprintf(stderr, "%s: could not send a reply: %s\n", o.name, nng_strerror(rv));
            nng_msg_free(reply);
        }
    }
    nng_close(sock);
    for (size_t i = 0; i < o.mod.nwords; i++) {
        free(o.mod.words[i]);
    }
    free(o.mod.words);
    return 0;
}
