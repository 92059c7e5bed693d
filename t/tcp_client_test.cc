// TcpClient against a listener of the test itself, served on the same
// EventLoop (so the whole exchange runs in one thread, step by step).
#include "zan/tcp_client.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "t/loop_helpers.h"
#include "t/proc_helpers.h"
#include "t/test_env.h"
#include "zan/buffer.h"
#include "zan/event_loop.h"
#include "zan/socket.h"
#include "zan/sys.h"

using zan::Buffer;
using zan::EventLoop;
using zan::TcpClient;

namespace {

// The server side of the tests: accepts on 127.0.0.1 and, per mode,
// echoes, swallows (counting bytes and hashing them), stays silent or
// resets each connection. Owns the listening socket and every accepted one.
class Peer {
public:
    enum Mode { kEcho, kSink, kSilent, kReset };

    Peer(EventLoop& loop, Mode mode, int backlog = 128) : loop_(loop), mode_(mode)
    {
        zan::InetAddr a = zan::InetAddr::parse("127.0.0.1", 0).value();
        std::string err;
        lfd_ = zan::listen_tcp(a, backlog, false, &err);
        EXPECT_TRUE(lfd_.valid()) << err;
        addr_ = zan::local_addr(lfd_.get());
    }
    ~Peer()
    {
        for (auto& c : conns_)
            if (c->fd)
                loop_.unwatch(c->fd.get());
        if (lfd_ && loop_.watching(lfd_.get()))
            loop_.unwatch(lfd_.get());
    }
    // Starts accepting from the loop (a listener not served keeps its
    // connections in the accept queue).
    void serve()
    {
        loop_.watch(lfd_.get(), zan::kReadable, [this](uint32_t) { accept_all(); });
    }
    const zan::InetAddr& addr() const { return addr_; }
    int listen_fd() const { return lfd_.get(); }
    size_t accepted() const { return conns_.size(); }
    size_t bytes() const { return bytes_; }
    uint64_t hash() const { return hash_; }
    int eofs() const { return eofs_; }
    // Sends data on the newest connection (blocking; small data only).
    void say(const std::string& data) { zan::write_all(conns_.back()->fd.get(), data.data(), data.size()); }
    // Resets the newest connection (RST).
    void reset_newest()
    {
        struct linger lg = {1, 0};
        ::setsockopt(conns_.back()->fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        drop(*conns_.back());
    }

private:
    struct Conn {
        zan::Fd fd;
        Buffer out;
    };

    void accept_all()
    {
        for (;;) {
            int fd = zan::accept_conn(lfd_.get(), nullptr);
            if (fd < 0)
                return;
            conns_.push_back(std::make_unique<Conn>());
            Conn& c = *conns_.back();
            c.fd.reset(fd);
            if (mode_ == kReset) {
                struct linger lg = {1, 0};  // close() sends RST
                ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                c.fd.reset();
            } else if (mode_ != kSilent) {
                loop_.watch(fd, zan::kReadable, [this, &c](uint32_t ev) { serve(c, ev); });
            }
        }
    }
    void serve(Conn& c, uint32_t ev)
    {
        if (ev & zan::kReadable) {
            char buf[65536];
            ssize_t n = zan::read_some(c.fd.get(), buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                ++eofs_;
                if (c.out.empty() || n < 0)  // a reset: nothing to finish
                    drop(c);
                else
                    loop_.update(c.fd.get(), zan::kWritable);  // finish the echo
                return;
            }
            for (ssize_t i = 0; i < n; ++i)
                hash_ = (hash_ ^ static_cast<unsigned char>(buf[i])) * 1099511628211ULL;
            bytes_ += n > 0 ? static_cast<size_t>(n) : 0;
            if (mode_ == kEcho && n > 0)
                c.out.append(buf, static_cast<size_t>(n));
        }
        if (!c.out.empty()) {
            int err = 0;
            if (c.out.write_fd(c.fd.get(), &err) < 0 && err != EAGAIN) {
                drop(c);
                return;
            }
            uint32_t keep = loop_.interest(c.fd.get()) & zan::kReadable;
            loop_.update(c.fd.get(), keep | (c.out.empty() ? 0u : static_cast<uint32_t>(zan::kWritable)));
            if (c.out.empty() && !keep)
                drop(c);
        }
    }
    void drop(Conn& c)
    {
        if (c.fd && loop_.watching(c.fd.get()))
            loop_.unwatch(c.fd.get());
        c.fd.reset();
    }

    EventLoop& loop_;
    Mode mode_;
    zan::Fd lfd_;
    zan::InetAddr addr_;
    std::vector<std::unique_ptr<Conn>> conns_;
    size_t bytes_ = 0;
    uint64_t hash_ = 14695981039346656037ULL;
    int eofs_ = 0;
};

uint64_t fnv(const std::string& s, uint64_t h = 14695981039346656037ULL)
{
    for (unsigned char c : s)
        h = (h ^ c) * 1099511628211ULL;
    return h;
}

using zt::run_until;

// What on_close reported.
struct Closed {
    int calls = 0;
    int err = -1;
    std::string why;
    long long at_ms = 0;
    TcpClient::CloseCallback cb()
    {
        return [this](TcpClient&, int e, const std::string& w) {
            ++calls;
            err = e;
            why = w;
            at_ms = zt::now_ms();
        };
    }
};

// An address on 127.0.0.1 that refuses connections: a socket bound to a
// port and not listening (which also keeps the port from being reused).
struct RefusingPort {
    zan::Fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    zan::InetAddr addr;
    RefusingPort()
    {
        addr = zan::InetAddr::parse("127.0.0.1", 0).value();
        EXPECT_EQ(::bind(fd.get(), addr.sa(), addr.len()), 0);
        addr = zan::local_addr(fd.get());
    }
};

}  // namespace

TEST(TcpClient, EchoRoundTrip)
{
    EventLoop loop;
    Peer peer(loop, Peer::kEcho);
    peer.serve();
    TcpClient c(loop);
    std::string got;
    bool connected = false;
    c.on_connect([&](TcpClient& cl) {
        connected = true;
        EXPECT_TRUE(cl.connected());
        EXPECT_TRUE(cl.send("hello\n"));
    });
    c.on_data([&](TcpClient&, Buffer& in) {
        got += std::string(in.view());
        in.consume(in.readable());
    });
    ASSERT_TRUE(c.connect(peer.addr()));
    EXPECT_TRUE(c.connecting());
    EXPECT_TRUE(c.send("queued "));  // sent once connected
    ASSERT_TRUE(run_until(loop, [&] { return got.size() == 13; }));
    EXPECT_TRUE(connected);
    EXPECT_EQ(got, "queued hello\n");
    EXPECT_EQ(c.peer().to_string(), peer.addr().to_string());
    c.close();
    EXPECT_FALSE(c.connected());
    EXPECT_EQ(c.fd(), -1);
    EXPECT_FALSE(c.send("x"));
    EXPECT_EQ(errno, ENOTCONN);
}

TEST(TcpClient, LargeTransferWithBackPressure)
{
    EventLoop loop;
    Peer peer(loop, Peer::kEcho);
    peer.serve();
    TcpClient c(loop);
    const size_t kTotal = 16u << 20;
    const size_t kChunk = 64 * 1024;
    c.set_high_water(256 * 1024);
    size_t sent = 0, received = 0;
    int high_water = 0, drains = 0;
    std::string sent_all, chunk(kChunk, '\0');
    uint64_t sent_hash = 14695981039346656037ULL, recv_hash = sent_hash;
    auto pump = [&](TcpClient& cl) {
        while (sent < kTotal) {
            for (size_t i = 0; i < kChunk; ++i)
                chunk[i] = static_cast<char>((sent + i) * 7 + (sent + i) / 251);
            sent_hash = fnv(chunk, sent_hash);
            sent += kChunk;
            if (!cl.send(chunk))
                return;  // over the mark: on_drain resumes
        }
    };
    c.on_connect(pump);
    c.on_drain([&](TcpClient& cl) {
        ++drains;
        EXPECT_EQ(cl.buffered(), 0u);
        pump(cl);
    });
    c.on_high_water([&](TcpClient& cl, size_t buffered) {
        ++high_water;
        EXPECT_GE(buffered, 256u * 1024);
        EXPECT_GE(cl.buffered(), 0u);
    });
    c.on_data([&](TcpClient&, Buffer& in) {
        recv_hash = fnv(std::string(in.view()), recv_hash);
        received += in.readable();
        in.consume(in.readable());
    });
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return received == kTotal; }, 30000));
    EXPECT_EQ(sent, kTotal);
    EXPECT_EQ(peer.bytes(), kTotal);
    EXPECT_EQ(peer.hash(), sent_hash);
    EXPECT_EQ(recv_hash, sent_hash);
    EXPECT_GT(high_water, 0);
    EXPECT_GT(drains, 0);
    EXPECT_EQ(c.buffered(), 0u);
}

