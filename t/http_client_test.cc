// HttpClient against real peers on 127.0.0.1: zan-httpd and zan-baseline,
// and small in-test servers (one thread per connection, blocking
// sockets) for the responses a real server does not send.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "t/loop_helpers.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/event_loop.h"
#include "zan/http_client.h"

using zan::HttpClient;
using zan::HttpClientError;
using zan::HttpClientOptions;
using zan::HttpClientRequest;
using zan::HttpClientResponse;

namespace {

using zt::run_until;

int count_fds() { return zt::open_fds(getpid()); }


// One request read off a blocking socket: its method and body; method
// empty at end of input.
struct SeenRequest {
    std::string method, head, body;
};

SeenRequest read_request(int fd, std::string& buf)
{
    SeenRequest r;
    char tmp[65536];
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return r;
        buf.append(tmp, static_cast<size_t>(n));
    }
    r.head = buf.substr(0, end + 4);
    r.method = r.head.substr(0, r.head.find(' '));
    size_t len = 0, at = r.head.find("Content-Length: ");
    if (at != std::string::npos) len = std::stoul(r.head.substr(at + 16));
    buf.erase(0, end + 4);
    while (buf.size() < len) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return SeenRequest();
        buf.append(tmp, static_cast<size_t>(n));
    }
    r.body = buf.substr(0, len);
    buf.erase(0, len);
    return r;
}

