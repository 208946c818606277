/*
 * torpor-nng-bench: how fast messages a backend publishes over nng reach
 * the WebSocket clients of a room, and how long they take.  A client of
 * a running torpord, over loopback only.  Not installed; `make
 * bench-nng` builds it and runs it through bench/run-nng.sh.
 *
 *   torpor-nng-bench --ws-port P --req URL --push URL [--clients C]
 *                    [--messages N] [--window W] [--bytes B]
 *                    [--max-seconds T]
 *
 * C clients (100 by default) join ws://127.0.0.1:P/relay/nng-bench, so
 * every published message goes to all of them.  Then three phases, each
 * publishing binary messages of B bytes (64 by default) that start with
 * their sequence number and send time:
 *
 *   req1   REQ/REP, one request at a time, min(N, 2000) messages, each
 *          sent once the previous one reached every client: the latency
 *          of an unloaded room, and of the acknowledgement;
 *   reqW   REQ/REP with W requests in flight (16 by default), N messages;
 *   push   PUSH/PULL, fire and forget, as fast as torpord takes them
 *          (nng pushes back), N messages (20000 by default): the rate
 *          a room sustains; its latency is mostly time spent queued;
 *   paced  PUSH/PULL at half the rate push reached, N messages: the
 *          latency of a busy room that keeps up.
 *
 * Latency runs from just before the publisher hands a message to nng to
 * the moment the reader thread has read the frame at a client, on
 * CLOCK_MONOTONIC; one sample per message and client.  A phase's rate is
 * its messages over the time from its first send to its last delivery at
 * every client.  The acknowledgement latency (REQ phases) is the round
 * trip of a request, which returns once the room has handled it.
 *
 * Output, one line per phase:
 *   phase=push clients=C messages=N seconds=S msgs_per_s=X
 *   deliveries_per_s=Y p50_us=.. p99_us=.. p999_us=.. max_us=..
 *   ack_p50_us=.. ack_p99_us=..
 * The run fails (exit 1) if any reply is not OK, a client loses its
 * connection, or the messages do not all arrive within T seconds (300 by
 * default; SIGALRM ends a run that hangs).
 */
#include "build-config.h"

#include <getopt.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/nng_bench_ws.h"
#include "torpor/nng.pb-c.h"

#define NB_ROOM "nng-bench"
#define NB_REQ1_MAX 2000
#define NB_WINDOW_MAX 64

struct nb_args {
    uint16_t ws_port;
    const char *req_url;
    const char *push_url;
    unsigned clients;
    uint64_t messages;
    unsigned window;
    size_t bytes;
    unsigned max_seconds;
};

/* One phase's sending, shared by its sender threads. */
struct nb_phase {
    const struct nb_args *args;
    nng_socket sock;
    uint64_t first_seq;         /* sequence numbers first_seq .. + count */
    uint64_t count;
    uint64_t next;              /* __atomic: the next to send, from 0 */
    uint64_t *ack;              /* round trips, by index; REQ only */
    struct nb_room *settle;     /* wait for every delivery before the
                                   next send; NULL: do not */
    uint64_t settle_clients;
    uint64_t deadline_ns;
    bool failed;                /* __atomic */
};

static void
nb_usage(void)
{
    fprintf(stderr, "usage: torpor-nng-bench --ws-port P --req URL --push URL [--clients C] [--messages N] [--window W] [--bytes B] [--max-seconds T]\n");
    exit(2);
}

static void
nb_on_alarm(int sig)
{
    static const char msg[] =
        "torpor-nng-bench: could not finish the run within --max-seconds\n";

    (void)sig;
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(1);
}

/*
 * nb_request makes the Request that publishes message seq, stamped now,
 * as an nng message.
 */
