// HttpClient with streamed request bodies (write_body(), end_body(),
// body_buffered(), on_body_drain()) against a small in-test server: one
// thread per connection, blocking reads, requests parsed by zan::HttpParser
// in request mode with a body sink, so the chunked coding the client
// writes is decoded by the same parser the server side uses.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "t/loop_helpers.h"
#include "t/proc_helpers.h"
#include "t/test_env.h"
#include "zan/event_loop.h"
#include "zan/http_client.h"
#include "zan/http_parser.h"

using zan::HttpClient;
using zan::HttpClientError;
using zan::HttpClientOptions;
using zan::HttpClientRequest;
using zan::HttpClientResponse;
using Id = zan::HttpClient::RequestId;

namespace {

using zt::fnv;
using zt::kFnvBasis;
using zt::run_for;
using zt::run_until;

int count_fds() { return zt::open_fds(getpid()); }


std::string digest(size_t size, uint64_t hash)
{
    return std::to_string(size) + " " + std::to_string(hash);
}

// Bytes that differ from one offset to the next, so a lost, doubled or
// reordered piece shows in the hash.
std::string pattern(size_t n)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
    return s;
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

// What the server saw of one complete request.
struct Seen {
    std::string target;
    int te_count = 0, cl_count = 0;
    std::string te, cl;    // the last Transfer-Encoding / Content-Length value
    size_t body_size = 0;  // decoded
    uint64_t hash = kFnvBasis;
    std::string wire_body;  // the body as it came on the wire (its first bytes)
};

// A listener on 127.0.0.1; every connection is served on a thread of its
// own. By target: /sink answers "<size> <hash>" of the decoded body;
// /silent reads the request and never answers; /early answers 413 as
// soon as the header section is in and reads on; /gate stops reading
// once the header section is in until open_gate(); /stale answers the
// first request of its connection and closes at the header section of
// the second. A connection thread closes its socket when the peer does
// (so the test can count descriptors); the destructor stops and joins.
class StreamServer {
public:
    StreamServer()
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
    ~StreamServer()
    {
        stop_ = true;
        acceptor_.join();
        for (std::thread& t : threads_) t.join();
        close(lfd_);
    }
    uint16_t port() const { return port_; }
    int accepted() const { return accepted_; }
    int current() const { return current_; }
    int heads() const { return heads_; }  // header sections read
    void open_gate() { gate_ = true; }
    std::vector<Seen> seen()
    {
        std::lock_guard<std::mutex> g(mu_);
        return seen_;
    }

private:
    void accept_loop()
    {
        while (!stop_) {
            pollfd p = {lfd_, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            ++current_;  // first: accepted() == n && current() == 0 means all n are gone
            ++accepted_;
            threads_.emplace_back([this, fd] {
                serve(fd);
                close(fd);
                --current_;
            });
        }
    }

    // Waits for input; false when the test ends first.
    bool readable(int fd)
    {
        while (!stop_) {
            pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 20) > 0) return true;
        }
        return false;
    }

    void serve(int fd)
    {
        zan::HttpLimits lim;
        lim.max_body = SIZE_MAX;  // bodies go to the sink
        zan::HttpParser parser(lim, true, zan::HttpParser::kRequests);
        Seen cur;
        parser.set_body_sink([&cur](std::string_view d) {
            cur.body_size += d.size();
            cur.hash = fnv(cur.hash, d);
        });
        std::string in, raw;  // raw: the first bytes of the message, as sent
        bool head_seen = false, gated = false;
        char tmp[65536];
        for (int nth = 0;;) {
            while (gated && !gate_ && !stop_) poll(nullptr, 0, 10);
            if (!readable(fd)) return;
            ssize_t n = recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) return;
            in.assign(tmp, static_cast<size_t>(n));
            for (size_t off = 0; off < in.size();) {
                size_t took = parser.feed(in.data() + off, in.size() - off);
                if (raw.size() < kRawMax) raw.append(in, off, std::min(took, kRawMax - raw.size()));
                off += took;
                if (parser.state() == zan::HttpParser::kError) return;
                if (!head_seen && parser.headers_complete()) {
                    head_seen = true;
                    zan::HttpRequest& r = parser.request();
                    cur.target = r.target;
                    for (const zan::HttpHeader& h : r.headers) {
                        std::string name = h.name;
                        for (char& ch : name) ch = static_cast<char>(tolower(ch));
                        if (name == "transfer-encoding") ++cur.te_count, cur.te = h.value;
                        if (name == "content-length") ++cur.cl_count, cur.cl = h.value;
                    }
                    ++heads_;
                    if (cur.target == "/stale" && nth > 0) return;
                    if (cur.target == "/early")
                        send_all(fd, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
                    if (cur.target == "/gate") gated = true;
                }
                if (parser.state() != zan::HttpParser::kComplete) {
                    if (took == 0) return;
                    continue;
                }
                size_t head_end = raw.find("\r\n\r\n");
                if (head_end != std::string::npos) cur.wire_body = raw.substr(head_end + 4);
                {
                    std::lock_guard<std::mutex> g(mu_);  // before the answer the test waits for
                    seen_.push_back(cur);
                }
                std::string body = digest(cur.body_size, cur.hash);
                if (cur.target == "/stale") body = "fresh";
                std::string size = std::to_string(body.size());
                if (cur.target != "/silent" && cur.target != "/early")
                    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + size + "\r\n\r\n" + body);
                cur = Seen();
                raw.clear();
                parser.reset();
                head_seen = gated = false;
                ++nth;
            }
        }
    }

    static constexpr size_t kRawMax = 8192;
    int lfd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false}, gate_{false};
    std::atomic<int> accepted_{0}, current_{0}, heads_{0};
    std::mutex mu_;
    std::vector<Seen> seen_;
    std::vector<std::thread> threads_;  // touched by the acceptor, then the destructor
    std::thread acceptor_;
};

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

