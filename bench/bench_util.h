/*
 * What every benchmark program needs: a clock, nearest-rank percentiles,
 * strict parsing of numeric arguments, and a client's small frame.
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

/* A client frame with a payload of at most 125 bytes, masked. */
#define BENCH_SMALL_FRAME_MAX (2 + 4 + 125)

/*
 * bench_small_frame writes into out a final frame of opcode with data
 * masked, as RFC 6455 requires of a client, and returns its length; the
 * mask comes from the xorshift state *rng.  len must be at most 125.
 */
size_t bench_small_frame(uint64_t *rng, int opcode, const void *data,
                         size_t len, uint8_t out[BENCH_SMALL_FRAME_MAX]);

#endif /* TORPOR_BENCH_UTIL_H */