void send_all(int fd, const std::string& s)
{
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

std::string ok(const std::string& body) { return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body; }

// A listener on 127.0.0.1 whose every connection runs handler(fd, index)
// on its own thread; counts accepted and concurrent connections. The
// destructor stops accepting, shuts every connection down and joins.
class MiniServer {
public:
    using Handler = std::function<void(int fd, int index, const std::atomic<bool>& stop)>;
    explicit MiniServer(Handler h) : handler_(std::move(h))
    {
        lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = {};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        listen(lfd_, 128);
        socklen_t len = sizeof a;
        getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~MiniServer()
    {
        stop_ = true;
        acceptor_.join();
        {
            std::lock_guard<std::mutex> g(mu_);
            for (int fd : fds_) shutdown(fd, SHUT_RDWR);
        }
        for (std::thread& t : threads_) t.join();
        for (int fd : fds_) close(fd);
        close(lfd_);
    }
    uint16_t port() const { return port_; }
    int accepted() const { return accepted_; }
    int max_concurrent() const { return max_current_; }
    int current() const { return current_; }

private:
    void accept_loop()
    {
        while (!stop_) {
            pollfd p = {lfd_, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            int idx = accepted_++;
            int cur = ++current_;
            for (int m = max_current_; cur > m && !max_current_.compare_exchange_weak(m, cur);) {}
            std::lock_guard<std::mutex> g(mu_);
            fds_.push_back(fd);
            threads_.emplace_back([this, fd, idx] {
                handler_(fd, idx, stop_);
                --current_;
                std::lock_guard<std::mutex> g2(mu_);
                shutdown(fd, SHUT_RDWR);
            });
        }
    }

    Handler handler_;
    int lfd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0}, current_{0}, max_current_{0};
    std::mutex mu_;
    std::vector<int> fds_;  // closed by the destructor only (no fd reuse races)
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

// Holds the connection open until the peer closes it or the test ends.
void hold(int fd, const std::atomic<bool>& stop)
{
    char tmp[4096];
    while (!stop) {
        pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        if (recv(fd, tmp, sizeof tmp, 0) <= 0) return;
    }
}

// Answers by target: /echo "host? METHOD BODY"; /delay the same after
// 20 ms; /chunked, /close (close-delimited), /silent (never answers),
// /slow (half a body, then nothing), /cut (half a body, then close),
// /cutchunk, /badstatus; /stale answers the first request of its
// connection and closes at the second without answering.
void script(int fd, int, const std::atomic<bool>& stop)
{
    std::string buf;
    for (int n = 0;; ++n) {
        SeenRequest r = read_request(fd, buf);
        if (r.method.empty()) return;
        size_t sp = r.head.find(' ');
        std::string target = r.head.substr(sp + 1, r.head.find(' ', sp + 1) - sp - 1);
        std::string host = r.head.find("\r\nHost: 127.0.0.1:") != std::string::npos ? "host " : "nohost ";
        if (target == "/echo") {
            send_all(fd, ok(host + r.method + " " + r.body));
        } else if (target == "/delay") {
            usleep(20000);
            send_all(fd, ok(host + r.method + " " + r.body));
        } else if (target == "/chunked") {
            send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
                         "0\r\nX-T: 1\r\n\r\n");
        } else if (target == "/close") {
            send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
            return;
        } else if (target == "/silent") {
            hold(fd, stop);
            return;
        } else if (target == "/slow" || target == "/cut") {
            send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            if (target == "/slow") hold(fd, stop);
            return;
        } else if (target == "/cutchunk") {
            send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            return;
        } else if (target == "/badstatus") {
            send_all(fd, "HTPT/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
        } else if (target == "/stale") {
            if (n > 0) return;
            send_all(fd, ok("fresh"));
        }
    }
}

struct Result {
    bool done = false;
    HttpClientResponse res;
};

HttpClient::DoneCallback into(Result* r)
{
    return [r](HttpClientResponse& res) {
        r->done = true;
        r->res = std::move(res);
    };
}

HttpClientRequest req(const std::string& method, const std::string& target, const std::string& body = "")
{
    HttpClientRequest q;
    q.method = method;
    q.target = target;
    q.body = body;
    return q;
}

}  // namespace

TEST(HttpClient, GetPostRoundTripOnOneConnection)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClient c(loop);
    Result a, b;
    c.request("127.0.0.1", srv.port(), req("GET", "/echo"), into(&a));
    ASSERT_TRUE(run_until(loop, [&] { return a.done; }));
    c.request("127.0.0.1", srv.port(), req("POST", "/echo", "payload"), into(&b));
    ASSERT_TRUE(run_until(loop, [&] { return b.done; }));
    ASSERT_TRUE(a.res.ok()) << a.res.error_text;
    EXPECT_EQ(200, a.res.status);
    EXPECT_EQ("OK", a.res.reason);
    EXPECT_EQ("host GET ", a.res.body);
    ASSERT_TRUE(b.res.ok()) << b.res.error_text;
    EXPECT_EQ("host POST payload", b.res.body);
    ASSERT_NE(nullptr, b.res.header("content-length"));
    EXPECT_EQ(1, srv.accepted());  // the second request reused the connection
    EXPECT_EQ(1u, c.idle_connections());
    EXPECT_EQ(0u, c.pending());
}

TEST(HttpClient, ZanBaselineKeepAlive)
{
    zt::Proc p;
    int port = zt::start_server(&p, {zt::tool("zan-baseline"), "--http", "--port", "0"});
    ASSERT_GT(port, 0);
    {
        zan::EventLoop loop;
        HttpClient c(loop);
        for (int i = 0; i < 20; ++i) {
            Result r;
            c.request("127.0.0.1", static_cast<uint16_t>(port), req("GET", "/"), into(&r));
            ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
            ASSERT_TRUE(r.res.ok()) << r.res.error_text;
            EXPECT_EQ(200, r.res.status);
            EXPECT_EQ(1u, c.connections());
        }
    }
    EXPECT_EQ("", zt::stop_and_check(&p));
}

TEST(HttpClient, HeadThenGetOnOneConnection)
{
    zt::Proc p;
    int port = zt::start_httpd(&p);
    ASSERT_GT(port, 0);
    {
        zan::EventLoop loop;
        HttpClient c(loop);
        Result h, g;
        c.request("127.0.0.1", static_cast<uint16_t>(port), req("HEAD", "/"), into(&h));
        c.request("127.0.0.1", static_cast<uint16_t>(port), req("GET", "/"), into(&g));
        ASSERT_TRUE(run_until(loop, [&] { return h.done && g.done; }));
        ASSERT_TRUE(h.res.ok()) << h.res.error_text;
        ASSERT_TRUE(g.res.ok()) << g.res.error_text;
        ASSERT_NE(nullptr, h.res.header("Content-Length"));
        EXPECT_EQ("6", *h.res.header("Content-Length"));
        EXPECT_EQ("", h.res.body);  // a HEAD response has no body, whatever it says
        EXPECT_EQ("hello\n", g.res.body);
        Result again;
        c.request("127.0.0.1", static_cast<uint16_t>(port), req("GET", "/"), into(&again));
        ASSERT_TRUE(run_until(loop, [&] { return again.done; }));
        EXPECT_EQ("hello\n", again.res.body);
        EXPECT_LE(c.connections(), 2u);
    }
    EXPECT_EQ("", zt::stop_and_check(&p));
}

TEST(HttpClient, ChunkedAndCloseDelimitedBodies)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClient c(loop);
    Result a, b;
    c.request("127.0.0.1", srv.port(), req("GET", "/chunked"), into(&a));
    c.request("127.0.0.1", srv.port(), req("GET", "/close"), into(&b));
    ASSERT_TRUE(run_until(loop, [&] { return a.done && b.done; }));
    ASSERT_TRUE(a.res.ok()) << a.res.error_text;
    EXPECT_EQ("hello world", a.res.body);
    ASSERT_EQ(1u, a.res.trailers.size());
    EXPECT_EQ("X-T", a.res.trailers[0].name);
    ASSERT_TRUE(b.res.ok()) << b.res.error_text;
    EXPECT_EQ("until the end", b.res.body);
    EXPECT_EQ(1u, c.connections());  // the close-delimited one is gone
}

