// HttpProxy through zan-httpd --proxy, against ProxyUpstream (an in-test
// origin server): bodies byte-exact both ways (20 MiB, with a length and
// chunked), 502 and 504, a body cut short, a client that leaves, the
// hop-by-hop fields, Via and X-Forwarded-For, HEAD, 204 and 304, and no
// descriptor kept after many requests.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/forked_server.h"
#include "t/proxy_upstream.h"
#include "t/server_fixture.h"
#include "t/test_env.h"

namespace {

const size_t k20MiB = 20u << 20;

class HttpProxyTest : public zt::ServerTest {
protected:
    // zan-httpd with one Worker, proxying to up_ (or to `upstream_port`).
    ::testing::AssertionResult start(const std::vector<std::string>& more = {}, int upstream_port = 0)
    {
        std::vector<std::string> args{"--worker-num",
                                      "1",
                                      "--net-worker-num",
                                      "1",
                                      "--proxy",
                                      "127.0.0.1:" + std::to_string(upstream_port ? upstream_port : up_.port()),
                                      "--client-max-body-size",
                                      "33554432"};
        args.insert(args.end(), more.begin(), more.end());
        return start_httpd(args);
    }

    zt::Reply get(int fd, const std::string& target, const std::string& method = "GET",
                  const std::string& fields = "", int timeout_ms = 10000)
    {
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: front.example\r\n" + fields + "\r\n";
        if (!zt::send_str(fd, req))
            return zt::Reply();
        return zt::read_reply(fd, method, timeout_ms);
    }

    // A wait with a deadline for what another thread or process changes.
    static bool eventually(const std::function<bool()>& pred, int ms = 5000)
    {
        long long deadline = zt::now_ms() + zt::scaled(ms);
        while (!pred()) {
            if (zt::now_ms() > deadline)
                return false;
            usleep(2000);
        }
        return true;
    }

