// zan-bench's connections: the table of them and the epoll set that
// watches them, with what happens to a socket whatever the traffic is
// (connect, write, failure and back-off, timeouts, reconnects). What is
// sent and read, and when, is up to the caller (zan-bench.cc).
#ifndef ZAN_TOOLS_BENCH_CONN_H
#define ZAN_TOOLS_BENCH_CONN_H

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "tools/bench_http.h"
#include "tools/bench_options.h"
#include "tools/bench_report.h"
#include "zan/fd.h"
#include "zan/inet_addr.h"
#include "zan/socket.h"

namespace zan_bench {

// Idle mode: at most this many connects in progress at once; thousands of
// connections are opened in batches.
constexpr int kMaxConnecting = 128;

inline long long now_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

struct Inflight {
    long long sent_ns;  // when it was queued, or with --rate when it was due
    size_t reply_len;   // echo: bytes of the reply (HTTP: unused)
};

struct Conn {
    enum State { kNew, kClosed, kConnecting, kOpen, kReady };  // kClosed: after a failure
    zan::Fd fd;
    State state = kNew;
    uint32_t gen = 0;
    bool want_out = false;
    std::string out;  // bytes not yet written, from out_off
    size_t out_off = 0;
    std::string expect;  // replies still due, from exp_off
    size_t exp_off = 0;
    size_t head = 0;  // where the oldest reply in flight starts in expect
    std::deque<Inflight> inflight;
    long long seq = 0;
    long long since_ns = 0;  // connect start, or last progress
    long long retry_ns = 0;  // closed: reconnect not before
    int failures = 0;        // consecutive, for the back-off
    HttpReplies http;        // --http: where the responses end
    bool closing = false;    // --http: the server said it closes after a response
    long long due_k = 0;     // --rate: requests of this connection due so far
    long long sched_k = 0;   // --rate: requests of it sent (or lost) so far
};

// Owns the epoll fd and every connection's socket; one process, nothing
// survives it. An event carries (gen << 32) | index and a connection's gen
// changes whenever it is opened or closed, so current() drops an event
// that was queued for a socket closed since.
class ConnTable {
public:
    ConnTable(const Options& o, Totals* t) : o_(o), t_(t), conns_(o.idle ? o.idle : o.connections)
    {
    }

    // Resolves --host and makes the epoll set: 0, or the exit status.
    int start()
    {
        std::optional<zan::InetAddr> addr = zan::InetAddr::parse(o_.host, static_cast<uint16_t>(o_.port));
        if (!addr) {
            fprintf(stderr, "zan-bench: bad host %s\n", o_.host.c_str());
            return 2;
        }
        addr_ = *addr;
        ep_.reset(epoll_create1(EPOLL_CLOEXEC));
        if (!ep_) {
            perror("zan-bench: epoll_create1");
            return 1;
        }
        return 0;
    }

    Conn& operator[](size_t i) { return conns_[i]; }
    int epoll_fd() const { return ep_.get(); }
    size_t size() const { return conns_.size(); }
    const std::vector<Conn>& all() const { return conns_; }
    int pending_connects() const { return pending_connects_; }