TEST(HttpClient, PoolLimitUnderFiftyConcurrentRequests)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.max_connections = 4;
    o.max_idle = 4;
    HttpClient c(loop, o);
    std::vector<Result> r(50);
    for (int i = 0; i < 50; ++i)
        c.request("127.0.0.1", srv.port(), req("POST", "/delay", std::to_string(i)), into(&r[i]));
    EXPECT_LE(c.connections(), 4u);
    ASSERT_TRUE(run_until(loop, [&] {
        for (Result& x : r)
            if (!x.done) return false;
        return true;
    }, 20000));
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(r[i].res.ok()) << r[i].res.error_text;
        EXPECT_EQ("host POST " + std::to_string(i), r[i].res.body);
    }
    EXPECT_EQ(4, srv.accepted());
    EXPECT_LE(srv.max_concurrent(), 4);
}

TEST(HttpClient, IdleCap)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.max_connections = 6;
    o.max_idle = 2;
    HttpClient c(loop, o);
    std::vector<Result> r(6);
    for (Result& x : r) c.request("127.0.0.1", srv.port(), req("GET", "/delay"), into(&x));
    EXPECT_EQ(6u, c.connections());
    ASSERT_TRUE(run_until(loop, [&] {
        for (Result& x : r)
            if (!x.done) return false;
        return true;
    }));
    for (Result& x : r) EXPECT_TRUE(x.res.ok()) << x.res.error_text;
    EXPECT_EQ(6, srv.accepted());
    EXPECT_EQ(2u, c.connections());
    EXPECT_EQ(2u, c.idle_connections());
}

TEST(HttpClient, StaleConnectionRetriedOnceForGetOnly)
{
    for (const char* method : {"GET", "POST"}) {
        SCOPED_TRACE(method);
        MiniServer srv(script);
        zan::EventLoop loop;
        HttpClient c(loop);
        Result a, b;
        c.request("127.0.0.1", srv.port(), req(method, "/stale"), into(&a));
        ASSERT_TRUE(run_until(loop, [&] { return a.done; }));
        ASSERT_TRUE(a.res.ok()) << a.res.error_text;
        ASSERT_EQ(1u, c.idle_connections());
        c.request("127.0.0.1", srv.port(), req(method, "/stale"), into(&b));
        ASSERT_TRUE(run_until(loop, [&] { return b.done; }));
        if (std::string(method) == "GET") {
            ASSERT_TRUE(b.res.ok()) << b.res.error_text;
            EXPECT_EQ("fresh", b.res.body);
            EXPECT_EQ(2, srv.accepted());
        } else {
            EXPECT_EQ(HttpClientError::kClosed, b.res.error);
            EXPECT_FALSE(b.res.error_text.empty());
            EXPECT_EQ(1, srv.accepted());
        }
    }
}

