// Streamed request bodies (HttpConfig::stream_body_from): an HttpServer
// in a forked child whose handlers read bodies with
// HttpResponse::read_body(). Bodies of 20 MiB arrive byte-exact with a
// length and chunked while neither the NetWorker nor the Worker holds
// them; a reader that pauses gets everything; small bodies still come
// whole; an early answer closes the connection; a client that leaves, or
// sends a bad chunk, cuts the body short (the reader is told); pipelined
// requests behind a streamed one are answered in order.
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "t/forked_main.h"
#include "t/forked_server.h"
#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/proxy_upstream.h"
#include "t/test_env.h"
#include "zan/http_server.h"

namespace {

const size_t k20MiB = 20u << 20;

// How the last streamed body of this Worker ended: "ok N", "cut N".
std::string g_last_end = "none";

// FNV-1a, to compare a body the server saw with the one sent.
struct Digest {
    uint64_t h = 1469598103934665603ull;
    size_t n = 0;
    void add(std::string_view d)
    {
        for (char c : d) {
            h ^= static_cast<unsigned char>(c);
            h *= 1099511628211ull;
        }
        n += d.size();
    }
    std::string text() const { return std::to_string(n) + " " + std::to_string(h); }
};

std::string digest_of(const std::string& s)
{
    Digest d;
    d.add(s);
    return d.text();
}

// The peak resident memory of a process, in KiB (VmHWM).
long peak_kib(pid_t pid)
{
    std::string s = zt::read_file("/proc/" + std::to_string(pid) + "/status");
    size_t at = s.find("VmHWM:");
    return at == std::string::npos ? -1 : atol(s.c_str() + at + 6);
}

class StreamServer {
public:
    StreamServer() : main_(run) {}
    int port() const { return main_.port(); }
    pid_t pid() const { return main_.pid(); }

private:
    // Reads the body into a digest and answers it; /slow pauses the
    // reader for 5 ms after every 512 KiB.
    static void sum(zan::HttpServer& s, zan::HttpResponse& resp, bool slow)
    {
        auto kept = std::make_shared<zan::HttpResponse>(std::move(resp));
        auto d = std::make_shared<Digest>();
        auto mark = std::make_shared<size_t>(0);
        zan::HttpServer* srv = &s;
        kept->read_body([kept, d, mark, slow, srv](std::string_view data, bool end, bool ok) {
            d->add(data);
            if (end) {
                g_last_end = std::string(ok ? "ok " : "cut ") + std::to_string(d->n);
                kept->end(std::string(ok ? "ok " : "cut ") + d->text());
                return;
            }
            if (slow && d->n >= *mark + (512u << 10)) {
                *mark = d->n;
                kept->set_body_reading(false);
                srv->run_after(5, [kept] { kept->set_body_reading(true); });
            }
        });
    }

    static int run(int ready_fd)
    {
        zan::ServerConfig cfg;
        cfg.worker_num = 1;
        cfg.net_worker_num = 1;
        cfg.log_level = zan::Level::error;
        zan::HttpConfig hc;
        hc.limits.max_body = 64u << 20;
        hc.stream_body_from = 4096;
        hc.stream_window = 128u << 10;
        hc.keepalive_timeout_ms = zt::scaled(3000);
        zan::HttpServer srv(cfg, hc);
        if (!srv.listen("127.0.0.1", 0))
            return 1;
        srv.on_start([ready_fd](zan::TcpServer& s) { zt::ForkedMain::report_port(ready_fd, s.port()); });
        srv.on_request([](zan::HttpServer& s, zan::HttpRequest& req, zan::HttpResponse& resp) {
            if (req.path == "/sum") {
                sum(s, resp, false);
            } else if (req.path == "/slow") {
                sum(s, resp, true);
            } else if (req.path == "/early") {
                resp.set_status(413);
                resp.end("too large\n");
            } else if (req.path == "/kind") {
                resp.end(req.streamed ? "streamed" : "whole " + std::to_string(req.body.size()));
            } else if (req.path == "/last-end") {
                resp.end(g_last_end);
            } else {
                resp.end("fast\n");
            }
        });
        return srv.start();
    }