static nng_msg *
nb_request(const struct nb_args *args, uint64_t seq)
{
    Torpor__Nng__Request req = TORPOR__NNG__REQUEST__INIT;
    Torpor__Nng__Publish publish = TORPOR__NNG__PUBLISH__INIT;
    Torpor__Nng__Room room = TORPOR__NNG__ROOM__INIT;
    Torpor__Message message = TORPOR__MESSAGE__INIT;
    uint8_t data[4096];
    nng_msg *msg;

    memset(data, 'x', args->bytes);
    room.route = "relay";
    room.name.data = (uint8_t *)NB_ROOM;
    room.name.len = strlen(NB_ROOM);
    message.kind = TORPOR__MESSAGE__KIND__BINARY;
    message.data.data = data;
    message.data.len = args->bytes;
    publish.room = &room;
    publish.message = &message;
    req.version = 1;
    req.operation_case = TORPOR__NNG__REQUEST__OPERATION_PUBLISH;
    req.publish = &publish;
    uint64_t now = bench_now_ns();
    for (int i = 0; i < 8; i++) {
        data[i] = (uint8_t)(seq >> (8 * i));
        data[8 + i] = (uint8_t)(now >> (8 * i));
    }
    size_t len = torpor__nng__request__get_packed_size(&req);
    if (nng_msg_alloc(&msg, len) != 0) {
        return NULL;
    }
    torpor__nng__request__pack(&req, nng_msg_body(msg));
    return msg;
}

/* nb_req_sender publishes with one REQ context until the phase is done. */
static void *
nb_req_sender(void *arg)
{
    struct nb_phase *ph = arg;
    nng_ctx ctx;
    nng_aio *aio;

    if (nng_ctx_open(&ctx, ph->sock) != 0
        || nng_aio_alloc(&aio, NULL, NULL) != 0) {
        __atomic_store_n(&ph->failed, true, __ATOMIC_RELEASE);
        return NULL;
    }
    for (;;) {
        uint64_t i = __atomic_fetch_add(&ph->next, 1, __ATOMIC_RELAXED);
        if (i >= ph->count || __atomic_load_n(&ph->failed, __ATOMIC_ACQUIRE)) {
            break;
        }
        uint64_t start = bench_now_ns();
        nng_msg *msg = nb_request(ph->args, ph->first_seq + i);
        int rv = msg == NULL ? NNG_ENOMEM : 0;
        if (rv == 0) {
            nng_aio_set_msg(aio, msg);
            nng_ctx_send(ctx, aio);
            nng_aio_wait(aio);
            rv = nng_aio_result(aio);
            if (rv != 0) {
                nng_msg_free(msg);
            }
        }
        if (rv == 0) {
            nng_ctx_recv(ctx, aio);
            nng_aio_wait(aio);
            rv = nng_aio_result(aio);
        }
        if (rv != 0) {
            fprintf(stderr, "torpor-nng-bench: could not publish message %" PRIu64 ": %s\n", ph->first_seq + i, nng_strerror(rv));
            __atomic_store_n(&ph->failed, true, __ATOMIC_RELEASE);
            break;
        }
        nng_msg *reply = nng_aio_get_msg(aio);
        Torpor__Nng__Reply *r = torpor__nng__reply__unpack(
            NULL, nng_msg_len(reply), nng_msg_body(reply));
        ph->ack[i] = bench_now_ns() - start;
        if (r == NULL || r->status != TORPOR__NNG__STATUS__OK) {
            fprintf(stderr, "torpor-nng-bench: message %" PRIu64 " was not published: %s\n", ph->first_seq + i, r != NULL ? r->message : "a malformed reply");
            __atomic_store_n(&ph->failed, true, __ATOMIC_RELEASE);
        }
        if (r != NULL) {
            torpor__nng__reply__free_unpacked(r, NULL);
        }
        nng_msg_free(reply);
        uint64_t want = (ph->first_seq + i + 1) * ph->settle_clients;
        if (ph->settle != NULL
            && !nb_room_wait(ph->settle, want, ph->deadline_ns)) {
            __atomic_store_n(&ph->failed, true, __ATOMIC_RELEASE);
            break;
        }
    }
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return NULL;
}

/*
 * nb_push_all pushes the phase's messages, as fast as nng takes them, or
 * at rate messages per second when rate is not 0.
 */