TEST(HttpClient, ConnectRefused)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(0, bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a));
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    close(s);  // nothing listens there now
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r;
    c.request("127.0.0.1", ntohs(a.sin_port), req("GET", "/"), into(&r));
    EXPECT_FALSE(r.done);  // never from request() itself
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    EXPECT_EQ(HttpClientError::kConnect, r.res.error);
    EXPECT_NE(std::string::npos, r.res.error_text.find("refused")) << r.res.error_text;
    EXPECT_EQ(0u, c.connections());
}

TEST(HttpClient, ConnectTimeout)
{
    // A listener whose accept queue is full and never drained: the
    // kernel drops further SYNs, so a connect neither succeeds nor fails.
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(0, bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a));
    ASSERT_EQ(0, listen(l, 0));
    socklen_t len = sizeof a;
    getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    std::vector<zt::Sock> fill;
    for (int i = 0; i < 4; ++i) fill.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    for (zt::Sock& s : fill) connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    usleep(50000);  // let the handshakes that can complete do so
    zan::EventLoop loop;
    HttpClientOptions o;
    o.connect_timeout_ms = 200;
    HttpClient c(loop, o);
    Result r;
    c.request("127.0.0.1", ntohs(a.sin_port), req("GET", "/"), into(&r));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    EXPECT_EQ(HttpClientError::kConnectTimeout, r.res.error) << r.res.error_text;
    EXPECT_EQ(0u, c.connections());
    close(l);
}

TEST(HttpClient, UnknownHostFailsFromTheLoop)
{
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r;
    c.request("no-such-host.invalid", 80, req("GET", "/"), into(&r));
    EXPECT_FALSE(r.done);
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    EXPECT_EQ(HttpClientError::kConnect, r.res.error);
}

TEST(HttpClient, ResponseHeaderTimeout)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.header_timeout_ms = 200;
    HttpClient c(loop, o);
    Result r;
    long long t0 = zt::now_ms();
    c.request("127.0.0.1", srv.port(), req("GET", "/silent"), into(&r));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    long long took = zt::now_ms() - t0;
    EXPECT_EQ(HttpClientError::kHeaderTimeout, r.res.error) << r.res.error_text;
    EXPECT_GE(took, 190);
    EXPECT_LT(took, zt::scaled(2000));
    EXPECT_EQ(0u, c.connections());  // a timed-out connection is not reused
}

TEST(HttpClient, TotalTimeoutWithHalfABody)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.header_timeout_ms = 100;  // the header section arrives: not this one
    o.total_timeout_ms = 300;
    HttpClient c(loop, o);
    Result r;
    c.request("127.0.0.1", srv.port(), req("GET", "/slow"), into(&r));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    EXPECT_EQ(HttpClientError::kTotalTimeout, r.res.error) << r.res.error_text;
    EXPECT_TRUE(r.res.body.empty());
}

TEST(HttpClient, ReadTimeoutBetweenBodyBytes)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.read_timeout_ms = 200;  // half a body, then silence
    HttpClient c(loop, o);
    Result r;
    std::string streamed;
    long long t0 = zt::now_ms();
    c.request("127.0.0.1", srv.port(), req("GET", "/slow"), into(&r),
              [&](std::string_view d) { streamed.append(d.data(), d.size()); });
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    long long took = zt::now_ms() - t0;
    EXPECT_EQ(HttpClientError::kReadTimeout, r.res.error) << r.res.error_text;
    EXPECT_EQ("0123456789", streamed);
    EXPECT_GE(took, 190);
    EXPECT_LT(took, zt::scaled(2000));
    EXPECT_EQ(0u, c.connections());
}