TEST(TcpClient, ConnectRefusedReportsErrnoText)
{
    EventLoop loop;
    RefusingPort port;
    TcpClient c(loop);
    Closed closed;
    bool connected = false;
    c.on_connect([&](TcpClient&) { connected = true; });
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(port.addr));
    EXPECT_EQ(closed.calls, 0);  // never from connect() itself
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    EXPECT_FALSE(connected);
    EXPECT_EQ(closed.err, ECONNREFUSED);
    EXPECT_NE(closed.why.find(strerror(ECONNREFUSED)), std::string::npos) << closed.why;
    EXPECT_NE(closed.why.find(port.addr.to_string()), std::string::npos) << closed.why;
    EXPECT_EQ(c.error(), closed.why);
    EXPECT_FALSE(c.connecting());
}

// A listener with backlog 0 holds one connection in its accept queue;
// Linux drops any further SYN while that queue is full (and never accepts
// here), so a connect stays in SYN-SENT until our timeout: no routing
// tricks, nothing leaves loopback.
struct FullBacklog {
    EventLoop& loop;
    Peer peer;
    zan::Fd filler;
    explicit FullBacklog(EventLoop& l) : loop(l), peer(l, Peer::kSilent, 0)
    {
        int err = 0;
        filler = zan::connect_tcp(peer.addr(), &err);
        EXPECT_TRUE(filler.valid()) << strerror(err);
        EXPECT_TRUE(zt::wait_fd(filler.get(), POLLOUT, zt::scaled(2000)));
        long long end = zt::now_ms() + zt::scaled(2000);
        int limit = -1;
        while (zan::accept_queue(peer.listen_fd(), &limit) < 1 && zt::now_ms() < end)
            ::usleep(1000);
        EXPECT_GE(zan::accept_queue(peer.listen_fd(), &limit), 1);
    }
};

