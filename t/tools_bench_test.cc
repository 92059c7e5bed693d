// Tests of zan-bench(1), the load generator whose figures tools/BENCH.md
// quotes: its latency histogram (unit), and runs against a real zan-echod
// on 127.0.0.1 (--port 0, stopped by zt::Proc even when an assertion
// fails): every reply verified, the request count honoured, and options
// that contradict each other refused.
#include <string>

#include <gtest/gtest.h>

#include "t/helpers.h"
#include "tools/bench_histogram.h"

namespace {

// A percentile is the middle of its bucket, which may lie above the
// largest sample: it is clamped, so p99 never exceeds max.
TEST(BenchHistogram, PercentilesNeverExceedTheMaximum)
{
    for (long long v : {63LL, 64LL, 100LL, 429900LL, 1000000LL, 123456789LL}) {
        zan_bench::Histogram h;
        h.record(v);
        EXPECT_LE(h.quantile(0.99), static_cast<double>(h.max())) << v;
        EXPECT_LE(h.quantile(0.50), static_cast<double>(h.max())) << v;
        EXPECT_GE(h.quantile(0.99), 0.968 * static_cast<double>(v)) << v << ": within 3.2 %";
    }
    zan_bench::Histogram h;
    for (long long v = 1000; v <= 100000; v += 1000)
        h.record(v);
    EXPECT_LE(h.quantile(0.99), 100000.0);
    EXPECT_GE(h.quantile(0.99), 0.968 * 99000);
    EXPECT_LE(h.quantile(0.50), 1.032 * 50000);
    EXPECT_GE(h.quantile(0.50), 0.968 * 50000);
}

// Number of the JSON field `key` in `json` (-1 when absent).
double json_num(const std::string& json, const std::string& key)
{
    size_t at = json.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : atof(json.c_str() + at + key.size() + 3);
}

TEST(BenchTool, RequestsAreCountedAndEveryReplyVerified)
{
    zt::Proc server;
    int port = zt::start_echod(&server, {"--worker-num", "1", "--net-worker-num", "1"});
    ASSERT_GT(port, 0) << server.output();
    std::string out;
    int rc = zt::run_command(zt::shell_quote(zt::tool("zan-bench")) + " --port " + std::to_string(port) +
                                 " --connections 4 --requests 400 --pipeline 2 --json",
                             &out, 60);
    ASSERT_EQ(0, rc) << out;
    EXPECT_EQ(400, json_num(out, "requests")) << out;
    EXPECT_EQ(0, json_num(out, "errors")) << out;
    EXPECT_EQ(0, json_num(out, "lost")) << out;
    EXPECT_LE(json_num(out, "p99_us"), json_num(out, "max_us")) << out;
}

TEST(BenchTool, DurationAndRequestsTogetherAreRefused)
{
    std::string out;
    int rc = zt::run_command(zt::shell_quote(zt::tool("zan-bench")) +
                                 " --port 9 --requests 10 --duration 1 2>&1",
                             &out, 30);
    EXPECT_EQ(2, rc) << out;
    EXPECT_NE(std::string::npos, out.find("alternatives")) << out;
}

}  // namespace