TEST(HttpClient, HeadCallbackBeforeTheBody)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r;
    std::string order;
    int status = 0;
    bool has_te = false;
    c.request("127.0.0.1", srv.port(), req("GET", "/chunked"), into(&r),
              [&](std::string_view d) { order += "body(" + std::string(d) + ")"; },
              [&](HttpClientResponse& h) {
                  order += "head;";
                  status = h.status;
                  has_te = h.header("Transfer-Encoding") != nullptr;
              });
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_EQ(200, status);
    EXPECT_TRUE(has_te);
    EXPECT_EQ(0u, order.find("head;body("));
    EXPECT_NE(std::string::npos, order.find("hello"));
    EXPECT_TRUE(r.res.headers.empty());  // moved to the head callback
    EXPECT_EQ(1u, r.res.trailers.size());
}

TEST(HttpClient, IdleTimeoutClosesPooledConnections)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.idle_timeout_ms = 100;
    HttpClient c(loop, o);
    Result r;
    c.request("127.0.0.1", srv.port(), req("GET", "/echo"), into(&r));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_EQ(1u, c.idle_connections());
    EXPECT_TRUE(run_until(loop, [&] { return c.connections() == 0; }, 2000));
    EXPECT_TRUE(run_until(loop, [&] { return srv.current() == 0; }, 2000));  // the server saw it close
}

TEST(HttpClient, SetReadingPausesAStreamedBody)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.read_timeout_ms = 100;  // does not run while reading is stopped
    HttpClient c(loop, o);
    Result r;
    HttpClient::RequestId id = 0;
    bool headed = false;
    // Half a body, then silence: the read timeout runs only while reading.
    id = c.request("127.0.0.1", srv.port(), req("GET", "/slow"), into(&r), [](std::string_view) {},
                   [&](HttpClientResponse&) {
                       headed = true;
                       c.set_reading(id, false);
                   });
    ASSERT_TRUE(run_until(loop, [&] { return headed || r.done; }));
    long long until = zt::now_ms() + 300;
    run_until(loop, [&] { return zt::now_ms() >= until; });
    EXPECT_FALSE(r.done);  // paused: no read timeout
    EXPECT_TRUE(c.set_reading(id, true));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    EXPECT_EQ(HttpClientError::kReadTimeout, r.res.error) << r.res.error_text;
    EXPECT_FALSE(c.set_reading(id, true));  // finished: unknown
}

// A body sink that pauses reading on the last piece of a response (the
// whole answer came in one read): the connection goes back to the pool
// reading again, so the next request on it is answered.
TEST(HttpClient, AConnectionPausedAtItsLastByteIsReusable)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.max_connections = 1;
    HttpClient c(loop, o);
    Result a, b;
    HttpClient::RequestId id = 0;
    id = c.request("127.0.0.1", srv.port(), req("GET", "/chunked"), into(&a),
                   [&](std::string_view) { c.set_reading(id, false); });
    ASSERT_TRUE(run_until(loop, [&] { return a.done; }));
    ASSERT_TRUE(a.res.ok()) << a.res.error_text;
    EXPECT_EQ(1u, c.idle_connections());
    c.request("127.0.0.1", srv.port(), req("GET", "/echo"), into(&b));
    ASSERT_TRUE(run_until(loop, [&] { return b.done; }, 3000));
    EXPECT_TRUE(b.res.ok()) << b.res.error_text;
    EXPECT_EQ(1, srv.accepted());
}