static bool
nb_push_all(struct nb_phase *ph, double rate)
{
    uint64_t start = bench_now_ns();

    for (uint64_t i = 0; i < ph->count; i++) {
        if (rate > 0) {
            uint64_t due = start + (uint64_t)((double)i * 1e9 / rate);
            uint64_t now = bench_now_ns();
            if (due > now) {
                struct timespec ts = {
                    .tv_sec = (time_t)((due - now) / 1000000000u),
                    .tv_nsec = (long)((due - now) % 1000000000u),
                };
                nanosleep(&ts, NULL);
            }
        }
        nng_msg *msg = nb_request(ph->args, ph->first_seq + i);
        int rv = msg == NULL ? NNG_ENOMEM : nng_sendmsg(ph->sock, msg, 0);
        if (rv != 0) {
            if (msg != NULL) {
                nng_msg_free(msg);
            }
            fprintf(stderr, "torpor-nng-bench: could not push message %" PRIu64 ": %s\n", ph->first_seq + i, nng_strerror(rv));
            return false;
        }
    }
    return true;
}

/*
 * nb_report prints one phase's line from its samples, and returns its
 * rate in messages per second.
 */
static double
nb_report(const char *name, struct nb_room *room, const struct nb_phase *ph,
          uint64_t elapsed_ns)
{
    size_t n = ph->count * room->nclients;
    uint64_t *lat = room->lat + ph->first_seq * room->nclients;
    double s = (double)elapsed_ns / 1e9;

    bench_sort_u64(lat, n);
    printf("phase=%s clients=%u messages=%" PRIu64 " seconds=%.3f msgs_per_s=%.0f deliveries_per_s=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f", name, room->nclients, ph->count, s, (double)ph->count / s, (double)n / s, bench_pct_us(lat, n, 500), bench_pct_us(lat, n, 990), bench_pct_us(lat, n, 999), bench_pct_us(lat, n, 1000));
    if (ph->ack != NULL) {
        bench_sort_u64(ph->ack, ph->count);
        printf(" ack_p50_us=%.0f ack_p99_us=%.0f", bench_pct_us(ph->ack, ph->count, 500), bench_pct_us(ph->ack, ph->count, 990));
    }
    printf("\n");
    fflush(stdout);
    return (double)ph->count / s;
}

/*
 * nb_run_phase publishes count messages from first_seq with window
 * senders, or with PUSH when window is 0 (at rate messages per second,
 * or as fast as it goes when rate is 0), and reports; *achieved is the
 * phase's rate.  False on any failure.
 */
static bool
nb_run_phase(const char *name, const struct nb_args *args,
             struct nb_room *room, nng_socket sock, uint64_t first_seq,
             uint64_t count, unsigned window, double rate,
             uint64_t deadline_ns, double *achieved)
{
    struct nb_phase ph = {
        .args = args, .sock = sock, .first_seq = first_seq, .count = count,
        .deadline_ns = deadline_ns,
    };
    pthread_t threads[NB_WINDOW_MAX];
    unsigned started = 0;
    bool ok = true;

    if (window == 1) {
        /* One at a time, delivered everywhere before the next: no queue
         * anywhere, in torpord or in the bench's reader. */
        ph.settle = room;
        ph.settle_clients = room->nclients;
    }
    if (window > 0) {
        ph.ack = calloc(count, sizeof(*ph.ack));
        if (ph.ack == NULL) {
            fprintf(stderr, "torpor-nng-bench: out of memory\n");
            return false;
        }
    }
    uint64_t want = (first_seq + count) * room->nclients;
    uint64_t start = bench_now_ns();
    if (window == 0) {
        ok = nb_push_all(&ph, rate);
    } else {
        for (; started < window; started++) {
            if (pthread_create(&threads[started], NULL, nb_req_sender, &ph)
                != 0) {
                __atomic_store_n(&ph.failed, true, __ATOMIC_RELEASE);
                break;
            }
        }
        for (unsigned i = 0; i < started; i++) {
            pthread_join(threads[i], NULL);
        }
        ok = !ph.failed;
    }
    if (ok && !nb_room_wait(room, want, deadline_ns)) {
        fprintf(stderr, "torpor-nng-bench: phase %s: %" PRIu64 " of %" PRIu64 " deliveries arrived\n", name, __atomic_load_n(&room->received, __ATOMIC_ACQUIRE) - first_seq * room->nclients, count * room->nclients);
        ok = false;
    }
    if (ok) {
        *achieved = nb_report(name, room, &ph, bench_now_ns() - start);
    }
    free(ph.ack);
    return ok;
}

