/*
 * tbbench_hist: an HDR-style latency histogram (log-bucketed, fixed memory, mergeable).
 *
 * Values are unsigned 64-bit integers (tbbench records nanoseconds). Values below 256 have a
 * bucket each; above, every power of two [2^k, 2^(k+1)) is cut into 128 equal sub-buckets, so a
 * recorded value is known to within 1/128 (< 0.8 %) of itself, whatever its magnitude, in
 * TBB_HIST_BUCKETS counters (58 KiB). Recording is an index computation and an increment: no
 * allocation, no sorting, no growth with the number of samples. Two histograms merge by adding
 * their counters (one per worker thread, merged at the end of a run).
 *
 * Percentiles follow HdrHistogram: the value at percentile p is the highest value equivalent
 * (within the bucket's precision) to the sample of rank ceil(p/100 * count), clamped to the
 * exact maximum, which is tracked separately along with the exact minimum and sum.
 *
 * Embedded by the caller (tbb_hist_init, no dispose); not thread-safe: one per thread.
 */
#ifndef TBB_HIST_H
#define TBB_HIST_H

#include <stddef.h>
#include <stdint.h>

#define TBB_HIST_SUB_BITS 7                          /* 128 sub-buckets per power of two */
#define TBB_HIST_SUB (1u << TBB_HIST_SUB_BITS)       /* 128 */
#define TBB_HIST_LINEAR (2u * TBB_HIST_SUB)          /* values 0..255 have a bucket each */
#define TBB_HIST_SHIFTS (64 - TBB_HIST_SUB_BITS - 1) /* shifts 1..56 for values >= 256 */
#define TBB_HIST_BUCKETS (TBB_HIST_LINEAR + TBB_HIST_SHIFTS * TBB_HIST_SUB)

struct tbb_hist {
    uint64_t count; /* samples recorded */
    uint64_t min;   /* exact; UINT64_MAX when empty */
    uint64_t max;   /* exact; 0 when empty */
    double sum;     /* for the mean */
    uint64_t buckets[TBB_HIST_BUCKETS];
};

/* Empties h. */
void tbb_hist_init(struct tbb_hist *h);

/* Records one sample of value v. */
void tbb_hist_record(struct tbb_hist *h, uint64_t v);

/* Adds every sample of src to dst. */
void tbb_hist_merge(struct tbb_hist *dst, const struct tbb_hist *src);

/*
 * The value at percentile p (0 < p <= 100): see the file comment. 0 for an empty histogram;
 * p <= 0 gives the minimum, p >= 100 the maximum.
 */
uint64_t tbb_hist_percentile(const struct tbb_hist *h, double p);

/* The mean of the samples (exact: from the sum), 0 when empty. */
double tbb_hist_mean(const struct tbb_hist *h);

/* The bucket a value falls in, and the lowest and highest values of a bucket (for tests). */
size_t tbb_hist_index(uint64_t v);
uint64_t tbb_hist_bucket_low(size_t i);
uint64_t tbb_hist_bucket_high(size_t i);

#endif