HttpClientRequest streamed(const std::string& method, const std::string& target,
                           long long content_length = -1)
{
    HttpClientRequest q;
    q.method = method;
    q.target = target;
    q.stream_body = true;
    q.content_length = content_length;
    return q;
}

// Writes data to request id as the client takes it: until body_buffered()
// reaches the high-water mark, then again from the drain callback; ends
// the body after the last byte. Pieces vary in size (empty ones too).
struct Uploader {
    HttpClient& c;
    Id id;
    const std::string& data;
    size_t high_water;
    size_t off = 0, pieces = 0;
    int drains = 0;
    bool ended = false, failed = false;

    void start()
    {
        c.on_body_drain(id, [this] {
            ++drains;
            if (c.body_buffered(id) != 0) failed = true;
            write();
        });
        write();
    }
    void write()
    {
        while (!ended && !failed) {
            if (off == data.size()) {
                ended = c.end_body(id);
                failed = !ended;
                return;
            }
            size_t n = std::min(data.size() - off, (++pieces * 7919) % 100000);  // 0 at times
            if (!c.write_body(id, std::string_view(data).substr(off, n))) {
                failed = true;
                return;
            }
            off += n;
            if (c.body_buffered(id) >= high_water) return;  // on_body_drain() resumes
        }
    }
};

}  // namespace

TEST(HttpClientStream, ChunkedTwentyMebibytes)
{
    StreamServer srv;
    const std::string data = pattern(20u << 20);
    zan::EventLoop loop;
    HttpClientOptions o;
    HttpClient c(loop, o);
    HttpClientRequest q = streamed("POST", "/sink");
    // The client writes its own framing fields.
    q.headers = {{"Content-Length", "5"}, {"Transfer-Encoding", "gzip"}, {"X-Test", "1"}};
    Result r;
    Id id = c.request("127.0.0.1", srv.port(), std::move(q), into(&r));
    Uploader up{c, id, data, o.body_high_water};
    up.start();
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }, 60000));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_FALSE(up.failed);
    EXPECT_TRUE(up.ended);
    EXPECT_GT(up.drains, 0);  // 20 MiB do not fit in the socket buffers
    EXPECT_EQ(200, r.res.status);
    EXPECT_EQ(digest(data.size(), fnv(kFnvBasis, data)), r.res.body);
    std::vector<Seen> seen = srv.seen();
    ASSERT_EQ(1u, seen.size());
    EXPECT_EQ(1, seen[0].te_count);
    EXPECT_EQ("chunked", seen[0].te);
    EXPECT_EQ(0, seen[0].cl_count);
    EXPECT_EQ(data.size(), seen[0].body_size);
    // The body was all sent: the connection is kept for the next request.
    EXPECT_EQ(1u, c.idle_connections());
    EXPECT_FALSE(c.write_body(id, "x"));
    EXPECT_EQ(0u, c.body_buffered(id));
}

