/*
 * The WebSocket side of torpor-nng-bench: C clients in one room and a
 * thread that reads them all, stamping each message's latency.
 */
#ifndef TORPOR_BENCH_NNG_BENCH_WS_H
#define TORPOR_BENCH_NNG_BENCH_WS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every message the bench publishes is binary and starts with its
 * sequence number and its send time (CLOCK_MONOTONIC, ns), 8 bytes each,
 * little endian.
 */
#define NB_STAMP_BYTES 16

struct nb_client;

/*
 * The room's clients and what they received.  lat[seq * nclients + k] is
 * the latency of message seq at client k, written once by the reader
 * thread; received counts every message read, released so that a reader
 * of it sees the latencies before it.
 */
struct nb_room {
    struct nb_client *clients;
    unsigned nclients;
    uint64_t nmessages;         /* lat holds this many rows */
    uint64_t *lat;
    uint64_t received;          /* __atomic */
    bool failed;                /* __atomic: the reader gave up */
    int epfd;
    pthread_t reader;
    bool reader_started;
};

/*
 * nb_room_open connects nclients clients to ws://127.0.0.1:port/path and
 * makes room for nmessages messages.  Prints why and returns false on
 * failure.
 */
bool nb_room_open(struct nb_room *room, uint16_t port, const char *path,
                  unsigned nclients, uint64_t nmessages);

/* nb_room_start starts the reader thread. */
bool nb_room_start(struct nb_room *room);

/*
 * nb_room_wait waits until the clients have received want messages in
 * all, or deadline_ns (CLOCK_MONOTONIC) passes; false then, or if the
 * reader failed.
 */
bool nb_room_wait(struct nb_room *room, uint64_t want, uint64_t deadline_ns);

/* nb_room_close stops the reader and closes every client. */
void nb_room_close(struct nb_room *room);

#endif /* TORPOR_BENCH_NNG_BENCH_WS_H */