TEST(TcpClient, ConnectTimeout)
{
    EventLoop loop;
    FullBacklog full(loop);
    TcpClient c(loop);
    Closed closed;
    c.set_connect_timeout(150);
    c.on_close(closed.cb());
    long long start = zt::now_ms();
    ASSERT_TRUE(c.connect(full.peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    EXPECT_EQ(closed.err, ETIMEDOUT);
    EXPECT_NE(closed.why.find("timed out after 150 ms"), std::string::npos) << closed.why;
    EXPECT_GE(closed.at_ms - start, 150);
    EXPECT_LT(closed.at_ms - start, zt::scaled(2000));
}

TEST(TcpClient, DestroyedWithPendingConnectLeaksNothing)
{
    EventLoop loop;
    FullBacklog full(loop);
    int before = zt::open_fds(getpid());
    {
        TcpClient c(loop);
        c.on_close([](TcpClient&, int, const std::string&) { ADD_FAILURE() << "on_close"; });
        ASSERT_TRUE(c.connect(full.peer.addr()));
        loop.run_once(10);
        EXPECT_TRUE(c.connecting());
        EXPECT_EQ(zt::open_fds(getpid()), before + 1);
    }
    EXPECT_EQ(zt::open_fds(getpid()), before);
    EXPECT_EQ(loop.timer_count(), 0u);
    loop.run_once(10);
}

TEST(TcpClient, IdleTimeout)
{
    EventLoop loop;
    Peer peer(loop, Peer::kSilent);
    peer.serve();
    TcpClient c(loop);
    Closed closed;
    long long connected_at = 0;
    c.on_connect([&](TcpClient& cl) {
        connected_at = loop.now_ms();  // the clock the client counts with
        cl.set_idle_timeout(120);
    });
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    EXPECT_EQ(closed.err, ETIMEDOUT);
    EXPECT_NE(closed.why.find("idle for 120 ms"), std::string::npos) << closed.why;
    EXPECT_GE(closed.at_ms - connected_at, 120);
    EXPECT_EQ(loop.timer_count(), 0u);
}

TEST(TcpClient, ReadTimeoutCountsOnlyInput)
{
    EventLoop loop;
    Peer peer(loop, Peer::kSink);  // reads everything, never answers
    peer.serve();
    TcpClient c(loop);
    Closed closed;
    long long armed_at = 0;
    int sends = 0;
    c.on_connect([&](TcpClient& cl) {
        armed_at = loop.now_ms();
        cl.set_read_timeout(150);
        cl.set_idle_timeout(100000);
    });
    c.on_close(closed.cb());
    // Output every 20 ms keeps the connection busy, but not readable.
    EventLoop::TimerId t = loop.run_every(20, [&] {
        if (c.connected() && c.send("ping\n"))
            ++sends;
    });
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    loop.cancel(t);
    EXPECT_EQ(closed.err, ETIMEDOUT);
    EXPECT_NE(closed.why.find("no data from"), std::string::npos) << closed.why;
    EXPECT_GE(closed.at_ms - armed_at, 150);
    EXPECT_GE(sends, 3);
}

TEST(TcpClient, ReadTimeoutReArmedByEachByte)
{
    EventLoop loop;
    Peer peer(loop, Peer::kSilent);
    peer.serve();
    TcpClient c(loop);
    Closed closed;
    long long last_byte = 0;
    int pieces = 0;
    c.on_connect([&](TcpClient& cl) { cl.set_read_timeout(150); });
    c.on_data([&](TcpClient&, Buffer& in) {
        last_byte = loop.now_ms();
        in.consume(in.readable());
    });
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return peer.accepted() == 1 && c.connected(); }));
    // A byte every 50 ms for a while keeps it open well past 150 ms.
    EventLoop::TimerId t = loop.run_every(50, [&] {
        if (++pieces <= 8)
            peer.say("x");
    });
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    loop.cancel(t);
    EXPECT_GE(pieces, 8);
    EXPECT_EQ(closed.err, ETIMEDOUT);
    EXPECT_GE(closed.at_ms - last_byte, 150);
}