TEST(HttpClientStream, ContentLengthUploadThenReuse)
{
    StreamServer srv;
    const std::string data = pattern(3u << 20);
    zan::EventLoop loop;
    HttpClientOptions o;
    o.body_high_water = 64u << 10;
    HttpClient c(loop, o);
    Result r;
    long long length = static_cast<long long>(data.size());
    Id id = c.request("127.0.0.1", srv.port(), streamed("PUT", "/sink", length), into(&r));
    Uploader up{c, id, data, o.body_high_water};
    up.start();
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }, 30000));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_FALSE(up.failed);
    EXPECT_EQ(digest(data.size(), fnv(kFnvBasis, data)), r.res.body);
    // An empty streamed body, then a whole one, on the same connection.
    Result e, w;
    Id eid = c.request("127.0.0.1", srv.port(), streamed("POST", "/sink", 0), into(&e));
    EXPECT_TRUE(c.end_body(eid));
    ASSERT_TRUE(run_until(loop, [&] { return e.done; }));
    ASSERT_TRUE(e.res.ok()) << e.res.error_text;
    EXPECT_EQ(digest(0, kFnvBasis), e.res.body);
    HttpClientRequest whole;
    whole.method = "POST";
    whole.target = "/sink";
    whole.body = "abc";
    c.request("127.0.0.1", srv.port(), whole, into(&w));
    ASSERT_TRUE(run_until(loop, [&] { return w.done; }));
    ASSERT_TRUE(w.res.ok()) << w.res.error_text;
    EXPECT_EQ(digest(3, fnv(kFnvBasis, "abc")), w.res.body);
    EXPECT_EQ(1, srv.accepted());
    std::vector<Seen> seen = srv.seen();
    ASSERT_EQ(3u, seen.size());
    EXPECT_EQ(std::to_string(data.size()), seen[0].cl);
    EXPECT_EQ(0, seen[0].te_count);
    EXPECT_EQ("0", seen[1].cl);
}

// Framing: an empty write sends nothing (a chunk of size 0 would end the
// body), bytes written before and after the connection is up keep their
// order, end_body() writes the last chunk.
TEST(HttpClientStream, ChunkFraming)
{
    StreamServer srv;
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r;
    Id id = c.request("127.0.0.1", srv.port(), streamed("POST", "/sink"), into(&r));
    EXPECT_TRUE(c.write_body(id, ""));
    EXPECT_TRUE(c.write_body(id, "abc"));
    EXPECT_EQ(3u, c.body_buffered(id));
    ASSERT_TRUE(run_until(loop, [&] { return srv.heads() == 1; }));
    EXPECT_TRUE(run_until(loop, [&] { return c.body_buffered(id) == 0; }));
    EXPECT_TRUE(c.write_body(id, ""));
    EXPECT_TRUE(c.write_body(id, std::string(20, 'z')));
    EXPECT_TRUE(c.end_body(id));
    EXPECT_FALSE(c.end_body(id));
    EXPECT_FALSE(c.write_body(id, "late"));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    std::vector<Seen> seen = srv.seen();
    ASSERT_EQ(1u, seen.size());
    EXPECT_EQ("3\r\nabc\r\n14\r\n" + std::string(20, 'z') + "\r\n0\r\n\r\n", seen[0].wire_body);
}

// A request waiting for a connection keeps what is written to it, and is
// told to resume once those bytes are out.
TEST(HttpClientStream, WaitingForAPoolSlotKeepsItsBytes)
{
    StreamServer srv;
    zan::EventLoop loop;
    HttpClientOptions o;
    o.max_connections = 1;
    HttpClient c(loop, o);
    Result a, b;
    Id ida = c.request("127.0.0.1", srv.port(), streamed("POST", "/sink"), into(&a));
    Id idb = c.request("127.0.0.1", srv.port(), streamed("POST", "/sink"), into(&b));
    const std::string data = pattern(300u << 10);  // over the mark
    int drains = 0;
    size_t buffered_at_drain = 1;
    EXPECT_TRUE(c.on_body_drain(idb, [&] {
        ++drains;
        buffered_at_drain = c.body_buffered(idb);
    }));
    for (size_t off = 0; off < data.size(); off += 10000)
        ASSERT_TRUE(c.write_body(idb, std::string_view(data).substr(off, 10000)));
    EXPECT_EQ(data.size(), c.body_buffered(idb));
    ASSERT_TRUE(c.write_body(ida, "first"));
    ASSERT_TRUE(run_until(loop, [&] { return srv.heads() == 1; }));
    run_for(loop, 50);
    EXPECT_EQ(1, srv.heads());  // b waits: one connection only
    EXPECT_EQ(1u, c.connections());
    EXPECT_EQ(2u, c.pending());
    EXPECT_EQ(data.size(), c.body_buffered(idb));
    EXPECT_EQ(0, drains);
    ASSERT_TRUE(c.end_body(ida));
    ASSERT_TRUE(run_until(loop, [&] { return a.done && drains > 0; }));
    ASSERT_TRUE(a.res.ok()) << a.res.error_text;
    EXPECT_EQ(digest(5, fnv(kFnvBasis, "first")), a.res.body);
    EXPECT_EQ(1, drains);
    EXPECT_EQ(0u, buffered_at_drain);
    ASSERT_TRUE(c.write_body(idb, "tail"));
    ASSERT_TRUE(c.end_body(idb));
    ASSERT_TRUE(run_until(loop, [&] { return b.done; }));
    ASSERT_TRUE(b.res.ok()) << b.res.error_text;
    EXPECT_EQ(digest(data.size() + 4, fnv(fnv(kFnvBasis, data), "tail")), b.res.body);
    EXPECT_EQ(1, srv.accepted());
}