TEST(HttpClient, TruncatedBodiesAreErrors)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClient c(loop);
    Result a, b;
    c.request("127.0.0.1", srv.port(), req("GET", "/cut"), into(&a));
    c.request("127.0.0.1", srv.port(), req("GET", "/cutchunk"), into(&b));
    ASSERT_TRUE(run_until(loop, [&] { return a.done && b.done; }));
    EXPECT_EQ(HttpClientError::kClosed, a.res.error) << a.res.error_text;
    EXPECT_EQ(HttpClientError::kClosed, b.res.error) << b.res.error_text;
    EXPECT_FALSE(a.res.ok());
    EXPECT_TRUE(a.res.body.empty());
    // Streamed: the bytes that came are passed on, the end is an error.
    Result s;
    std::string streamed;
    c.request("127.0.0.1", srv.port(), req("GET", "/cut"), into(&s),
              [&](std::string_view d) { streamed.append(d.data(), d.size()); });
    ASSERT_TRUE(run_until(loop, [&] { return s.done; }));
    EXPECT_EQ(HttpClientError::kClosed, s.res.error) << s.res.error_text;
    EXPECT_EQ("0123456789", streamed);
}

TEST(HttpClient, BadStatusLine)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r;
    c.request("127.0.0.1", srv.port(), req("GET", "/badstatus"), into(&r));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    EXPECT_EQ(HttpClientError::kBadResponse, r.res.error);
    EXPECT_NE(std::string::npos, r.res.error_text.find("bad response")) << r.res.error_text;
    EXPECT_EQ(0u, c.connections());
}

TEST(HttpClient, CancelClosesTheConnection)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r, queued;
    HttpClient::RequestId id = c.request("127.0.0.1", srv.port(), req("GET", "/silent"), into(&r));
    ASSERT_TRUE(run_until(loop, [&] { return srv.current() == 1; }));
    EXPECT_TRUE(c.cancel(id));
    EXPECT_FALSE(c.cancel(id));
    EXPECT_EQ(0u, c.connections());
    // The server sees the connection end.
    ASSERT_TRUE(run_until(loop, [&] { return srv.current() == 0; }));
    // A queued request can be cancelled too.
    HttpClientOptions o;
    o.max_connections = 1;
    HttpClient d(loop, o);
    d.request("127.0.0.1", srv.port(), req("GET", "/echo"), into(&r));
    HttpClient::RequestId q = d.request("127.0.0.1", srv.port(), req("GET", "/echo"), into(&queued));
    EXPECT_TRUE(d.cancel(q));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    loop.run_once(50);
    EXPECT_TRUE(r.res.ok());
    EXPECT_FALSE(queued.done);
}

TEST(HttpClient, DestroyedWithRequestsInFlight)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    int before = count_fds();
    int calls = 0;
    {
        HttpClient c(loop);
        for (int i = 0; i < 5; ++i)
            c.request("127.0.0.1", srv.port(), req("GET", "/silent"), [&](HttpClientResponse&) { ++calls; });
        ASSERT_TRUE(run_until(loop, [&] { return srv.current() == 5; }));
        // Its failure is deferred to the loop: it must not come now.
        c.request("no-such-host.invalid", 80, req("GET", "/"), [&](HttpClientResponse&) { ++calls; });
    }
    for (int i = 0; i < 10; ++i) loop.run_once(10);
    EXPECT_EQ(0, calls);
    ASSERT_TRUE(run_until(loop, [&] { return srv.current() == 0; }));
    EXPECT_EQ(before, count_fds() - srv.accepted());  // the server's own fds stay until it goes
}

TEST(HttpClient, CallbackMayDestroyTheClientOrRequestAgain)
{
    MiniServer srv(script);
    zan::EventLoop loop;
    auto c = std::make_unique<HttpClient>(loop);
    Result second;
    bool first = false;
    c->request("127.0.0.1", srv.port(), req("GET", "/echo"), [&](HttpClientResponse& res) {
        first = res.ok();
        c->request("127.0.0.1", srv.port(), req("GET", "/echo"), [&](HttpClientResponse& r2) {
            second.done = true;
            second.res = std::move(r2);
            c.reset();
        });
    });
    ASSERT_TRUE(run_until(loop, [&] { return second.done; }));
    EXPECT_TRUE(first);
    EXPECT_TRUE(second.res.ok());
    EXPECT_EQ(nullptr, c.get());
    loop.run_once(10);
}