    zt::ProxyUpstream up_;
};

// The peak resident memory of a process, in KiB (VmHWM).
long peak_kib(pid_t pid)
{
    std::string s = zt::read_file("/proc/" + std::to_string(pid) + "/status");
    size_t at = s.find("VmHWM:");
    return at == std::string::npos ? -1 : atol(s.c_str() + at + 6);
}

TEST_F(HttpProxyTest, StreamsLargeDownloadsByteExact)
{
    ASSERT_TRUE(start());
    pid_t worker = find_by_name("zan-worker-0");
    ASSERT_GT(worker, 0);
    long before = peak_kib(worker);
    zt::Sock c = connect();
    ASSERT_TRUE(c.ok());
    std::string want = zt::pattern(k20MiB);

    zt::Reply r = get(c.get(), "/n/" + std::to_string(k20MiB));
    EXPECT_EQ(200, r.status);
    EXPECT_EQ(static_cast<long long>(k20MiB), r.length);  // the upstream's length is kept
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(r.body == want) << "body of " << r.body.size() << " bytes differs";

    r = get(c.get(), "/c/" + std::to_string(k20MiB));  // chunked upstream: chunked to the client
    EXPECT_EQ(200, r.status);
    EXPECT_TRUE(r.chunked);
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(r.body == want) << "body of " << r.body.size() << " bytes differs";
    // Streamed, not held: the Worker's peak grew by less than one body
    // (the peak counts the pages of the shared reply ring it touched).
    if (!zt::kSanitizedHeap && before > 0) {
        EXPECT_LT(peak_kib(worker) - before, 16 * 1024);
    }
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

// A client that reads slowly: the proxy stops reading the upstream while
// more than max_unsent waits for it, and resumes when the NetWorker says
// half is written (HttpResponse::on_unsent_below), so the body arrives
// whole without piling up in the Worker or the NetWorker.
TEST_F(HttpProxyTest, ASlowClientGetsALargeDownloadByteExact)
{
    ASSERT_TRUE(start());
    pid_t worker = find_by_name("zan-worker-0");
    pid_t net = find_by_name("zan-net-0");
    ASSERT_GT(worker, 0);
    ASSERT_GT(net, 0);
    long worker_before = peak_kib(worker), net_before = peak_kib(net);
    zt::Sock c = connect();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "GET /n/" + std::to_string(k20MiB) + " HTTP/1.1\r\nHost: front.example\r\n\r\n"));
    std::string got;
    std::string buf(64u << 10, '\0');
    size_t head = std::string::npos;
    long long deadline = zt::now_ms() + zt::scaled(30000);
    while ((head == std::string::npos || got.size() < head + k20MiB) && zt::now_ms() < deadline) {
        struct pollfd p = {c.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = ::read(c.get(), &buf[0], buf.size());
        if (n <= 0)
            break;
        got.append(buf, 0, static_cast<size_t>(n));
        if (head == std::string::npos && (head = got.find("\r\n\r\n")) != std::string::npos)
            head += 4;
        usleep(500);  // a client at about 100 MB/s at most: the proxy outpaces it
    }
    ASSERT_NE(std::string::npos, head);
    EXPECT_EQ(0u, got.find("HTTP/1.1 200"));
    EXPECT_EQ(head + k20MiB, got.size());
    EXPECT_TRUE(got.compare(head, std::string::npos, zt::pattern(k20MiB)) == 0) << "body differs";
    if (!zt::kSanitizedHeap && worker_before > 0 && net_before > 0) {
        EXPECT_LT(peak_kib(worker) - worker_before, 16 * 1024);
        EXPECT_LT(peak_kib(net) - net_before, 16 * 1024);
    }
    // The connection still serves.
    zt::Reply r = get(c.get(), "/n/10");
    EXPECT_EQ(zt::pattern(10), r.body);
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, UploadsByteExactWithLengthAndChunked)
{
    ASSERT_TRUE(start());
    pid_t worker = find_by_name("zan-worker-0");
    pid_t net = find_by_name("zan-net-0");
    ASSERT_GT(worker, 0);
    ASSERT_GT(net, 0);
    long worker_before = peak_kib(worker), net_before = peak_kib(net);
    zt::Sock c = connect();
    ASSERT_TRUE(c.ok());
    std::string body = zt::pattern(k20MiB);

    std::string req = "POST /echo HTTP/1.1\r\nHost: front.example\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n";
    ASSERT_TRUE(zt::send_str(c.get(), req + body));
    zt::Reply r = zt::read_reply(c.get(), "POST", 20000);
    EXPECT_EQ(200, r.status);
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(r.body == body) << "echo of " << r.body.size() << " bytes differs";

    std::string chunked = "POST /echo HTTP/1.1\r\nHost: front.example\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t off = 0; off < body.size(); off += 100000) {
        size_t n = std::min<size_t>(100000, body.size() - off);
        char size[32];
        snprintf(size, sizeof size, "%zx\r\n", n);
        chunked.append(size).append(body, off, n).append("\r\n");
    }
    chunked += "0\r\n\r\n";
    ASSERT_TRUE(zt::send_str(c.get(), chunked));
    r = zt::read_reply(c.get(), "POST", 20000);
    EXPECT_EQ(200, r.status);
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(r.body == body) << "echo of " << r.body.size() << " bytes differs";
    // The uploads streamed through: held whole, each would have cost
    // 20 MiB in the NetWorker and in the Worker. (The echoes come back
    // through a window of max_unsent.)
    if (!zt::kSanitizedHeap && worker_before > 0 && net_before > 0) {
        EXPECT_LT(peak_kib(worker) - worker_before, 16 * 1024);
        EXPECT_LT(peak_kib(net) - net_before, 16 * 1024);
    }
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, RefusedUpstreamIs502)
{
    int dead = 0;
    {
        zt::ProxyUpstream gone;  // a port that was just free
        dead = gone.port();
    }
    ASSERT_TRUE(start({}, dead));
    zt::Sock c = connect();
    zt::Reply r = get(c.get(), "/");
    EXPECT_EQ(502, r.status);
    EXPECT_TRUE(r.complete);
    r = get(c.get(), "/");  // the connection stays usable
    EXPECT_EQ(502, r.status);
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, GarbageFromUpstreamIs502)
{
    ASSERT_TRUE(start());
    zt::Sock c = connect();
    zt::Reply r = get(c.get(), "/garbage");
    EXPECT_EQ(502, r.status);
    EXPECT_TRUE(r.complete);
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, SilentUpstreamIs504WithinTheTimeout)
{
    ASSERT_TRUE(start({"--proxy-timeout", "300"}));
    zt::Sock c = connect();
    long long t0 = zt::now_ms();
    zt::Reply r = get(c.get(), "/hang");
    long long took = zt::now_ms() - t0;
    EXPECT_EQ(504, r.status);
    EXPECT_GE(took, 250);
    EXPECT_LT(took, zt::scaled(3000));
    EXPECT_TRUE(eventually([&] { return up_.closed() >= 1; }));  // the upstream connection was closed
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, UpstreamCutMidBodyClosesTheClient)
{
    ASSERT_TRUE(start());
    for (const char* target : {"/cut", "/cutc"}) {
        zt::Sock c = connect();
        zt::Reply r = get(c.get(), target);
        EXPECT_EQ(200, r.status) << target;
        EXPECT_FALSE(r.complete) << target;
        EXPECT_TRUE(r.closed) << target;
        EXPECT_LT(r.body.size(), 1000000u) << target;
    }
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, ClientLeavingReleasesTheUpstreamConnection)
{
    ASSERT_TRUE(start());
    zt::Sock c = connect();
    ASSERT_TRUE(zt::send_str(c.get(), "GET /hang HTTP/1.1\r\nHost: front.example\r\n\r\n"));
    ASSERT_TRUE(eventually([&] { return up_.requests() == 1; }));
    EXPECT_EQ(0, up_.closed());
    c.reset();  // the client goes away mid-request
    EXPECT_TRUE(eventually([&] { return up_.closed() == 1; }));
    // The Worker is fine: the next request goes through.
    zt::Sock d = connect();
    zt::Reply r = get(d.get(), "/n/10");
    EXPECT_EQ(200, r.status);
    EXPECT_EQ(zt::pattern(10), r.body);
    d.reset();
    EXPECT_EQ("", stop_and_check());
}

