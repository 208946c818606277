/*
 * torpor-bench: what the parent process and its client processes share.
 *
 * The parent forks the client processes, then drives them through the
 * phases of a scenario with commands over one SOCK_SEQPACKET socket per
 * client; each command gets one report back.  Between phases the parent
 * samples the server from /proc.  A client process is a libevent loop
 * over its share of the connections.
 */
#ifndef TORPOR_BENCH_TB_H
#define TORPOR_BENCH_TB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/tb_hist.h"
#include "bench/tb_proc.h"

#define TB_MAX_PROCS 16
#define TB_MAX_RATES 4
#define TB_MIN_SIZE 48 // the payload's fields take 40 bytes
#define TB_MAX_SIZE 512
#define TB_ERROR_BYTES 200

enum tb_proto {
    TB_WS,  // RFC 6455, one room per URL path
    TB_SIO, // Socket.IO 4 over Engine.IO 4 on a WebSocket, rooms by "join"
};

enum tb_scenario {
    TB_IDLE,
    TB_FANOUT_ONE,
    TB_FANOUT_MANY,
    TB_WAKE,
};

struct tb_opts {
    uint16_t port;
    enum tb_proto proto;
    enum tb_scenario scenario;
    const char *path; // TB_WS: rooms are PATH + TAG-INDEX
    char tag[40];     // names this run's rooms apart from earlier runs'
    unsigned procs;
    unsigned rooms;
    unsigned room_size;           // connections per room; the first one sends
    unsigned window;              // fanout-one: messages in flight at most
    unsigned seconds;             // fanout: how long each run publishes
    unsigned rates[TB_MAX_RATES]; // fanout-many: messages/s per room
    unsigned nrates;
    unsigned idle_ms;
    unsigned rounds;
    unsigned size;           // payload bytes
    unsigned connect_window; // handshakes in flight per client process
    unsigned max_failures;   // a client process opens no more after
                             // max_failures / procs failed handshakes
    unsigned timeout_ms;     // for a connection to open, a sample to arrive
    unsigned max_seconds;
    pid_t server_pids[TB_PROC_MAX_ROOTS];
    unsigned nserver_pids;
    pid_t aux_pids[TB_PROC_MAX_ROOTS];
    unsigned naux_pids;
};

/* Commands, parent to client; each is answered by one report. */
enum tb_op {
    TB_CMD_CONNECT = 1, // open every connection
    TB_CMD_RUN,         // a = duration ms, b = messages/s per room (0: as
                        // fast as the window lets, fanout-one)
    TB_CMD_DRAIN,       // a = messages each subscriber expects (0: what its
                        // room's local publisher sent), b = timeout ms
    TB_CMD_WAKE,        // one round of wake samples, one room at a time
    TB_CMD_TOUCH,       // one message per room, each awaited by the room
    TB_CMD_COUNT,       // how many connections are still open
    TB_CMD_QUIT,
};

struct tb_cmd {
    uint32_t op;
    uint64_t a, b;
};

struct tb_report {
    uint32_t op;
    uint32_t proc;
    uint64_t opened, failed, open; // connections: opened, refused, still up
    uint64_t not_tried;            // left unopened after too many failures
    uint64_t first_start_ns, last_ready_ns;
    uint64_t sent; // messages published in the phase
    uint64_t first_send_ns;
    uint64_t expected, received;    // deliveries, all subscribers together
    uint64_t gaps, dups, misrouted; // deliveries out of sequence
    uint64_t last_recv_ns;
    double cpu_s; // this client process's CPU time during the phase
    char error[TB_ERROR_BYTES];
    struct tb_hist lat;   // per delivery; wake: samples of hibernated rooms
    struct tb_hist awake; // wake: samples of the same rooms, awake
};

/*
 * The publisher's window in fanout-one, in memory shared by the client
 * processes.  Each process publishes in progress[] how many messages its
 * designated subscriber has received; the publisher stays within window of
 * the smallest.  A blocked publisher stores in wake_need the progress it
 * waits for, and whichever subscriber brings the smallest there wakes it
 * through the eventfd.
 */
struct tb_shared {
    _Atomic uint64_t wake_need; // 0: the publisher is not waiting
    _Atomic uint64_t progress[TB_MAX_PROCS];
};

/*
 * tb_client_main runs client process proc until TB_CMD_QUIT or a broken
 * control socket; returns its exit status.
 */
int tb_client_main(const struct tb_opts *o, unsigned proc, int ctl_fd,
                   struct tb_shared *shared, int wake_fd);

#endif /* TORPOR_BENCH_TB_H */