// Back-pressure: against a server that does not read, body_buffered()
// climbs to the mark and stays; once it reads, the drain callback runs.
TEST(HttpClientStream, DrainCallbackAfterHighWater)
{
    StreamServer srv;
    zan::EventLoop loop;
    HttpClientOptions o;
    HttpClient c(loop, o);
    Result r;
    Id id = c.request("127.0.0.1", srv.port(), streamed("POST", "/gate"), into(&r));
    int drains = 0;
    size_t buffered_at_drain = 1;
    c.on_body_drain(id, [&] {
        ++drains;
        buffered_at_drain = c.body_buffered(id);
    });
    ASSERT_TRUE(run_until(loop, [&] { return srv.heads() == 1; }));  // connected, head read
    // The socket buffers fill first, then the client's.
    const std::string piece = pattern(64u << 10);
    uint64_t hash = kFnvBasis;
    size_t written = 0;
    while (c.body_buffered(id) < o.body_high_water && written < (256u << 20)) {
        ASSERT_TRUE(c.write_body(id, piece));
        hash = fnv(hash, piece);
        written += piece.size();
    }
    ASSERT_GE(c.body_buffered(id), o.body_high_water);
    EXPECT_LT(c.body_buffered(id), o.body_high_water + piece.size());
    run_for(loop, 100);
    EXPECT_EQ(0, drains);  // nothing is read: nothing drains
    EXPECT_GE(c.body_buffered(id), o.body_high_water);
    EXPECT_FALSE(r.done);
    srv.open_gate();
    ASSERT_TRUE(run_until(loop, [&] { return drains > 0; }));
    EXPECT_EQ(1, drains);
    EXPECT_EQ(0u, buffered_at_drain);
    ASSERT_TRUE(c.end_body(id));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_EQ(digest(written, hash), r.res.body);
    EXPECT_EQ(1, drains);  // under the mark since: no more calls
}

// The server answers before the body ends: the answer is delivered, the
// body can no longer be written, and the connection is not reused.
TEST(HttpClientStream, EarlyResponseBeforeEndBody)
{
    StreamServer srv;
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r;
    Id id = c.request("127.0.0.1", srv.port(), streamed("POST", "/early"), into(&r));
    ASSERT_TRUE(c.write_body(id, "some of the body"));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_EQ(413, r.res.status);
    EXPECT_FALSE(c.write_body(id, "more"));
    EXPECT_FALSE(c.end_body(id));
    EXPECT_EQ(0u, c.body_buffered(id));
    EXPECT_FALSE(c.on_body_drain(id, [] {}));
    EXPECT_EQ(0u, c.connections());  // the rest of the body would be read as a request
    ASSERT_TRUE(run_until(loop, [&] { return srv.current() == 0; }));
    Result next;
    Id nid = c.request("127.0.0.1", srv.port(), streamed("POST", "/sink"), into(&next));
    ASSERT_TRUE(c.end_body(nid));
    ASSERT_TRUE(run_until(loop, [&] { return next.done; }));
    ASSERT_TRUE(next.res.ok()) << next.res.error_text;
    EXPECT_EQ(2, srv.accepted());
}