TEST(HttpClient, ThousandRequestsNoFdGrowth)
{
    zt::Proc p;
    int port = zt::start_server(&p, {zt::tool("zan-baseline"), "--http", "--port", "0"});
    ASSERT_GT(port, 0);
    zan::EventLoop loop;
    int before = count_fds();
    {
        HttpClientOptions o;
        o.max_connections = 8;
        o.max_idle = 2;
        HttpClient c(loop, o);
        int done = 0, good = 0;
        for (int i = 0; i < 1000; ++i) {
            HttpClientRequest q = req("GET", "/");
            if (i % 3 == 0) q.headers.push_back({"Connection", "close"});
            c.request("127.0.0.1", static_cast<uint16_t>(port), std::move(q), [&](HttpClientResponse& res) {
                ++done;
                good += res.ok() && res.status == 200;
            });
        }
        ASSERT_TRUE(run_until(loop, [&] { return done == 1000; }, 30000));
        EXPECT_EQ(1000, good);
        EXPECT_LE(c.connections(), 2u);
        EXPECT_LE(count_fds(), before + 2);
    }
    EXPECT_EQ(before, count_fds());
    EXPECT_EQ("", zt::stop_and_check(&p));
}

TEST(HttpClient, StreamsTwentyMebibytesFromZanHttpd)
{
    zt::TempDir dir;
    std::string data(20u << 20, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
    ASSERT_TRUE(zt::write_file(dir.path + "/big.bin", data));
    zt::Proc p;
    int port = zt::start_httpd(&p, {"--root", dir.path});
    ASSERT_GT(port, 0);
    {
        zan::EventLoop loop;
        HttpClientOptions o;
        o.max_body = 1u << 20;  // a streamed body is not held, so not limited
        HttpClient c(loop, o);
        size_t got = 0, bad = 0, chunks = 0, largest = 0;
        Result r;
        c.request("127.0.0.1", static_cast<uint16_t>(port), req("GET", "/big.bin"), into(&r),
                  [&](std::string_view chunk) {
                      for (size_t i = 0; i < chunk.size(); ++i)
                          if (got + i >= data.size() || chunk[i] != data[got + i]) ++bad;
                      got += chunk.size();
                      ++chunks;
                      largest = std::max(largest, chunk.size());
                  });
        ASSERT_TRUE(run_until(loop, [&] { return r.done; }, 30000));
        ASSERT_TRUE(r.res.ok()) << r.res.error_text;
        EXPECT_EQ(200, r.res.status);
        EXPECT_EQ(data.size(), got);
        EXPECT_EQ(0u, bad);
        EXPECT_TRUE(r.res.body.empty());
        EXPECT_GT(chunks, 1u);
        EXPECT_LT(largest, 4u << 20);  // never the whole body at once
    }
    EXPECT_EQ("", zt::stop_and_check(&p));
}

TEST(HttpClient, ExampleWorkersCallTheirBackend)
{
    zt::Proc back, front;
    int back_port = zt::start_httpd(&back);
    ASSERT_GT(back_port, 0);
    int front_port = zt::start_server(
        &front, {zt::build_dir() + "/t/example_http_client", "127.0.0.1", std::to_string(back_port), "0"});
    ASSERT_GT(front_port, 0) << front.output();
    zan::EventLoop loop;
    HttpClient c(loop);
    for (int i = 0; i < 5; ++i) {
        Result r;
        c.request("127.0.0.1", static_cast<uint16_t>(front_port), req("GET", "/"), into(&r));
        ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
        ASSERT_TRUE(r.res.ok()) << r.res.error_text;
        EXPECT_EQ(200, r.res.status);
        EXPECT_EQ("hello\n", r.res.body);
    }
    // The backend goes away: the Workers answer 502 for it.
    ASSERT_EQ("", zt::stop_and_check(&back));
    Result r;
    c.request("127.0.0.1", static_cast<uint16_t>(front_port), req("GET", "/"), into(&r));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_EQ(502, r.res.status);
    EXPECT_EQ("", zt::stop_and_check(&front));
}
