// Integration tests of the monitoring figures, on zan-httpd: a scrape of
// --metrics-path passes promtool, and between two scrapes every counter
// moves by exactly what the test did (requests, status classes, a
// NetWorker refusal, bytes both ways, the duration histogram,
// connections); a Worker killed by a signal, a reload and a recycling
// after max_request are counted; `zanctl stats` prints JSON with the
// documented keys, `zanctl top -n 1` one row per process, and both refuse
// a pid file that names no zan Master.
#include <signal.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "t/http_client.h"
#include "t/jsonl.h"
#include "t/proc_helpers.h"
#include "t/prom_text.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

namespace {

using ServerMetrics = zt::ServerTest;

int zanctl(const std::string& args, std::string* out)
{
    return zt::run_command(zt::shell_quote(zt::tool("zanctl")) + " " + args, out, 30);
}

// GET /metrics on c; the reply in *r, parsed into *p.
::testing::AssertionResult scrape(zt::HttpClient& c, zt::HttpReply* r, zt::PromText* p)
{
    if (!c.request("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", r))
        return ::testing::AssertionFailure() << "no reply to the scrape";
    if (r->status != 200)
        return ::testing::AssertionFailure() << "scrape status " << r->status;
    const std::string* ct = r->header("Content-Type");
    if (!ct || *ct != "text/plain; version=0.0.4; charset=utf-8")
        return ::testing::AssertionFailure() << "Content-Type " << (ct ? *ct : "(none)");
    if (!zt::parse_prom_text(r->body, p))
        return ::testing::AssertionFailure() << "bad line: " << p->error;
    return ::testing::AssertionSuccess();
}

// The document `zanctl stats` prints, parsed.
::testing::AssertionResult stats(const std::string& pidfile, zt::Json* j)
{
    std::string out;
    int rc = zanctl("-p " + zt::shell_quote(pidfile) + " stats", &out);
    if (rc != 0)
        return ::testing::AssertionFailure() << "zanctl stats: " << rc << ": " << out;
    if (!zt::parse_json(out, j))
        return ::testing::AssertionFailure() << "not JSON: " << out;
    return ::testing::AssertionSuccess();
}

// The process object of (role, id) in a stats document, or nullptr.
const zt::Json* process(const zt::Json& doc, const std::string& role, int id)
{
    const zt::Json* procs = doc.get("processes");
    if (!procs)
        return nullptr;
    for (const zt::Json& p : procs->a)
        if (p.str("role") == role && p.get("id") && p.get("id")->n == id)
            return &p;
    return nullptr;
}

double field(const zt::Json* obj, const char* a, const char* b = nullptr)
{
    const zt::Json* v = obj ? obj->get(a) : nullptr;
    if (v && b)
        v = v->get(b);
    return v ? v->n : -1;
}

TEST_F(ServerMetrics, CountersMoveByExactlyTheRequestsMade)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "2", "--net-worker-num", "1", "--metrics-path", "/metrics"}));
    zt::HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    zt::HttpReply ra, rb, r;
    zt::PromText a, b;
    ASSERT_TRUE(scrape(c, &ra, &a));
    EXPECT_EQ("", zt::promtool_check(ra.body));
    const std::string scrape_req = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    const std::string hello = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    const std::string missing = "GET /nothing-here HTTP/1.1\r\nHost: t\r\n\r\n";
    const int n = 50, m = 3;
    double out_bytes = static_cast<double>(ra.wire_bytes);  // written after scrape A was taken
    double in_bytes = 0;
    for (int i = 0; i < n; i++) {
        ASSERT_TRUE(c.request(hello, &r)) << i;
        ASSERT_EQ(200, r.status);
        out_bytes += static_cast<double>(r.wire_bytes);
        in_bytes += static_cast<double>(hello.size());
    }
    for (int i = 0; i < m; i++) {
        ASSERT_TRUE(c.request(missing, &r)) << i;
        ASSERT_EQ(404, r.status);
        out_bytes += static_cast<double>(r.wire_bytes);
        in_bytes += static_cast<double>(missing.size());
    }
    {
        // A header line without a colon: the NetWorker answers 400 and closes.
        zt::HttpClient bad(port_);
        ASSERT_TRUE(bad.ok());
        const std::string req = "GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n";
        ASSERT_TRUE(bad.request(req, &r));
        ASSERT_EQ(400, r.status);
        ASSERT_TRUE(bad.closed(zt::scaled(5000)));
        out_bytes += static_cast<double>(r.wire_bytes);
        in_bytes += static_cast<double>(req.size());
    }
    in_bytes += static_cast<double>(scrape_req.size());  // scrape B was read before it was taken
    ASSERT_TRUE(scrape(c, &rb, &b));
    EXPECT_EQ("", zt::promtool_check(rb.body));

    auto delta = [&](const std::string& name, const std::string& labels = "") {
        return b.sum(name, labels) - a.sum(name, labels);
    };
    // Handled by Workers: the requests, the 404s and scrape A (scrape B
    // is being handled while it is taken). The refusal never reaches one.
    EXPECT_EQ(n + m + 1, delta("zan_requests_total"));
    EXPECT_EQ(n + m + 1, delta("zan_requests_received_total"));
    // A reply is counted when its head is made, after the snapshot in it.
    EXPECT_EQ(n + 1, delta("zan_http_responses_total", "class=\"2xx\""));
    EXPECT_EQ(m + 1, delta("zan_http_responses_total", "class=\"4xx\""));
    EXPECT_EQ(0, delta("zan_http_responses_total", "class=\"5xx\""));
    EXPECT_EQ(1, delta("zan_http_refused_total", "code=\"400\""));
    EXPECT_EQ(0, delta("zan_http_refused_total", "code=\"408\""));
    EXPECT_EQ(in_bytes, delta("zan_received_bytes_total"));
    EXPECT_EQ(out_bytes, delta("zan_sent_bytes_total"));
    // Timed from receipt to reply written: scrape A, the requests, the 404s.
    EXPECT_EQ(n + m + 1, delta("zan_request_duration_seconds_count"));
    EXPECT_EQ(n + m + 1, delta("zan_request_duration_seconds_bucket", "le=\"+Inf\""));
    EXPECT_GT(delta("zan_request_duration_seconds_sum"), 0);
    EXPECT_EQ(1, delta("zan_connections_accepted_total"));
    EXPECT_EQ(1, delta("zan_connections_closed_total"));
    EXPECT_EQ(1, b.sum("zan_connections_open"));
    EXPECT_EQ(4, b.sum("zan_process_up"));  // Master, 2 Workers, 1 NetWorker
    EXPECT_GT(b.sum("zan_process_resident_memory_bytes", "role=\"net\""), 0);
    // Not GET or HEAD: 405, and no figures.
    ASSERT_TRUE(c.request("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r));
    EXPECT_EQ(405, r.status);
    EXPECT_EQ("", stop_and_check());
}

TEST_F(ServerMetrics, RespawnReloadAndRecyclingAreCounted)
{
    zt::TempDir dir;
    std::string pidfile = dir.path + "/httpd.pid";
    ASSERT_TRUE(start_httpd({"--worker-num", "2", "--net-worker-num", "1", "--max-request", "10",
                             "--pid-file", pidfile}));
    zt::Json j;
    ASSERT_TRUE(stats(pidfile, &j));
    EXPECT_EQ(0, field(process(j, "worker", 0), "respawns", "total"));
    EXPECT_EQ(0, field(&j, "reloads"));

    pid_t w0 = find_by_name("zan-worker-0");
    ASSERT_GT(w0, 0);
    ASSERT_EQ(0, ::kill(w0, SIGKILL));
    ASSERT_GT(wait_for_name("zan-worker-0", w0, zt::scaled(5000)), 0);
    ASSERT_TRUE(stats(pidfile, &j));
    EXPECT_EQ(1, field(process(j, "worker", 0), "respawns", "signal"));
    EXPECT_EQ(0, field(process(j, "worker", 0), "respawns", "exit"));
    EXPECT_EQ(1, field(process(j, "worker", 0), "respawns", "total"));
    EXPECT_EQ(0, field(process(j, "worker", 1), "respawns", "total"));

    std::string out;
    ASSERT_EQ(0, zanctl("-p " + zt::shell_quote(pidfile) + " reload", &out)) << out;
    long long deadline = zt::now_ms() + zt::scaled(10000);
    do {
        ASSERT_TRUE(stats(pidfile, &j));
    } while (field(&j, "reloads") < 1 && zt::now_ms() < deadline && ::usleep(20000) == 0);
    EXPECT_EQ(1, field(&j, "reloads"));
    EXPECT_GT(field(&j, "last_reload"), 0);

    // 25 requests over 2 Workers of max_request 10: at least one recycles.
    {
        zt::HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        zt::HttpReply r;
        for (int i = 0; i < 25; i++) {
            ASSERT_TRUE(c.request("GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r)) << i;
            ASSERT_EQ(200, r.status);
        }
    }
    deadline = zt::now_ms() + zt::scaled(10000);
    double recycled = 0;
    do {
        ASSERT_TRUE(stats(pidfile, &j));
        recycled = field(j.get("totals"), "respawns", "max_request");
    } while (recycled < 1 && zt::now_ms() < deadline && ::usleep(20000) == 0);
    EXPECT_GE(recycled, 1);
    EXPECT_EQ(25, field(j.get("totals"), "requests"));
    EXPECT_EQ("", stop_and_check());
}

TEST_F(ServerMetrics, ZanctlStatsAndTopShowEveryProcess)
{
    zt::TempDir dir;
    std::string pidfile = dir.path + "/httpd.pid";
    ASSERT_TRUE(start_httpd({"--worker-num", "2", "--net-worker-num", "2", "--pid-file", pidfile}));
    std::string q = "-p " + zt::shell_quote(pidfile);
    {
        zt::HttpClient c(port_);
        zt::HttpReply r;
        ASSERT_TRUE(c.ok() && c.request("GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r));
    }
    zt::Json j;
    ASSERT_TRUE(stats(pidfile, &j));
    for (const char* k : {"version", "start_time", "last_reload", "reloads", "task_queue", "totals", "processes"})
        EXPECT_NE(nullptr, j.get(k)) << k;
    ASSERT_NE(nullptr, j.get("processes"));
    ASSERT_EQ(5u, j.get("processes")->a.size());  // Master, 2 Workers, 2 NetWorkers
    for (const zt::Json& p : j.get("processes")->a) {
        for (const char* k : {"role", "id", "pid", "state", "start_time", "cpu_seconds", "rss_bytes",
                              "connections", "received", "requests", "bytes_in", "bytes_out",
                              "responses", "refused", "tasks", "respawns", "duration"})
            EXPECT_NE(nullptr, p.get(k)) << k;
        EXPECT_GT(p.get("pid")->n, 0);
    }
    EXPECT_EQ(server_.pid(), process(j, "master", 0)->get("pid")->n);
    EXPECT_EQ(1, field(j.get("totals"), "requests"));
    EXPECT_EQ(1, field(j.get("totals"), "responses", "2xx"));

    std::string out;
    ASSERT_EQ(0, zanctl(q + " top -n 1", &out)) << out;
    size_t head = out.find("\nROLE ");
    ASSERT_NE(std::string::npos, head) << out;
    EXPECT_EQ(std::string::npos, out.find('\033')) << "control sequences in a pipe";
    std::vector<std::string> rows;
    size_t pos = out.find('\n', head + 1);
    while (pos != std::string::npos && pos + 1 < out.size()) {
        size_t e = out.find('\n', pos + 1);
        rows.push_back(out.substr(pos + 1, e - pos - 1));
        pos = e;
    }
    ASSERT_EQ(5u, rows.size()) << out;
    int workers = 0, nets = 0, masters = 0;
    for (const std::string& row : rows) {
        masters += row.rfind("master ", 0) == 0;
        workers += row.rfind("worker ", 0) == 0;
        nets += row.rfind("net ", 0) == 0;
    }
    EXPECT_EQ(1, masters) << out;
    EXPECT_EQ(2, workers) << out;
    EXPECT_EQ(2, nets) << out;
    EXPECT_NE(std::string::npos, rows[0].find(std::to_string(server_.pid()))) << out;

    // Two frames in a pipe: plain text, one after the other.
    ASSERT_EQ(0, zanctl(q + " top -n 2", &out)) << out;
    size_t first = out.find("\nROLE "), second = out.find("\nROLE ", first + 1);
    EXPECT_NE(std::string::npos, second) << out;
    EXPECT_EQ("", stop_and_check());
}

// A TCP server (zan-echod, newline framing, no status classes): messages,
// bytes, replies timed, tasks queued and run, read through zanctl stats.
TEST_F(ServerMetrics, TcpServerCountsMessagesAndTasks)
{
    zt::TempDir dir;
    std::string pidfile = dir.path + "/echod.pid";
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "1",
                             "--pid-file", pidfile}));
    zt::Sock c = connect();
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 10; i++)
        ASSERT_EQ("hello", zt::request(c.get(), "hello")) << i;
    for (int i = 0; i < 2; i++)
        ASSERT_EQ("task-done t", zt::request(c.get(), "task t")) << i;
    zt::Json j;
    ASSERT_TRUE(stats(pidfile, &j));
    const zt::Json* tot = j.get("totals");
    EXPECT_EQ(12, field(tot, "received"));
    EXPECT_EQ(12, field(tot, "requests"));
    EXPECT_EQ(10 * 6 + 2 * 7, field(tot, "bytes_in"));
    EXPECT_EQ(10 * 6 + 2 * 12, field(tot, "bytes_out"));
    EXPECT_EQ(12, field(tot, "duration", "count"));
    EXPECT_EQ(2, field(tot, "tasks", "queued"));
    EXPECT_EQ(2, field(process(j, "task", 0), "tasks", "done"));
    EXPECT_EQ(0, field(tot, "tasks", "running"));
    EXPECT_EQ(0, field(j.get("task_queue"), "depth"));
    EXPECT_EQ(1, field(tot, "connections", "open"));
    EXPECT_EQ(0, field(tot, "responses", "2xx"));
    EXPECT_EQ("", stop_and_check());
}

TEST(ServerMetricsZanctl, StatsAndTopRefuseAPidFileOfNoZanMaster)
{
    zt::TempDir dir;
    std::string file = dir.path + "/foreign.pid";
    ASSERT_TRUE(zt::write_file(file, std::to_string(::getpid()) + "\n"));
    for (const char* cmd : {"stats", "top -n 1"}) {
        std::string out;
        EXPECT_EQ(1, zanctl("-p " + zt::shell_quote(file) + " " + cmd + " 2>&1", &out)) << cmd;
        EXPECT_NE(std::string::npos, out.find("is not a zan Master")) << cmd << ": " << out;
    }
    std::string out;
    EXPECT_EQ(1, zanctl("-p " + zt::shell_quote(dir.path + "/none.pid") + " stats 2>&1", &out));
    EXPECT_NE(std::string::npos, out.find("cannot read")) << out;
}

}  // namespace