TEST(HttpClientStream, CancelAndDestroyMidBodyLeaveNoDescriptor)
{
    StreamServer srv;
    zan::EventLoop loop;
    int before = count_fds();
    int calls = 0, called_before = 0;
    const std::string data = pattern(1u << 20);
    {
        HttpClient c(loop);
        Id id = c.request("127.0.0.1", srv.port(), streamed("POST", "/gate"),
                          [&](HttpClientResponse&) { ++calls; });
        c.on_body_drain(id, [&] { ++calls; });
        ASSERT_TRUE(run_until(loop, [&] { return srv.heads() == 1; }));
        // The server does not read: the socket buffers fill, then the client's.
        for (int i = 0; i < 64 && c.body_buffered(id) == 0; ++i)
            ASSERT_TRUE(c.write_body(id, data));
        EXPECT_GT(c.body_buffered(id), 0u);
        EXPECT_TRUE(c.cancel(id));
        EXPECT_FALSE(c.write_body(id, "x"));
        EXPECT_FALSE(c.end_body(id));
        EXPECT_EQ(0u, c.body_buffered(id));
        EXPECT_EQ(0u, c.connections());
        srv.open_gate();
        ASSERT_TRUE(run_until(loop, [&] { return srv.current() == 0; }));
        EXPECT_EQ(before, count_fds());
        // Destroyed with one request on a connection and one waiting, both
        // with body bytes held and drain callbacks due.
        HttpClientOptions o;
        o.max_connections = 1;
        o.body_high_water = 1000;
        HttpClient d(loop, o);
        Id a = d.request("127.0.0.1", srv.port(), streamed("POST", "/sink"),
                         [&](HttpClientResponse&) { ++calls; });
        Id b = d.request("127.0.0.1", srv.port(), streamed("POST", "/sink"),
                         [&](HttpClientResponse&) { ++calls; });
        d.on_body_drain(a, [&] { ++calls; });
        d.on_body_drain(b, [&] { ++calls; });
        ASSERT_TRUE(d.write_body(a, data));
        ASSERT_TRUE(d.write_body(b, data));
        ASSERT_TRUE(run_until(loop, [&] { return srv.heads() == 2; }));  // a is on its way
        EXPECT_GT(d.body_buffered(b), 0u);
        EXPECT_EQ(2u, d.pending());
        called_before = calls;  // a may have drained: the server reads it
    }
    for (int i = 0; i < 10; ++i) loop.run_once(10);
    EXPECT_EQ(called_before, calls);
    EXPECT_TRUE(srv.seen().empty());  // no request was complete
    ASSERT_TRUE(run_until(loop, [&] { return srv.accepted() == 2 && srv.current() == 0; }));
    EXPECT_EQ(before, count_fds());
}

TEST(HttpClientStream, ContentLengthIsEnforced)
{
    StreamServer srv;
    zan::EventLoop loop;
    HttpClient c(loop);
    Result r;
    Id id = c.request("127.0.0.1", srv.port(), streamed("POST", "/sink", 10), into(&r));
    EXPECT_TRUE(c.write_body(id, "012345"));
    EXPECT_FALSE(c.write_body(id, "67890"));  // one byte too many: nothing is queued
    EXPECT_TRUE(c.write_body(id, "6789"));
    EXPECT_FALSE(c.write_body(id, "x"));
    EXPECT_TRUE(c.write_body(id, ""));
    EXPECT_TRUE(c.end_body(id));
    ASSERT_TRUE(run_until(loop, [&] { return r.done; }));
    ASSERT_TRUE(r.res.ok()) << r.res.error_text;
    EXPECT_EQ(digest(10, fnv(kFnvBasis, "0123456789")), r.res.body);
    ASSERT_EQ(1u, srv.seen().size());
    EXPECT_EQ("0123456789", srv.seen()[0].wire_body);

    // Ended short: the request fails from the loop, its connection closed.
    Result s;
    id = c.request("127.0.0.1", srv.port(), streamed("POST", "/sink", 10), into(&s));
    EXPECT_TRUE(c.write_body(id, "012"));
    EXPECT_FALSE(c.end_body(id));
    EXPECT_FALSE(s.done);
    EXPECT_FALSE(c.write_body(id, "3456789"));
    EXPECT_EQ(0u, c.body_buffered(id));
    EXPECT_EQ(0u, c.connections());
    ASSERT_TRUE(run_until(loop, [&] { return s.done; }));
    EXPECT_EQ(HttpClientError::kClosed, s.res.error);
    EXPECT_NE(std::string::npos, s.res.error_text.find("short")) << s.res.error_text;
    EXPECT_EQ(0u, c.pending());

    // Not streamed, or unknown.
    Result w;
    HttpClientRequest whole;
    whole.method = "POST";
    whole.target = "/sink";
    Id wid = c.request("127.0.0.1", srv.port(), whole, into(&w));
    EXPECT_FALSE(c.write_body(wid, "x"));
    EXPECT_FALSE(c.end_body(wid));
    EXPECT_EQ(0u, c.body_buffered(wid));
    ASSERT_TRUE(run_until(loop, [&] { return w.done; }));
    EXPECT_TRUE(w.res.ok()) << w.res.error_text;
    EXPECT_FALSE(c.write_body(12345, "x"));
    EXPECT_FALSE(c.end_body(12345));
    EXPECT_FALSE(c.on_body_drain(12345, [] {}));
    EXPECT_EQ(0u, c.body_buffered(12345));
}