static void
nb_parse(int argc, char **argv, struct nb_args *a)
{
    static const struct option opts[] = {
        {"ws-port", required_argument, NULL, 'p'},
        {"req", required_argument, NULL, 'r'},
        {"push", required_argument, NULL, 'u'},
        {"clients", required_argument, NULL, 'c'},
        {"messages", required_argument, NULL, 'n'},
        {"window", required_argument, NULL, 'w'},
        {"bytes", required_argument, NULL, 'b'},
        {"max-seconds", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = "torpor-nng-bench";
    int c;

    *a = (struct nb_args){.clients = 100, .messages = 20000, .window = 16,
                          .bytes = 64, .max_seconds = 300};
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            a->ws_port = (uint16_t)bench_arg(prog, "ws-port", optarg, 1, 65535, nb_usage);
            break;
        case 'r':
            a->req_url = optarg;
            break;
        case 'u':
            a->push_url = optarg;
            break;
        case 'c':
            a->clients = (unsigned)bench_arg(prog, "clients", optarg, 1, 1000, nb_usage);
            break;
        case 'n':
            a->messages = bench_arg(prog, "messages", optarg, 1, 1000000, nb_usage);
            break;
        case 'w':
            a->window = (unsigned)bench_arg(prog, "window", optarg, 1, NB_WINDOW_MAX, nb_usage);
            break;
        case 'b':
            a->bytes = (size_t)bench_arg(prog, "bytes", optarg, NB_STAMP_BYTES, 4096, nb_usage);
            break;
        case 't':
            a->max_seconds = (unsigned)bench_arg(prog, "max-seconds", optarg, 1, 3600, nb_usage);
            break;
        default:
            nb_usage();
        }
    }
    if (a->ws_port == 0 || a->req_url == NULL || a->push_url == NULL
        || optind != argc) {
        nb_usage();
    }
}

int
main(int argc, char **argv)
{
    struct nb_args args;
    struct nb_room room;
    nng_socket req;
    nng_socket push;
    int rv;

    nb_parse(argc, argv, &args);
    signal(SIGALRM, nb_on_alarm);
    alarm(args.max_seconds + 30);
    uint64_t deadline = bench_now_ns() + (uint64_t)args.max_seconds * 1000000000u;
    uint64_t req1 = args.messages < NB_REQ1_MAX ? args.messages : NB_REQ1_MAX;
    uint64_t total = req1 + 3 * args.messages;
    double rate = 0;

    if ((rv = nng_req0_open(&req)) != 0 || (rv = nng_dial(req, args.req_url, NULL, 0)) != 0
        || (rv = nng_push0_open(&push)) != 0 || (rv = nng_dial(push, args.push_url, NULL, 0)) != 0) {
        fprintf(stderr, "torpor-nng-bench: could not dial torpord's nng addresses: %s\n", nng_strerror(rv));
        return 1;
    }
    /* A request is never resent: a slow reply must not publish twice. */
    nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (!nb_room_open(&room, args.ws_port, "/relay/" NB_ROOM, args.clients, total)
        || !nb_room_start(&room)) {
        nb_room_close(&room);
        return 1;
    }
    /* The paced phase runs at half the rate the flood reached. */
    bool ok = nb_run_phase("req1", &args, &room, req, 0, req1, 1, 0, deadline, &rate)
              && nb_run_phase("reqW", &args, &room, req, req1, args.messages, args.window, 0, deadline, &rate)
              && nb_run_phase("push", &args, &room, push, req1 + args.messages, args.messages, 0, 0, deadline, &rate)
              && nb_run_phase("paced", &args, &room, push, req1 + 2 * args.messages, args.messages, 0, rate / 2, deadline, &rate);
    nb_room_close(&room);
    nng_close(req);
    nng_close(push);
    return ok ? 0 : 1;
}