// An upload streams: the upstream connection is made before the body is
// in, and a client that leaves mid-body takes the upstream request with it.
TEST_F(HttpProxyTest, ClientLeavingMidUploadReleasesTheUpstreamConnection)
{
    ASSERT_TRUE(start());
    for (const char* framing : {"Content-Length: 10000000\r\n", "Transfer-Encoding: chunked\r\n"}) {
        int closed = up_.closed();
        zt::Sock c = connect();
        std::string head = std::string("POST /echo HTTP/1.1\r\nHost: front.example\r\n") + framing + "\r\n";
        std::string part = std::string(framing).find("chunked") != std::string::npos
                               ? "30000\r\n" + std::string(0x30000, 'u')
                               : std::string(0x30000, 'u');
        ASSERT_TRUE(zt::send_str(c.get(), head + part));
        ASSERT_TRUE(eventually([&] { return up_.accepted() > closed; })) << framing;
        c.reset();
        EXPECT_TRUE(eventually([&] { return up_.closed() == closed + 1; })) << framing;
    }
    EXPECT_EQ(0, up_.requests()) << "a cut upload reached the upstream as a request";
    zt::Sock d = connect();
    zt::Reply r = get(d.get(), "/n/10");
    EXPECT_EQ(200, r.status);
    d.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, HopByHopFieldsStayOnTheirHop)
{
    ASSERT_TRUE(start());
    zt::Sock c = connect();
    zt::Reply r = get(c.get(), "/head", "GET",
                      // Listed names as long as fixed hop-by-hop ones (7, 2, 10) and longer.
                      "Connection: X-Trace, keep-alive, X-A-Rather-Long-Custom-Field-Name\r\n"
                      "Connection: Ab,X-Hop-Tenn\r\nAb: 4\r\nX-Hop-Tenn: 5\r\n"
                      "X-Trace: 1\r\nX-A-Rather-Long-Custom-Field-Name: 2\r\nKeep-Alive: 5\r\n"
                      "TE: trailers\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\n"
                      "Upgrade: websocket\r\nX-Forwarded-For: 10.1.2.3\r\nX-End-To-End: 3\r\n");
    ASSERT_EQ(200, r.status);
    const std::string& seen = r.body;  // the header section the upstream got
    for (const char* gone : {"\r\nX-Trace:", "\r\nX-A-Rather-Long-Custom-Field-Name:", "\r\nKeep-Alive:",
                             "\r\nTE:", "\r\nProxy-Authorization:", "\r\nProxy-Connection:", "\r\nUpgrade:",
                             "\r\nConnection:", "\r\nAb:", "\r\nX-Hop-Tenn:"})
        EXPECT_EQ(std::string::npos, seen.find(gone)) << gone << " was forwarded:\n" << seen;
    EXPECT_NE(std::string::npos, seen.find("\r\nX-End-To-End: 3\r\n")) << seen;
    EXPECT_NE(std::string::npos, seen.find("\r\nVia: 1.1 zan\r\n")) << seen;
    EXPECT_NE(std::string::npos, seen.find("\r\nX-Forwarded-For: 10.1.2.3, 127.0.0.1\r\n")) << seen;
    EXPECT_NE(std::string::npos, seen.find("\r\nX-Forwarded-Host: front.example\r\n")) << seen;
    EXPECT_NE(std::string::npos, seen.find("\r\nX-Forwarded-Proto: http\r\n")) << seen;

    r = get(c.get(), "/hop");  // and on the way back
    ASSERT_EQ(200, r.status);
    EXPECT_EQ("ok", r.body);
    bool found;
    r.field("X-Resp-Trace", &found);
    EXPECT_FALSE(found) << r.head;
    r.field("Keep-Alive", &found);
    EXPECT_FALSE(found) << r.head;
    EXPECT_EQ("1", r.field("X-Kept"));
    EXPECT_EQ("1.1 zan", r.field("Via"));
    EXPECT_EQ("zan", r.field("Server"));
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, HeadAnd204And304Relay)
{
    ASSERT_TRUE(start());
    zt::Sock c = connect();
    zt::Reply r = get(c.get(), "/n/5000", "HEAD");
    EXPECT_EQ(200, r.status);
    EXPECT_EQ(5000, r.length);  // the length of what GET would send
    EXPECT_EQ("", r.body);
    r = get(c.get(), "/204");
    EXPECT_EQ(204, r.status);
    EXPECT_EQ("1", r.field("X-Kept"));
    r = get(c.get(), "/304");
    EXPECT_EQ(304, r.status);
    EXPECT_EQ("\"x\"", r.field("ETag"));
    r = get(c.get(), "/c/100", "HEAD");
    EXPECT_EQ(200, r.status);
    EXPECT_TRUE(r.chunked);  // as GET would be, not "Content-Length: 0"
    EXPECT_EQ(-1, r.length);
    // Nothing extra was sent: the connection still frames correctly.
    r = get(c.get(), "/n/100");
    EXPECT_EQ(200, r.status);
    EXPECT_EQ(zt::pattern(100), r.body);
    c.reset();
    EXPECT_EQ("", stop_and_check());
}

