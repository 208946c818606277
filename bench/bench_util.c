#include "bench_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
bench_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

    return (a > b) - (a < b);
}

void
bench_sort_u64(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), bench_cmp_u64);
}

double
bench_pct_us(const uint64_t *v, size_t n, unsigned per_mille)
{
    if (n == 0) {
        return 0;
    }
    size_t rank = ((size_t)per_mille * n + 999) / 1000;
    return (double)v[(rank > 0 ? rank : 1) - 1] / 1000.0;
}

uint64_t
bench_arg(const char *prog, const char *name, const char *text, uint64_t min,
          uint64_t max, void (*usage)(void))
{
    char *end;
    unsigned long long v;

    /* strtoull would accept "-1" and " 7"; a benchmark's figures must not
     * rest on an argument read differently from how it was written. */
    if (text[0] >= '0' && text[0] <= '9') {
        v = strtoull(text, &end, 10);
        if (*end == '\0' && v >= min && v <= max) {
            return v;
        }
    }
    fprintf(stderr,
            "%s: could not read \"--%s\": expected an integer from %" PRIu64
            " to %" PRIu64 "\n",
            prog, name, min, max);
    usage();
    exit(2);
}

size_t
bench_small_frame(uint64_t *rng, int opcode, const void *data, size_t len,
                  uint8_t out[BENCH_SMALL_FRAME_MAX])
{
    const uint8_t *p = data;
    size_t h = 0;

    out[h++] = (uint8_t)(0x80 | opcode);
    out[h++] = (uint8_t)(0x80 | len);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    for (int i = 0; i < 4; i++) {
        out[h++] = (uint8_t)(*rng >> (8 * i));
    }
    for (size_t i = 0; i < len; i++) {
        out[h + i] = p[i] ^ out[h - 4 + i % 4];
    }
    return h + len;
}
