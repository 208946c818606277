/*
 * What a server costs, read from /proc: the CPU time and the memory of a
 * process and all its descendants.  A server may be several processes
 * (workerd, or Node with a child), so torpor-bench names the root and
 * counts the whole tree.
 */
#ifndef TORPOR_BENCH_TB_PROC_H
#define TORPOR_BENCH_TB_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define TB_PROC_MAX_ROOTS 8

struct tb_usage {
    bool alive;      // every root still runs
    unsigned procs;  // processes in the trees
    double cpu_s;    // user + system time of all of them, in seconds
    uint64_t rss_kb; // Rss of smaps_rollup, summed; 0 unless asked for
    uint64_t pss_kb; // Pss likewise: shared pages divided among sharers
};

/*
 * tb_proc_sample fills u for the process trees rooted at roots[0..n).
 * Memory is read only when with_memory, since smaps_rollup walks every
 * page table of a large process.  A process that exits while being read
 * is left out.
 */
void tb_proc_sample(const pid_t *roots, unsigned n, bool with_memory,
                    struct tb_usage *u);

#endif /* TORPOR_BENCH_TB_PROC_H */