    zt::ForkedMain main_;
};

std::string post_head(const std::string& path, const std::string& framing)
{
    return "POST " + path + " HTTP/1.1\r\nHost: t\r\n" + framing + "\r\n";
}

std::string with_length(const std::string& path, const std::string& body)
{
    return post_head(path, "Content-Length: " + std::to_string(body.size()) + "\r\n") + body;
}

std::string chunked(const std::string& path, const std::string& body, size_t piece)
{
    std::string r = post_head(path, "Transfer-Encoding: chunked\r\n");
    for (size_t off = 0; off < body.size(); off += piece) {
        size_t n = std::min(piece, body.size() - off);
        char size[32];
        snprintf(size, sizeof size, "%zx\r\n", n);
        r.append(size).append(body, off, n).append("\r\n");
    }
    return r + "0\r\n\r\n";
}

TEST(HttpStream, LargeBodiesArriveByteExactWithoutBeingHeld)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    pid_t worker = zt::wait_for_name(srv.pid(), "zan-worker-0", 0, zt::scaled(5000));
    pid_t net = zt::wait_for_name(srv.pid(), "zan-net-0", 0, zt::scaled(5000));
    ASSERT_GT(worker, 0);
    ASSERT_GT(net, 0);
    long worker_before = peak_kib(worker), net_before = peak_kib(net);
    std::string body = zt::pattern(k20MiB);
    zt::Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());

    ASSERT_TRUE(zt::send_str(c.get(), with_length("/sum", body)));
    zt::Reply r = zt::read_reply(c.get(), "POST", zt::scaled(20000));
    EXPECT_EQ(200, r.status);
    EXPECT_EQ("ok " + digest_of(body), r.body);

    ASSERT_TRUE(zt::send_str(c.get(), chunked("/sum", body, 100000)));
    r = zt::read_reply(c.get(), "POST", zt::scaled(20000));
    EXPECT_EQ(200, r.status);
    EXPECT_EQ("ok " + digest_of(body), r.body);

    // Chunks smaller than a read, and the connection still serves.
    std::string small = zt::pattern(1u << 20);
    ASSERT_TRUE(zt::send_str(c.get(), chunked("/sum", small, 777)));
    r = zt::read_reply(c.get(), "POST", zt::scaled(20000));
    EXPECT_EQ("ok " + digest_of(small), r.body);
    ASSERT_TRUE(zt::send_str(c.get(), "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
    r = zt::read_reply(c.get(), "GET", zt::scaled(5000));
    EXPECT_EQ("fast\n", r.body);

    // Whole, each body would have cost 20 MiB in both processes (the
    // sanitizer's quarantine makes peaks meaningless).
    if (!zt::kSanitizedHeap && worker_before > 0 && net_before > 0) {
        EXPECT_LT(peak_kib(worker) - worker_before, 8 * 1024);
        EXPECT_LT(peak_kib(net) - net_before, 8 * 1024);
    }
}

TEST(HttpStream, APausingReaderGetsEverything)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    std::string body = zt::pattern(8u << 20);
    zt::Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), chunked("/slow", body, 65536)));
    zt::Reply r = zt::read_reply(c.get(), "POST", zt::scaled(20000));
    EXPECT_EQ("ok " + digest_of(body), r.body);
    ASSERT_TRUE(zt::send_str(c.get(), with_length("/slow", body)));
    r = zt::read_reply(c.get(), "POST", zt::scaled(20000));
    EXPECT_EQ("ok " + digest_of(body), r.body);
}

TEST(HttpStream, SmallBodiesComeWholeAndLargeOnesStreamed)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    zt::Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), with_length("/kind", std::string(100, 'x'))));
    zt::Reply r = zt::read_reply(c.get(), "POST");
    EXPECT_EQ("whole 100", r.body);
    // Only the header section of a large one: the handler answers at once.
    ASSERT_TRUE(zt::send_str(c.get(), post_head("/kind", "Content-Length: 100000\r\n")));
    r = zt::read_reply(c.get(), "POST");
    EXPECT_EQ("streamed", r.body);
    EXPECT_EQ("close", r.field("Connection")) << "the body is still to come: the connection ends";
    EXPECT_TRUE(zt::wait_closed(c.get(), zt::scaled(3000)));
}

