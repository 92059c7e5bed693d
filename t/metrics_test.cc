// Unit tests of Metrics (zan/metrics.h): the Prometheus text it renders
// passes promtool and carries HELP and TYPE for every family, with
// cumulative histogram buckets; the JSON parses and has the documented
// keys; the bucket and status helpers of zan/detail/shm_tables.h.
#include <gtest/gtest.h>

#include <string>

#include "t/jsonl.h"
#include "t/prom_text.h"
#include "zan/detail/shm_tables.h"
#include "zan/metrics.h"

namespace {

// A Master, a Worker, a NetWorker and a TaskWorker with known figures.
zan::Metrics sample_metrics()
{
    zan::Metrics m;
    m.start_time = 1700000000;
    m.reloads = 2;
    m.last_reload = 1700000100;
    m.task_queue_depth = 3;
    m.task_queue_bytes = 96;
    zan::ProcessMetrics master;
    master.role = "master";
    master.pid = 100;
    master.state = 'S';
    master.rss_bytes = 4096;
    m.procs.push_back(master);
    zan::ProcessMetrics w;
    w.role = "worker";
    w.pid = 101;
    w.state = 'S';
    w.requests = 40;
    w.responses[1] = 38;
    w.responses[3] = 2;
    w.tasks_queued = 5;
    w.respawns = 1;
    w.respawn_signal = 1;
    m.procs.push_back(w);
    zan::ProcessMetrics n;
    n.role = "net";
    n.pid = 102;
    n.state = 'R';
    n.accepted = 7;
    n.closed = 5;
    n.waiting = 2;
    n.received = 41;
    n.bytes_in = 1000;
    n.bytes_out = 5000;
    n.responses[3] = 1;
    n.refused[0] = 1;
    n.duration[0] = 30;
    n.duration[3] = 10;
    n.duration[zan::kDurationBuckets] = 1;
    n.duration_sum_us = 12345678;
    m.procs.push_back(n);
    zan::ProcessMetrics t;
    t.role = "task";
    t.tasks_done = 4;
    t.tasks_failed = 1;
    m.procs.push_back(t);
    return m;
}

TEST(Metrics, PrometheusTextPassesPromtool)
{
    std::string text = sample_metrics().to_prometheus();
    ASSERT_FALSE(text.empty());
    EXPECT_EQ('\n', text.back());
    EXPECT_EQ("", zt::promtool_check(text));
}

TEST(Metrics, PrometheusTextHasEveryFamilyTypedAndTheFigures)
{
    std::string text = sample_metrics().to_prometheus();
    zt::PromText p;
    ASSERT_TRUE(zt::parse_prom_text(text, &p)) << p.error;
    for (const auto& kv : p.type) {
        EXPECT_EQ(1u, p.help.count(kv.first)) << kv.first;
        EXPECT_EQ(0u, kv.first.rfind("zan_", 0)) << kv.first;
        if (kv.second == "counter") {
            EXPECT_EQ("_total", kv.first.substr(kv.first.size() - 6)) << kv.first;
        }
    }
    EXPECT_EQ("histogram", p.type["zan_request_duration_seconds"]);
    EXPECT_EQ(40, p.sum("zan_requests_total", "role=\"worker\""));
    EXPECT_EQ(41, p.sum("zan_requests_received_total"));
    EXPECT_EQ(38, p.sum("zan_http_responses_total", "class=\"2xx\""));
    EXPECT_EQ(3, p.sum("zan_http_responses_total", "class=\"4xx\""));
    EXPECT_EQ(1, p.sum("zan_http_refused_total", "code=\"400\""));
    EXPECT_EQ(2, p.sum("zan_connections_open"));
    EXPECT_EQ(2, p.sum("zan_connections_state", "state=\"waiting\""));
    EXPECT_EQ(1, p.sum("zan_respawns_total", "cause=\"signal\""));
    EXPECT_EQ(3, p.sum("zan_task_queue_depth"));
    EXPECT_EQ(4, p.sum("zan_tasks_done_total"));
    EXPECT_EQ(1, p.sum("zan_tasks_failed_total"));
    // Cumulative buckets, +Inf equal to the count, the sum in seconds.
    EXPECT_EQ(30, p.sum("zan_request_duration_seconds_bucket", "le=\"0.0001\""));
    EXPECT_EQ(30, p.sum("zan_request_duration_seconds_bucket", "le=\"0.0005\""));
    EXPECT_EQ(40, p.sum("zan_request_duration_seconds_bucket", "le=\"0.001\""));
    EXPECT_EQ(41, p.sum("zan_request_duration_seconds_bucket", "le=\"+Inf\""));
    EXPECT_EQ(41, p.sum("zan_request_duration_seconds_count"));
    EXPECT_NEAR(12.345678, p.sum("zan_request_duration_seconds_sum"), 1e-6);
    EXPECT_EQ(1, p.samples["zan_build_info{version=\"" + std::string(zan::kZanVersion) + "\"}"]);
}

TEST(Metrics, JsonHasTheDocumentedKeysAndTotals)
{
    zt::Json j;
    ASSERT_TRUE(zt::parse_json(sample_metrics().to_json(), &j));
    for (const char* k : {"version", "start_time", "last_reload", "reloads", "task_queue", "totals", "processes"})
        EXPECT_NE(nullptr, j.get(k)) << k;
    const zt::Json* procs = j.get("processes");
    ASSERT_NE(nullptr, procs);
    ASSERT_EQ(4u, procs->a.size());
    for (const zt::Json& p : procs->a)
        for (const char* k : {"role", "id", "pid", "state", "start_time", "cpu_seconds", "rss_bytes",
                              "connections", "received", "requests", "bytes_in", "bytes_out",
                              "responses", "refused", "tasks", "respawns", "duration"})
            EXPECT_NE(nullptr, p.get(k)) << k;
    const zt::Json& tot = *j.get("totals");
    EXPECT_EQ(40, tot.get("requests")->n);
    EXPECT_EQ(41, tot.get("received")->n);
    EXPECT_EQ(2, tot.get("connections")->get("open")->n);
    EXPECT_EQ(3, tot.get("responses")->get("4xx")->n);
    EXPECT_EQ(41, tot.get("duration")->get("count")->n);
    EXPECT_EQ(static_cast<size_t>(zan::kDurationBuckets + 1), tot.get("duration")->get("counts")->a.size());
    EXPECT_EQ("R", procs->a[2].str("state"));
}

TEST(Metrics, BucketsAndRefusedStatuses)
{
    EXPECT_EQ(0, zan::duration_bucket(0));
    EXPECT_EQ(0, zan::duration_bucket(100));
    EXPECT_EQ(1, zan::duration_bucket(101));
    EXPECT_EQ(zan::kDurationBuckets - 1, zan::duration_bucket(5000000));
    EXPECT_EQ(zan::kDurationBuckets, zan::duration_bucket(5000001));
    EXPECT_EQ(0, zan::refused_index(400));
    EXPECT_EQ(6, zan::refused_index(505));
    EXPECT_EQ(-1, zan::refused_index(404));
}

TEST(Metrics, AnEmptySnapshotStillRenders)
{
    zan::Metrics m;
    zt::PromText p;
    ASSERT_TRUE(zt::parse_prom_text(m.to_prometheus(), &p)) << p.error;
    EXPECT_EQ("", zt::promtool_check(m.to_prometheus()));
    zt::Json j;
    EXPECT_TRUE(zt::parse_json(m.to_json(), &j));
}

}  // namespace
