// zan-bench's latency histogram. Fixed buckets instead of a list of
// samples, so that a long run at a million replies a second records each
// reply in O(1) and its memory does not grow.
#ifndef ZAN_TOOLS_BENCH_HISTOGRAM_H
#define ZAN_TOOLS_BENCH_HISTOGRAM_H

#include <math.h>
#include <stddef.h>

#include <algorithm>
#include <vector>

namespace zan_bench {

// Log-bucketed latency histogram in nanoseconds: exact below 64 ns, then
// 32 linear sub-buckets per power of two (relative error under 3.2 %).
class Histogram {
public:
    Histogram() : counts_(64 + 58 * 32, 0) {}
    void record(long long ns)
    {
        if (ns < 0)
            ns = 0;
        unsigned long long v = static_cast<unsigned long long>(ns);
        size_t i;
        if (v < 64) {
            i = v;
        } else {
            int e = 63 - __builtin_clzll(v);  // 6 and up
            i = 64 + static_cast<size_t>(e - 6) * 32 + ((v >> (e - 5)) & 31);
        }
        counts_[i]++;
        n_++;
        if (ns > max_)
            max_ = ns;
    }
    // Midpoint of the bucket holding quantile q (0..1), in ns.
    double quantile(double q) const
    {
        if (n_ == 0)
            return 0;
        unsigned long long want = static_cast<unsigned long long>(ceil(q * n_));
        if (want < 1)
            want = 1;
        unsigned long long seen = 0;
        for (size_t i = 0; i < counts_.size(); i++) {
            seen += counts_[i];
            if (seen >= want)  // never above the largest sample
                return std::min(mid(i), static_cast<double>(max_));
        }
        return static_cast<double>(max_);
    }
    long long max() const { return max_; }
    unsigned long long count() const { return n_; }

private:
    static double mid(size_t i)
    {
        if (i < 64)
            return static_cast<double>(i);
        int e = static_cast<int>((i - 64) / 32) + 6;
        double width = ldexp(1.0, e - 5);
        double low = ldexp(1.0, e) + static_cast<double>((i - 64) % 32) * width;
        return low + width / 2;
    }
    std::vector<unsigned long long> counts_;
    unsigned long long n_ = 0;
    long long max_ = 0;
};

// The percentiles zan-bench prints, in microseconds (all 0 with no samples).
struct Latency {
    double p50_us, p90_us, p99_us, max_us;
};

inline Latency latency_us(const Histogram& h)
{
    return {h.quantile(0.50) / 1e3, h.quantile(0.90) / 1e3, h.quantile(0.99) / 1e3,
            h.max() / 1e3};
}

}  // namespace zan_bench

#endif