TEST(HttpStream, AnEarlyAnswerClosesTheConnection)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    zt::Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), post_head("/early", "Content-Length: 50000000\r\n") + std::string(300000, 'x')));
    zt::Reply r = zt::read_reply(c.get(), "POST");
    EXPECT_EQ(413, r.status);
    EXPECT_EQ("close", r.field("Connection"));
    EXPECT_TRUE(zt::wait_closed(c.get(), zt::scaled(3000)));
    zt::Sock d(zt::connect_local(srv.port()));
    ASSERT_TRUE(zt::send_str(d.get(), "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
    EXPECT_EQ("fast\n", zt::read_reply(d.get()).body);
}

// What the reader was told of the last body, polled from a new connection.
std::string last_end(int port, const std::string& want)
{
    long long deadline = zt::now_ms() + zt::scaled(5000);
    std::string got;
    while (zt::now_ms() < deadline) {
        zt::Sock d(zt::connect_local(port));
        if (d.ok() && zt::send_str(d.get(), "GET /last-end HTTP/1.1\r\nHost: t\r\n\r\n"))
            got = zt::read_reply(d.get()).body;
        if (got.compare(0, want.size(), want) == 0)
            break;
        usleep(5000);
    }
    return got;
}

TEST(HttpStream, AClientLeavingMidBodyCutsItShort)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    {
        zt::Sock c(zt::connect_local(srv.port()));
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(zt::send_str(c.get(), post_head("/sum", "Content-Length: 10000000\r\n") + std::string(500000, 'x')));
        ASSERT_TRUE(zt::wait_server_read(c.get(), srv.port()));
    }
    EXPECT_EQ("cut", last_end(srv.port(), "cut").substr(0, 3));
}

TEST(HttpStream, ABadChunkMidBodyClosesAndCutsItShort)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    zt::Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    std::string req = chunked("/sum", std::string(200000, 'y'), 50000);
    req.resize(req.size() - 5);  // drop the last chunk
    req += "zz\r\n";              // not a chunk size
    ASSERT_TRUE(zt::send_str(c.get(), req));
    EXPECT_TRUE(zt::wait_closed(c.get(), zt::scaled(3000)));
    EXPECT_EQ("cut", last_end(srv.port(), "cut").substr(0, 3));
}

TEST(HttpStream, PipelinedRequestsBehindAStreamedOneKeepTheirOrder)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    zt::Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    std::string body = zt::pattern(300000);
    std::string get = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    ASSERT_TRUE(zt::send_str(c.get(), get + chunked("/sum", body, 4000) + get + with_length("/sum", body) + get));
    std::string rest;
    EXPECT_EQ("fast\n", zt::read_reply(c.get(), "GET", zt::scaled(5000), &rest).body);
    EXPECT_EQ("ok " + digest_of(body), zt::read_reply(c.get(), "POST", zt::scaled(5000), &rest).body);
    EXPECT_EQ("fast\n", zt::read_reply(c.get(), "GET", zt::scaled(5000), &rest).body);
    EXPECT_EQ("ok " + digest_of(body), zt::read_reply(c.get(), "POST", zt::scaled(5000), &rest).body);
    EXPECT_EQ("fast\n", zt::read_reply(c.get(), "GET", zt::scaled(5000), &rest).body);
}

TEST(HttpStream, ExpectContinueBeforeAStreamedBody)
{
    StreamServer srv;
    ASSERT_GT(srv.port(), 0);
    zt::Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    std::string body = zt::pattern(1u << 20);
    ASSERT_TRUE(zt::send_str(c.get(), post_head("/sum", "Content-Length: " + std::to_string(body.size()) +
                                                            "\r\nExpect: 100-continue\r\n")));
    std::string line;
    ASSERT_TRUE(zt::read_line(c.get(), &line, zt::scaled(3000)));
    EXPECT_EQ(0u, line.find("HTTP/1.1 100 Continue"));
    ASSERT_TRUE(zt::read_line(c.get(), &line, zt::scaled(3000)));  // its empty line
    ASSERT_TRUE(zt::send_str(c.get(), body));
    zt::Reply r = zt::read_reply(c.get(), "POST", zt::scaled(10000));
    EXPECT_EQ("ok " + digest_of(body), r.body);
}

}  // namespace
