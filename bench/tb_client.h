/*
 * A torpor-bench client process, shared by its three files: tb_client.c
 * sets it up, takes the parent's commands and writes; tb_conn.c opens the
 * connections and reads them; tb_phase.c is what the phases do with them
 * (publishing, counting deliveries, draining, wake samples).  Everything
 * runs on the process's one libevent loop.
 */
#ifndef TORPOR_BENCH_TB_CLIENT_H
#define TORPOR_BENCH_TB_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "bench/tb.h"
#include "bench/tb_wire.h"

/* Bytes of a frame that one read left incomplete, kept until the next. */
#define TB_CARRY_BYTES 1024
#define TB_READ_BYTES 65536
/* Frames the fanout-one publisher writes with one call at most. */
#define TB_BATCH_FRAMES 64

enum tb_conn_state {
    TB_CONNECTING,  // TCP connect under way
    TB_HTTP,        // upgrade request sent, awaiting the 101
    TB_EIO_OPEN,    // Socket.IO: awaiting Engine.IO's open packet
    TB_SIO_CONNECT, // Socket.IO: "40" sent, awaiting the namespace's
    TB_SIO_JOIN,    // Socket.IO: join sent, awaiting its ack
    TB_READY,       // in the room
    TB_CLOSED,
};

struct tb_client;

struct tb_room {
    uint32_t index;         // the room's number in the whole run
    struct tb_conn *sender; // NULL where another process holds it
    uint64_t sent;          // messages its sender sent, all phases
    uint64_t expected;      // messages each subscriber has by a drain's end
    unsigned subscribers;   // in this process
    unsigned touch_left;    // touch: deliveries of the last message awaited
    bool awaiting;          // wake: the last message has not arrived yet
};

struct tb_conn {
    struct tb_client *cl;
    struct tb_room *room;
    struct event *ev;  // connect, then reads
    struct event *wev; // writes the socket did not take; made on first need
    int fd;
    uint8_t state;
    bool sender;
    uint16_t carry_len;
    uint64_t next_seq; // a subscriber's next expected sequence number
    uint8_t *out;      // bytes awaiting a writable socket
    size_t out_len, out_cap;
    uint8_t carry[TB_CARRY_BYTES];
};

struct tb_client {
    const struct tb_opts *o;
    unsigned proc;
    struct event_base *base;
    struct event *ctl_ev, *wake_ev;
    struct event *phase_timer; // ends a run, a drain, a wake sample
    struct event *tick;        // fanout-many's send schedule
    int ctl_fd, wake_fd;
    struct tb_shared *shared;
    bool has_subscribers[TB_MAX_PROCS]; // fanout-one, by process
    struct tb_conn *conns;
    unsigned nconns;
    struct tb_room *rooms;
    unsigned nrooms;
    struct tb_conn *designated; // fanout-one: whose progress is published
    uint64_t rng;
    unsigned next_connect, connecting;
    uint64_t opened, failed;
    /* The command being served (0: none) and what its report will say. */
    uint32_t phase;
    struct tb_report rep;
    /* The first failure while no command ran, told in the next report. */
    char between_error[TB_ERROR_BYTES];
    double cpu_at_start;
    uint64_t sum_next;        // next_seq over all subscribers
    uint64_t sum_next_at_run; // sum_next when the last run began
    uint64_t expected_total;  // what sum_next reaches when a drain is done
    uint64_t run_start_ns, run_end_ns, rate, scheduled;
    unsigned cursor;   // wake, touch: the room being sampled
    bool awake_sample; // wake: the sample after the wake one
    uint8_t rbuf[TB_CARRY_BYTES + TB_READ_BYTES];
    uint8_t wbuf[TB_BATCH_FRAMES * TB_MESSAGE_MAX];
};

/* tb_client.c */
uint32_t tb_client_mask(struct tb_client *cl);
bool tb_conn_write(struct tb_conn *c, const void *data, size_t len);
void tb_conn_fail(struct tb_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tb_client_error(struct tb_client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tb_client_begin(struct tb_client *cl, uint32_t op);
void tb_client_finish(struct tb_client *cl);
double tb_client_cpu_s(void);

/* tb_conn.c */
void tb_connect_more(struct tb_client *cl);

/* tb_phase.c */
bool tb_phase_init(struct tb_client *cl);
void tb_phase_deliver(struct tb_conn *c, const uint8_t *p, size_t len,
                      uint64_t now_ns);
void tb_phase_read_done(struct tb_conn *c);
void tb_phase_command(struct tb_client *cl, const struct tb_cmd *cmd);
void tb_phase_pump(struct tb_client *cl);
void tb_phase_on_wake(evutil_socket_t fd, short what, void *arg);

#endif /* TORPOR_BENCH_TB_CLIENT_H */