    // Starts a non-blocking connect; false (after fail()) if it failed.
    bool open(size_t i)
    {
        Conn& c = conns_[i];
        int err = 0;
        c.fd = zan::connect_tcp(addr_, &err);
        c.gen++;
        c.since_ns = now_ns();
        if (!c.fd) {
            c.state = Conn::kClosed;
            errno = err;
            fail(i, "connect()");
            return false;
        }
        struct epoll_event ev = {};
        ev.events = EPOLLOUT;
        ev.data.u64 = (static_cast<uint64_t>(c.gen) << 32) | i;
        if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) < 0) {
            fail(i, "epoll_ctl()");
            return false;
        }
        c.state = Conn::kConnecting;
        c.want_out = true;
        pending_connects_++;
        return true;
    }

    // Counts an error (the reason why and errno go to stderr, the first 5
    // or with --verbose 1000 times), drops what was in flight and schedules
    // a reconnect with a back-off that grows with consecutive failures
    // (1 ms .. 128 ms).
    void fail(size_t i, const char* why)
    {
        Conn& c = conns_[i];
        int err = errno;
        t_->errors++;
        t_->lost += static_cast<long long>(c.inflight.size());
        if (diagnostics_ < (o_.verbose ? 1000 : 5)) {
            diagnostics_++;
            fprintf(stderr, "zan-bench: connection %zu: %s%s%s\n", i, why, err ? ": " : "",
                    err ? strerror(err) : "");
        }
        discard(i);
        c.failures = c.failures < 8 ? c.failures + 1 : 8;
        c.retry_ns = now_ns() + (1000000LL << c.failures) / 2;
        if (o_.idle && c.failures >= 3)  // idle mode: give a connection 3 tries
            c.retry_ns = LLONG_MAX;
        errno = 0;
    }

    // The server closed connection i after a response that said it would
    // (HTTP "Connection: close"): not an error. Requests sent after that
    // response are lost; the connection is opened again at once.
    void reopen(size_t i)
    {
        t_->lost += static_cast<long long>(conns_[i].inflight.size());
        discard(i);
        conns_[i].failures = 0;
        t_->reconnects++;
        open(i);
    }

    // The connect of connection i has ended (its socket became writable):
    // false (after fail()) if it failed. Otherwise the socket is watched
    // for input, and for output only while a write waits (set_out()).
    bool finish_connect(size_t i)
    {
        Conn& c = conns_[i];
        int err = zan::socket_error(c.fd.get());
        if (err != 0) {
            errno = err;
            fail(i, "connect()");
            return false;
        }
        pending_connects_--;
        zan::set_tcp_nodelay(c.fd.get(), true);
        c.state = Conn::kOpen;
        c.since_ns = now_ns();
        return set_out(i, false);
    }

    bool set_out(size_t i, bool on)
    {
        Conn& c = conns_[i];
        if (c.want_out == on)
            return true;
        struct epoll_event ev = {};
        ev.events = EPOLLIN | (on ? static_cast<uint32_t>(EPOLLOUT) : 0u);
        ev.data.u64 = (static_cast<uint64_t>(c.gen) << 32) | i;
        if (epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) < 0) {
            fail(i, "epoll_ctl()");
            return false;
        }
        c.want_out = on;
        return true;
    }

    // Writes what is queued; false if the connection failed.
    bool flush(size_t i)
    {
        Conn& c = conns_[i];
        while (c.out_off < c.out.size()) {
            ssize_t n = send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off,
                             MSG_NOSIGNAL);
            if (n > 0) {
                c.out_off += static_cast<size_t>(n);
                t_->bytes_out += n;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno == EAGAIN) {
                return set_out(i, true);
            } else if (c.closing && (errno == EPIPE || errno == ECONNRESET)) {
                reopen(i);  // the server closed as its last response said
                return false;
            } else {
                fail(i, "send()");
                return false;
            }
        }
        c.out.clear();
        c.out_off = 0;
        return set_out(i, false);
    }

    // Timeouts, and reconnects of closed connections whose back-off is
    // over (none while draining).
    void sweep(long long now, bool draining)
    {
        for (size_t i = 0; i < conns_.size(); i++) {
            Conn& c = conns_[i];
            if (c.state == Conn::kConnecting &&
                now - c.since_ns > o_.connect_timeout_ms * 1000000LL) {
                errno = ETIMEDOUT;
                fail(i, "connect()");
            } else if (c.state == Conn::kOpen && (!c.inflight.empty() || o_.idle) &&
                       now - c.since_ns > o_.reply_timeout_ms * 1000000LL) {
                errno = ETIMEDOUT;
                fail(i, "waiting for the reply");
            }
            if (c.state == Conn::kClosed && now >= c.retry_ns && !draining &&
                (o_.idle == 0 || pending_connects_ < kMaxConnecting)) {
                t_->reconnects++;
                open(i);
            }
        }
    }

    // One epoll_wait: the number of events, 0 on EINTR, or -1 on failure.
    int wait(std::vector<struct epoll_event>* evs, int timeout_ms)
    {
        int n = epoll_wait(ep_.get(), evs->data(), static_cast<int>(evs->size()), timeout_ms);
        if (n < 0 && errno != EINTR) {
            perror("zan-bench: epoll_wait");
            return -1;
        }
        return n < 0 ? 0 : n;
    }

    // Whether ev is for a connection as it is now; its index in *i.
    bool current(const struct epoll_event& ev, size_t* i) const
    {
        uint64_t d = ev.data.u64;
        *i = d & 0xffffffffu;
        return *i < conns_.size() && conns_[*i].gen == (d >> 32) && conns_[*i].fd;
    }

private:
    // Closes connection i and forgets what was queued or in flight on it.
    void discard(size_t i)
    {
        Conn& c = conns_[i];
        if (c.state == Conn::kConnecting)
            pending_connects_--;
        if (c.fd)
            epoll_ctl(ep_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
        c.fd.reset();
        c.state = Conn::kClosed;
        c.gen++;
        c.out.clear();
        c.out_off = 0;
        c.expect.clear();
        c.exp_off = c.head = 0;
        c.inflight.clear();
        c.want_out = false;
        c.http.reset();
        c.closing = false;
    }

    Options o_;
    Totals* t_;
    zan::InetAddr addr_;
    zan::Fd ep_;
    std::vector<Conn> conns_;
    int pending_connects_ = 0;
    int diagnostics_ = 0;
};

}  // namespace zan_bench

#endif
