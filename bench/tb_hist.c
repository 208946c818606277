#include "tb_hist.h"

static unsigned
tb_hist_index(uint64_t ns)
{
    if (ns < 128) {
        return (unsigned)ns;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned shift = msb - 6; // leaves ns >> shift in [64, 128)
    unsigned i = 64 * shift + (unsigned)(ns >> shift);
    return i < TB_HIST_BUCKETS ? i : TB_HIST_BUCKETS - 1;
}

/* tb_hist_mid_ns is the middle of bucket i, the value a percentile reports. */
static double
tb_hist_mid_ns(unsigned i)
{
    if (i < 128) {
        return (double)i;
    }
    unsigned shift = i / 64 - 1;
    uint64_t low = (uint64_t)(i - 64 * shift) << shift;
    return (double)low + (double)((uint64_t)1 << shift) / 2.0;
}

void
tb_hist_add(struct tb_hist *h, uint64_t ns)
{
    h->bucket[tb_hist_index(ns)]++;
    h->count++;
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

void
tb_hist_merge(struct tb_hist *into, const struct tb_hist *from)
{
    for (unsigned i = 0; i < TB_HIST_BUCKETS; i++) {
        into->bucket[i] += from->bucket[i];
    }
    into->count += from->count;
    if (from->max_ns > into->max_ns) {
        into->max_ns = from->max_ns;
    }
}

double
tb_hist_pct_us(const struct tb_hist *h, unsigned per_mille)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t rank = ((uint64_t)per_mille * h->count + 999) / 1000;
    uint64_t seen = 0;

    if (rank == 0) {
        rank = 1;
    }
    for (unsigned i = 0; i < TB_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            double mid = tb_hist_mid_ns(i);
            /* The top bucket's middle may lie past the largest sample. */
            return (mid > (double)h->max_ns ? (double)h->max_ns : mid) / 1000.0;
        }
    }
    return (double)h->max_ns / 1000.0;
}