// Header and read timeouts count from the end of the body: a body
// written slowly for longer than either does not trip them, a server
// that then says nothing does.
TEST(HttpClientStream, TimeoutsStartOnceTheBodyIsSent)
{
    StreamServer srv;
    zan::EventLoop loop;
    HttpClientOptions ho, ro;
    ho.header_timeout_ms = 100;
    ro.read_timeout_ms = 100;
    HttpClient hc(loop, ho), rc(loop, ro);
    struct Slow {
        HttpClient* c;
        Id id = 0;
        Result r;
        int left = 10;
        long long ended_at = 0;
    };
    std::vector<Slow> slow(4);
    const char* targets[] = {"/sink", "/silent", "/sink", "/silent"};
    for (int i = 0; i < 4; ++i) {
        slow[i].c = i < 2 ? &hc : &rc;
        slow[i].id = slow[i].c->request("127.0.0.1", srv.port(), streamed("POST", targets[i]),
                                        into(&slow[i].r));
    }
    // A piece every 40 ms, ten of them, then the end.
    std::function<void()> tick = [&] {
        bool more = false;
        for (Slow& s : slow) {
            if (s.left == 0 || s.r.done) continue;
            if (--s.left > 0) {
                EXPECT_TRUE(s.c->write_body(s.id, "piece"));
                more = true;
            } else {
                EXPECT_TRUE(s.c->end_body(s.id));
                s.ended_at = zt::now_ms();
            }
        }
        if (more) loop.run_after(40, tick);
    };
    loop.run_after(40, tick);
    ASSERT_TRUE(run_until(loop, [&] {
        for (Slow& s : slow)
            if (!s.r.done) return false;
        return true;
    }));
    long long now = zt::now_ms();
    for (int i = 0; i < 4; ++i) {
        SCOPED_TRACE(i);
        EXPECT_NE(0, slow[i].ended_at);  // nothing failed while the body went out
        if (i % 2 == 0) {
            ASSERT_TRUE(slow[i].r.res.ok()) << slow[i].r.res.error_text;
            std::string nine;
            for (int k = 0; k < 9; ++k) nine += "piece";
            EXPECT_EQ(digest(nine.size(), fnv(kFnvBasis, nine)), slow[i].r.res.body);
        } else {
            EXPECT_EQ(i == 1 ? HttpClientError::kHeaderTimeout : HttpClientError::kReadTimeout,
                      slow[i].r.res.error)
                << slow[i].r.res.error_text;
            EXPECT_LE(slow[i].ended_at + 90, now);
        }
    }
}

// A streamed body cannot be sent again: on a kept-alive connection that
// the server closes, even an idempotent method fails instead of retrying.
TEST(HttpClientStream, NotRetriedOnAStaleConnection)
{
    StreamServer srv;
    zan::EventLoop loop;
    HttpClient c(loop);
    Result a, b;
    HttpClientRequest get;
    get.target = "/stale";
    c.request("127.0.0.1", srv.port(), get, into(&a));
    ASSERT_TRUE(run_until(loop, [&] { return a.done; }));
    ASSERT_TRUE(a.res.ok()) << a.res.error_text;
    EXPECT_EQ("fresh", a.res.body);
    ASSERT_EQ(1u, c.idle_connections());
    Id id = c.request("127.0.0.1", srv.port(), streamed("PUT", "/stale"), into(&b));
    ASSERT_TRUE(c.write_body(id, "abc"));
    ASSERT_TRUE(c.end_body(id));
    ASSERT_TRUE(run_until(loop, [&] { return b.done; }));
    EXPECT_EQ(HttpClientError::kClosed, b.res.error) << b.res.error_text;
    EXPECT_EQ(1, srv.accepted());
}
