/*
 * A latency histogram for torpor-bench: constant memory however many
 * samples, mergeable across client processes, within 1/64 (1.6 %) of each
 * value.  Buckets are exact below 128 ns; above, each power of two is cut
 * into 64 buckets of equal width.
 */
#ifndef TORPOR_BENCH_TB_HIST_H
#define TORPOR_BENCH_TB_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Room for every value below 2^41 ns (about 36 minutes). */
#define TB_HIST_BUCKETS (64 * 36)

struct tb_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t bucket[TB_HIST_BUCKETS];
};

/* tb_hist_add counts one sample of ns nanoseconds. */
void tb_hist_add(struct tb_hist *h, uint64_t ns);

/* tb_hist_merge adds the samples of from to into. */
void tb_hist_merge(struct tb_hist *into, const struct tb_hist *from);

/*
 * tb_hist_pct_us is the nearest-rank percentile (per_mille: 500 for p50)
 * in microseconds, taken at the middle of its bucket; 0 for no samples.
 */
double tb_hist_pct_us(const struct tb_hist *h, unsigned per_mille);

#endif /* TORPOR_BENCH_TB_HIST_H */