// A client that arms a read timeout as each request goes out and clears it
// when the answer is in (as an HTTP client does per request) keeps one
// timer for all of them; the kept timer lapses without closing anything,
// and a timeout armed again still fires.
TEST(TcpClient, ReadTimeoutSetAndClearedPerRequest)
{
    EventLoop loop;
    Peer peer(loop, Peer::kEcho);
    peer.serve();
    TcpClient c(loop);
    Closed closed;
    int answers = 0;
    size_t most_timers = 0, fewest_timers = 99;
    auto ask = [&](TcpClient& cl) {
        cl.send("q\n");
        cl.set_read_timeout(200);
        most_timers = std::max(most_timers, loop.timer_count());
    };
    c.on_connect(ask);
    c.on_data([&](TcpClient& cl, Buffer& in) {
        in.consume(in.readable());
        cl.set_read_timeout(0);
        most_timers = std::max(most_timers, loop.timer_count());
        fewest_timers = std::min(fewest_timers, loop.timer_count());  // kept, not cancelled
        if (++answers < 300)
            ask(cl);
    });
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return answers == 300 || closed.calls > 0; }));
    EXPECT_EQ(closed.calls, 0) << closed.why;
    EXPECT_EQ(most_timers, 1u);
    EXPECT_EQ(fewest_timers, 1u);
    // Idle, nothing due: past the kept timer's expiry the connection stays.
    long long quiet_end = zt::now_ms() + 400;
    run_until(loop, [&] { return zt::now_ms() >= quiet_end || closed.calls > 0; }, 1000);
    EXPECT_EQ(closed.calls, 0) << closed.why;
    EXPECT_TRUE(c.connected());
    EXPECT_EQ(loop.timer_count(), 0u);  // it lapsed
    long long armed = loop.now_ms();  // what the deadline counts from
    c.set_read_timeout(100);
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    EXPECT_EQ(closed.err, ETIMEDOUT);
    EXPECT_GE(closed.at_ms - armed, 100);
}

// Over IPv6 too (the Connector compares the two ends of each connection
// it makes, by family); skipped where ::1 is not configured.
TEST(TcpClient, EchoRoundTripOverIpv6)
{
    std::optional<zan::InetAddr> a = zan::InetAddr::parse("::1", 0);
    ASSERT_TRUE(a);
    std::string err;
    zan::Fd lfd = zan::listen_tcp(*a, 16, false, &err);
    if (!lfd.valid())
        GTEST_SKIP() << "no IPv6 loopback: " << err;
    EventLoop loop;
    zan::InetAddr bound = zan::local_addr(lfd.get());
    zan::Fd served;
    loop.watch(lfd.get(), zan::kReadable, [&](uint32_t) {
        int fd = zan::accept_conn(lfd.get(), nullptr);
        if (fd >= 0)
            served.reset(fd);
    });
    TcpClient c(loop);
    Closed closed;
    bool up = false;
    c.on_connect([&](TcpClient&) { up = true; });
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(bound));
    ASSERT_TRUE(run_until(loop, [&] { return (up && served.valid()) || closed.calls > 0; }));
    EXPECT_EQ(closed.calls, 0) << closed.why;
    EXPECT_EQ(c.peer().to_string(), "[::1]:" + std::to_string(bound.port()));
    loop.unwatch(lfd.get());
}

