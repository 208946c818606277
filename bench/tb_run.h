/*
 * The parent side of torpor-bench: the client processes it drives, and
 * the scenarios, each of which prints its result lines.
 */
#ifndef TORPOR_BENCH_TB_RUN_H
#define TORPOR_BENCH_TB_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/tb.h"

struct tb_run {
    struct tb_opts o;
    unsigned drain_ms;
    int ctl[TB_MAX_PROCS]; // control socket of each client process
    struct tb_shared *shared;
    int wake_fd;
    struct tb_report *reps; // the last report of each client process
};

/* tb_send sends a command to client process p; false if it is gone. */
bool tb_send(struct tb_run *run, unsigned p, uint32_t op, uint64_t a,
             uint64_t b);

/* Each runs one scenario and prints its lines; false if anything failed. */
bool tb_run_idle(struct tb_run *run);
bool tb_run_fanout_one(struct tb_run *run);
bool tb_run_fanout_many(struct tb_run *run);
bool tb_run_wake(struct tb_run *run);

#endif /* TORPOR_BENCH_TB_RUN_H */
