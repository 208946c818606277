/*
 * What every benchmark program needs: a clock, nearest-rank percentiles and
 * strict parsing of numeric arguments.
 */
#ifndef TORPOR_BENCH_UTIL_H
#define TORPOR_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* bench_now_ns: CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* bench_sort_u64 sorts v[0..n) in ascending order. */
void bench_sort_u64(uint64_t *v, size_t n);

/*
 * bench_pct_us is the nearest-rank percentile (per_mille: 500 for p50) of
 * sorted nanoseconds v[0..n), in microseconds; 0 for no samples.
 */
double bench_pct_us(const uint64_t *v, size_t n, unsigned per_mille);

/*
 * bench_arg parses the value of "--NAME" as a decimal in [min, max]; on
 * anything else it prints why, calls usage and exits with status 2.
 */
uint64_t bench_arg(const char *prog, const char *name, const char *text,
                   uint64_t min, uint64_t max, void (*usage)(void));

#endif /* TORPOR_BENCH_UTIL_H */