TEST(TcpClient, HalfCloseSendsEverythingThenReadsToTheEnd)
{
    EventLoop loop;
    Peer peer(loop, Peer::kEcho);  // echoes, and closes after its EOF
    peer.serve();
    TcpClient c(loop);
    Closed closed;
    const std::string data(3u << 20, 'h');
    size_t received = 0;
    c.set_high_water(64u << 20);
    c.on_connect([&](TcpClient& cl) {
        EXPECT_TRUE(cl.send(data));
        cl.shutdown();  // after the 3 MiB are written
        EXPECT_FALSE(cl.send("late"));
        EXPECT_EQ(errno, EPIPE);
    });
    c.on_data([&](TcpClient&, Buffer& in) {
        received += in.readable();
        in.consume(in.readable());
    });
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }, 20000));
    EXPECT_EQ(closed.err, 0) << closed.why;
    EXPECT_NE(closed.why.find("closed by the peer"), std::string::npos) << closed.why;
    EXPECT_EQ(peer.bytes(), data.size());
    EXPECT_EQ(received, data.size());
    EXPECT_EQ(peer.eofs(), 1);
}

TEST(TcpClient, PeerResetReportsErrnoText)
{
    EventLoop loop;
    Peer peer(loop, Peer::kReset);
    peer.serve();
    TcpClient c(loop);
    Closed closed;
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    EXPECT_EQ(closed.err, ECONNRESET) << closed.why;
    EXPECT_NE(closed.why.find(strerror(ECONNRESET)), std::string::npos) << closed.why;
}

TEST(TcpClient, SendToAResetPeerFailsWithoutSigpipe)
{
    EventLoop loop;
    Peer peer(loop, Peer::kSilent);
    peer.serve();
    TcpClient c(loop);
    Closed closed;
    c.on_close(closed.cb());
    ASSERT_TRUE(c.connect(peer.addr()));
    ASSERT_TRUE(run_until(loop, [&] { return c.connected() && peer.accepted() == 1; }));
    peer.reset_newest();
    ::usleep(20000);  // the RST is in; the loop has not seen it
    // Take the ECONNRESET off the socket (as a read would): the next write
    // then fails with EPIPE, the error that raises SIGPIPE.
    EXPECT_EQ(zan::socket_error(c.fd()), ECONNRESET);
    // SIGPIPE at its default action (t/main.cc ignores it): a send()
    // without MSG_NOSIGNAL would kill the test binary here.
    void (*old_pipe)(int) = ::signal(SIGPIPE, SIG_DFL);
    bool ok = true;
    for (int i = 0; i < 4 && ok; ++i)
        ok = c.send(std::string(1024, 's'));
    ::signal(SIGPIPE, old_pipe);
    EXPECT_FALSE(ok);
    EXPECT_EQ(closed.calls, 0);  // told from the loop, not from send()
    EXPECT_FALSE(c.send("more"));
    ASSERT_TRUE(run_until(loop, [&] { return closed.calls > 0; }));
    EXPECT_EQ(closed.calls, 1);
    EXPECT_EQ(closed.err, EPIPE) << closed.why;
    EXPECT_NE(closed.why.find("send()"), std::string::npos) << closed.why;
}

// Destroying the client from inside each of its callbacks: nothing is
// touched afterwards (ASan would tell) and its socket is closed.
TEST(TcpClient, DestroyedFromInsideEachCallback)
{
    enum Where { kConnect, kData, kDrain, kHighWater, kClose, kCount };
    for (int w = 0; w < kCount; ++w) {
        SCOPED_TRACE(w);
        EventLoop loop;
        Peer peer(loop, w == kClose ? Peer::kReset : Peer::kEcho);
        peer.serve();
        int before = zt::open_fds(getpid());
        auto c = std::make_unique<TcpClient>(loop);
        bool gone = false;
        auto kill = [&] {
            c.reset();
            gone = true;
        };
        c->set_high_water(1024);
        c->on_connect([&](TcpClient& cl) {
            // Drain and high-water cases: fill up to the mark.
            const std::string chunk(w == kDrain || w == kHighWater ? 65536 : 4, 'd');
            for (int i = 0; cl.send(chunk) && chunk.size() > 4 && i < 1000; ++i) {
            }
            if (w == kConnect)
                kill();
        });
        c->on_data([&](TcpClient&, Buffer&) {
            if (w == kData)
                kill();
        });
        c->on_drain([&](TcpClient&) {
            if (w == kDrain)
                kill();
        });
        c->on_high_water([&](TcpClient&, size_t) {
            if (w == kHighWater)
                kill();
        });
        c->on_close([&](TcpClient&, int, const std::string&) {
            if (w == kClose)
                kill();
        });
        ASSERT_TRUE(c->connect(peer.addr()));
        ASSERT_TRUE(run_until(loop, [&] { return gone; }, 20000));
        // The peer closes its side on the EOF: then every fd is back.
        EXPECT_TRUE(run_until(loop, [&] { return zt::open_fds(getpid()) == before; }));
    }
}

