/*
 * tbbench_hist: the log-bucketed latency histogram (see tbbench_hist.h).
 *
 * Layout of the counters: index v for v < 256 (exact); for v >= 256, with msb the index of v's
 * highest set bit and shift = msb - 7 (so that v >> shift lies in [128, 255]), the index is
 * 256 + (shift - 1) * 128 + (v >> shift) - 128. Consecutive indexes are consecutive value ranges,
 * so a percentile is one walk from the bottom.
 */
#include "tbbench_hist.h"

#include <string.h>

void tbb_hist_init(struct tbb_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

size_t tbb_hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < TBB_HIST_LINEAR)
        return (size_t)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - TBB_HIST_SUB_BITS;
    return TBB_HIST_LINEAR + (size_t)(shift - 1) * TBB_HIST_SUB +
           (size_t)((v >> shift) - TBB_HIST_SUB);
}

uint64_t tbb_hist_bucket_low(size_t i)
{
    size_t shift, sub;

    if (i < TBB_HIST_LINEAR)
        return i;
    shift = (i - TBB_HIST_LINEAR) / TBB_HIST_SUB + 1;
    sub = (i - TBB_HIST_LINEAR) % TBB_HIST_SUB + TBB_HIST_SUB;
    return (uint64_t)sub << shift;
}

uint64_t tbb_hist_bucket_high(size_t i)
{
    size_t shift;

    if (i < TBB_HIST_LINEAR)
        return i;
    if (i + 1 >= TBB_HIST_BUCKETS)
        return UINT64_MAX;
    shift = (i - TBB_HIST_LINEAR) / TBB_HIST_SUB + 1;
    return tbb_hist_bucket_low(i) + (((uint64_t)1 << shift) - 1);
}

void tbb_hist_record(struct tbb_hist *h, uint64_t v)
{
    h->buckets[tbb_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void tbb_hist_merge(struct tbb_hist *dst, const struct tbb_hist *src)
{
    size_t i;

    if (src->count == 0)
        return;
    for (i = 0; i < TBB_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t tbb_hist_percentile(const struct tbb_hist *h, double p)
{
    uint64_t rank, seen = 0, v;
    double want;
    size_t i;

    if (h->count == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    want = p / 100.0 * (double)h->count;
    rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    for (i = 0; i < TBB_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            break;
    }
    if (i == TBB_HIST_BUCKETS)
        return h->max;
    v = tbb_hist_bucket_high(i);
    if (v > h->max)
        v = h->max;
    if (v < h->min)
        v = h->min;
    return v;
}

double tbb_hist_mean(const struct tbb_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