TEST_F(HttpProxyTest, NoDescriptorGrowthOverTenThousandRequests)
{
    ASSERT_TRUE(start());
    pid_t worker = find_by_name("zan-worker-0");
    ASSERT_GT(worker, 0);
    auto batch = [&](int conns, int per_conn) {
        int ok = 0;
        for (int i = 0; i < conns; ++i) {
            zt::Sock c = connect();
            for (int j = 0; j < per_conn; ++j) {
                zt::Reply r = get(c.get(), "/n/64");
                if (r.status != 200 || !r.complete)
                    return ok;
                ++ok;
            }
        }
        return ok;
    };
    ASSERT_EQ(100, batch(2, 50));  // warm up: the upstream pool exists
    int fds = zt::open_fds(worker);
    ASSERT_GT(fds, 0);
    long long deadline = zt::now_ms() + zt::scaled(20000);
    EXPECT_EQ(10000, batch(20, 500));
    EXPECT_LT(zt::now_ms(), deadline);
    EXPECT_TRUE(eventually([&] { return zt::open_fds(worker) <= fds; })) << zt::open_fds(worker) << " > " << fds;
    EXPECT_EQ("", stop_and_check());
}

// The program of zan_http_proxy(3)'s EXAMPLES relays as zan-httpd does.
TEST(HttpProxyExample, Relays)
{
    zt::ProxyUpstream up;
    zt::Proc p;
    int port = zt::start_server(&p, {zt::build_dir() + "/t/example_http_proxy", "127.0.0.1",
                                     std::to_string(up.port()), "0"});
    ASSERT_GT(port, 0) << p.output();
    zt::Sock c(zt::connect_local(port));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "GET /c/100000 HTTP/1.1\r\nHost: a\r\n\r\n"));
    zt::Reply r = zt::read_reply(c.get());
    EXPECT_EQ(200, r.status);
    EXPECT_EQ(zt::pattern(100000), r.body);
    EXPECT_EQ("1.1 zan", r.field("Via"));
    c.reset();
    EXPECT_EQ("", zt::stop_and_check(&p));
}

}  // namespace