TEST(TcpClient, CloseAndReconnectFromInsideCallbacks)
{
    EventLoop loop;
    Peer peer(loop, Peer::kEcho);
    peer.serve();
    RefusingPort refusing;
    TcpClient c(loop);
    int connects = 0, closes = 0;
    std::string got;
    c.on_close([&](TcpClient& cl, int err, const std::string&) {
        ++closes;
        EXPECT_EQ(err, ECONNREFUSED);
        EXPECT_TRUE(cl.connect(peer.addr()));  // from on_close: try elsewhere
    });
    c.on_connect([&](TcpClient& cl) {
        ++connects;
        cl.send("one\n");
    });
    c.on_data([&](TcpClient& cl, Buffer& in) {
        got += std::string(in.view());
        in.consume(in.readable());
        cl.close();  // from on_data: no on_close follows
        EXPECT_EQ(cl.fd(), -1);
    });
    ASSERT_TRUE(c.connect(refusing.addr));
    ASSERT_TRUE(run_until(loop, [&] { return got == "one\n"; }));
    for (int i = 0; i < 5; ++i)
        loop.run_once(10);
    EXPECT_EQ(closes, 1);
    EXPECT_EQ(connects, 1);
    EXPECT_FALSE(c.connected());
}

TEST(TcpClient, ConnectWhileBusyIsRefused)
{
    EventLoop loop;
    Peer peer(loop, Peer::kSilent);
    peer.serve();
    TcpClient c(loop);
    ASSERT_TRUE(c.connect(peer.addr()));
    EXPECT_FALSE(c.connect(peer.addr()));
    EXPECT_EQ(errno, EALREADY);
    ASSERT_TRUE(run_until(loop, [&] { return c.connected(); }));
    EXPECT_FALSE(c.connect(peer.addr()));
    EXPECT_EQ(errno, EISCONN);
}

TEST(TcpClient, FdCountUnchangedAfterThousandCycles)
{
    EventLoop loop;
    Peer peer(loop, Peer::kEcho);
    peer.serve();
    RefusingPort refusing;
    TcpClient c(loop);
    int before = zt::open_fds(getpid());
    int refused = 0, echoed = 0, abandoned = 0;
    c.on_close([&](TcpClient&, int err, const std::string&) { refused += err == ECONNREFUSED; });
    c.on_connect([&](TcpClient& cl) { cl.send("x"); });
    c.on_data([&](TcpClient& cl, Buffer& in) {
        in.consume(in.readable());
        ++echoed;
        cl.close();
    });
    for (int i = 0; i < 1000; ++i) {
        switch (i % 3) {
        case 0:  // a whole round trip, closed from on_data
            ASSERT_TRUE(c.connect(peer.addr()));
            ASSERT_TRUE(run_until(loop, [&] { return !c.connected() && !c.connecting(); }));
            break;
        case 1:  // refused
            ASSERT_TRUE(c.connect(refusing.addr));
            ASSERT_TRUE(run_until(loop, [&] { return !c.connecting(); }));
            break;
        default:  // closed while the connect is pending
            ASSERT_TRUE(c.connect(peer.addr()));
            c.close();
            ++abandoned;
            break;
        }
    }
    EXPECT_EQ(echoed, 334);
    EXPECT_EQ(refused, 333);
    EXPECT_EQ(abandoned, 333);
    // The Peer closes each accepted socket on its EOF: then every fd is back.
    EXPECT_TRUE(run_until(loop, [&] { return zt::open_fds(getpid()) == before; }))
        << zt::open_fds(getpid()) << " fds open, " << before << " before";
}
