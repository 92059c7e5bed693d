// zan-bench: a wrk-like load generator for raw TCP. One thread, one epoll
// set, C keep-alive connections; each connection keeps up to D requests in
// flight (closed loop), and every reply is compared byte for byte with what
// the server must answer. Request i of connection c carries "c<c>-s<i>-" at
// the front of its text, so a reply that reaches the wrong connection, or
// the right one out of order, is an error too.
//
//   line framing    request = text + '\n'           (BYTES in all)
//   length framing  request = 4-byte big-endian length + text (BYTES in all)
//   --payload echo  reply must equal the request
//   --payload task  request "task <text>\n", reply "task-done <text>\n"
//                   (zan-echod: Worker -> TaskWorker -> on_finish)
//
// An error (connect failure or timeout, reset, EOF, a wrong byte, a reply
// that does not come within --reply-timeout) is counted, the connection is
// closed and opened again; its requests in flight are lost, not retried.
// The run ends at the deadline (--duration) or when --requests replies are
// in, and never later than --max-time seconds.
//
// --idle-connections N --hold S opens N connections (optionally one HTTP
// GET each, answer read to the end), prints "idle: N connections open",
// holds them S seconds (or until SIGTERM/SIGINT) and closes them: the
// memory scenario of tools/bench.sh.
//
// Owns every socket it opens; nothing survives the process. Exit status 0
// when no error was seen, 1 after errors, 2 on bad usage.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <deque>
#include <string>
#include <vector>

#include "zan/fd.h"
#include "zan/inet_addr.h"
#include "zan/socket.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

long long now_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    int connections = 10;
    double duration = 0;  // seconds; 0 with requests == 0 means 10 s
    long long requests = 0;
    int size = 64;
    bool length_framing = false;
    int pipeline = 1;
    bool task = false;
    bool json = false;
    bool verbose = false;  // up to 1000 error messages instead of 5
    int idle = 0;
    double hold = 10;
    bool idle_http = false;
    int connect_timeout_ms = 3000;
    int reply_timeout_ms = 5000;
    double max_time = 120;
};

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
            if (seen >= want)
                return mid(i);
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

struct Inflight {
    long long sent_ns;
    size_t reply_len;
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
};

class Bench {
public:
    explicit Bench(const Options& o) : o_(o), conns_(o.idle ? o.idle : o.connections) {}
    int run();

private:
    bool open(size_t i);
    void fail(size_t i, const char* why);
    void on_event(size_t i, uint32_t ev);
    bool poll_once(std::vector<struct epoll_event>* evs, int timeout_ms);
    void on_connected(size_t i);
    void on_readable(size_t i);
    bool verify(size_t i, const char* p, size_t n);
    bool verify_http(size_t i, const char* p, size_t n);
    void fill(size_t i);
    void add_request(Conn& c, size_t i);
    bool flush(size_t i);
    bool set_out(size_t i, bool on);
    void sweep(long long now);
    bool may_issue() const { return !draining_ && (o_.requests == 0 || issued_ < o_.requests); }
    int run_idle();
    void report(double secs) const;

    Options o_;
    zan::InetAddr addr_;
    zan::Fd ep_;
    std::vector<Conn> conns_;
    Histogram hist_;
    std::vector<char> rbuf_ = std::vector<char>(256 * 1024);
    long long issued_ = 0, completed_ = 0, lost_ = 0, errors_ = 0, reconnects_ = 0;
    long long bytes_out_ = 0, bytes_in_ = 0, peer_closed_ = 0;
    int pending_connects_ = 0;
    int diagnostics_ = 0;
    bool draining_ = false;
};

bool Bench::open(size_t i)
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

// Counts an error, drops what was in flight and schedules a reconnect with
// a back-off that grows with consecutive failures (1 ms .. 256 ms).
void Bench::fail(size_t i, const char* why)
{
    Conn& c = conns_[i];
    int err = errno;
    errors_++;
    lost_ += static_cast<long long>(c.inflight.size());
    if (diagnostics_ < (o_.verbose ? 1000 : 5)) {
        diagnostics_++;
        fprintf(stderr, "zan-bench: connection %zu: %s%s%s\n", i, why, err ? ": " : "",
                err ? strerror(err) : "");
    }
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
    c.failures = c.failures < 8 ? c.failures + 1 : 8;
    c.retry_ns = now_ns() + (1000000LL << c.failures) / 2;
    if (o_.idle && c.failures >= 3)  // idle mode: give a connection 3 tries
        c.retry_ns = LLONG_MAX;
    errno = 0;
}

bool Bench::set_out(size_t i, bool on)
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
bool Bench::flush(size_t i)
{
    Conn& c = conns_[i];
    while (c.out_off < c.out.size()) {
        ssize_t n = send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c.out_off += static_cast<size_t>(n);
            bytes_out_ += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return set_out(i, true);
        } else {
            fail(i, "send()");
            return false;
        }
    }
    c.out.clear();
    c.out_off = 0;
    return set_out(i, false);
}

// Appends request number c.seq and the reply it must get.
void Bench::add_request(Conn& c, size_t i)
{
    char tag[64];
    int tl = snprintf(tag, sizeof(tag), "c%zu-s%lld-", i, c.seq);
    size_t text_len;
    if (o_.length_framing)
        text_len = static_cast<size_t>(o_.size) - 4;
    else if (o_.task)
        text_len = static_cast<size_t>(o_.size) - 6;  // "task " + text + "\n"
    else
        text_len = static_cast<size_t>(o_.size) - 1;
    std::string text(text_len, 'x');
    for (size_t k = 0; k < text_len; k++)
        text[k] = k < static_cast<size_t>(tl) ? tag[k] : static_cast<char>('a' + (c.seq + k) % 26);
    size_t before = c.expect.size();
    if (o_.length_framing) {
        unsigned char h[4] = {static_cast<unsigned char>(text_len >> 24),
                              static_cast<unsigned char>(text_len >> 16),
                              static_cast<unsigned char>(text_len >> 8),
                              static_cast<unsigned char>(text_len)};
        c.out.append(reinterpret_cast<char*>(h), 4).append(text);
        c.expect.append(reinterpret_cast<char*>(h), 4).append(text);
    } else if (o_.task) {
        c.out.append("task ").append(text).push_back('\n');
        c.expect.append("task-done ").append(text).push_back('\n');
    } else {
        c.out.append(text).push_back('\n');
        c.expect.append(text).push_back('\n');
    }
    long long now = now_ns();
    if (c.inflight.empty())
        c.since_ns = now;  // the reply timeout runs from here
    c.inflight.push_back({now, c.expect.size() - before});
    c.seq++;
    issued_++;
}

void Bench::fill(size_t i)
{
    Conn& c = conns_[i];
    while (c.inflight.size() < static_cast<size_t>(o_.pipeline) && may_issue())
        add_request(c, i);
    if (c.out_off < c.out.size())
        flush(i);
}

// Matches n received bytes against the replies due; records each reply
// that is now complete. False (after fail()) on a wrong or surplus byte.
bool Bench::verify(size_t i, const char* p, size_t n)
{
    Conn& c = conns_[i];
    size_t due = c.expect.size() - c.exp_off;
    const char* want = c.expect.data() + c.exp_off;
    if (n > due || memcmp(want, p, n) != 0) {
        size_t k = 0;
        while (k < n && k < due && want[k] == p[k])
            k++;
        errno = 0;
        char exp[16] = "nothing";
        if (k < due)
            snprintf(exp, sizeof(exp), "0x%02x", static_cast<unsigned char>(want[k]));
        char why[160];
        snprintf(why, sizeof(why), "reply byte %zu is 0x%02x, expected %s",
                 c.exp_off - c.head + k, static_cast<unsigned char>(p[k]), exp);
        fail(i, why);
        return false;
    }
    c.exp_off += n;
    long long now = now_ns();
    while (!c.inflight.empty() && c.exp_off - c.head >= c.inflight.front().reply_len) {
        hist_.record(now - c.inflight.front().sent_ns);
        c.head += c.inflight.front().reply_len;
        c.inflight.pop_front();
        completed_++;
    }
    if (c.head == c.expect.size()) {
        c.expect.clear();
        c.exp_off = c.head = 0;
    } else if (c.head > 64 * 1024) {
        c.expect.erase(0, c.head);
        c.exp_off -= c.head;
        c.head = 0;
    }
    c.since_ns = now;
    c.failures = 0;
    return true;
}

// Idle mode: reads one HTTP response (headers + Content-Length body).
bool Bench::verify_http(size_t i, const char* p, size_t n)
{
    Conn& c = conns_[i];
    c.expect.append(p, n);  // the response so far
    size_t end = c.expect.find("\r\n\r\n");
    if (end == std::string::npos)
        return true;
    if (c.expect.compare(0, 12, "HTTP/1.1 200") != 0 && c.expect.compare(0, 12, "HTTP/1.0 200") != 0) {
        errno = 0;
        fail(i, "HTTP answer is not 200");
        return false;
    }
    size_t body = 0;
    for (size_t k = 0; k < end; k++) {
        if (strncasecmp(c.expect.c_str() + k, "\r\ncontent-length:", 17) == 0) {
            body = strtoul(c.expect.c_str() + k + 17, nullptr, 10);
            break;
        }
    }
    if (c.expect.size() >= end + 4 + body) {
        c.expect.clear();
        c.expect.shrink_to_fit();
        c.state = Conn::kReady;
        completed_++;
    }
    return true;
}

void Bench::on_connected(size_t i)
{
    Conn& c = conns_[i];
    int err = zan::socket_error(c.fd.get());
    if (err != 0) {
        errno = err;
        fail(i, "connect()");
        return;
    }
    pending_connects_--;
    zan::set_tcp_nodelay(c.fd.get(), true);
    c.state = Conn::kOpen;
    c.since_ns = now_ns();
    if (set_out(i, false) == false)
        return;
    if (o_.idle == 0) {
        fill(i);
    } else if (o_.idle_http) {
        c.out = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        flush(i);
    } else {
        c.state = Conn::kReady;
    }
}

void Bench::on_readable(size_t i)
{
    Conn& c = conns_[i];
    uint32_t gen = c.gen;
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = recv(c.fd.get(), rbuf_.data(), rbuf_.size(), 0);
        if (n > 0) {
            bytes_in_ += n;
            bool ok;
            if (o_.idle == 0)
                ok = verify(i, rbuf_.data(), static_cast<size_t>(n));
            else if (c.state == Conn::kOpen)
                ok = verify_http(i, rbuf_.data(), static_cast<size_t>(n));
            else
                ok = (errno = 0, fail(i, "unexpected data on an idle connection"), false);
            if (!ok)
                return;
            if (static_cast<size_t>(n) < rbuf_.size())
                break;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else {
            if (n == 0) {
                errno = 0;
                peer_closed_++;
            }
            fail(i, n == 0 ? "closed by the server" : "recv()");
            return;
        }
    }
    if (o_.idle == 0 && c.gen == gen)
        fill(i);
}

// One epoll_wait and the events it returns; false on failure (not EINTR).
bool Bench::poll_once(std::vector<struct epoll_event>* evs, int timeout_ms)
{
    int n = epoll_wait(ep_.get(), evs->data(), static_cast<int>(evs->size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
        perror("zan-bench: epoll_wait");
        return false;
    }
    for (int k = 0; k < n; k++) {
        uint64_t d = (*evs)[static_cast<size_t>(k)].data.u64;
        size_t i = d & 0xffffffffu;
        if (i < conns_.size() && conns_[i].gen == (d >> 32) && conns_[i].fd)
            on_event(i, (*evs)[static_cast<size_t>(k)].events);
    }
    return true;
}

void Bench::on_event(size_t i, uint32_t ev)
{
    Conn& c = conns_[i];
    if (c.state == Conn::kConnecting) {
        on_connected(i);
        return;
    }
    uint32_t gen = c.gen;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(i);
    if ((ev & EPOLLOUT) && c.gen == gen && c.fd)
        flush(i);
}

// Timeouts, and reconnects of closed connections whose back-off is over.
void Bench::sweep(long long now)
{
    for (size_t i = 0; i < conns_.size(); i++) {
        Conn& c = conns_[i];
        if (c.state == Conn::kConnecting && now - c.since_ns > o_.connect_timeout_ms * 1000000LL) {
            errno = ETIMEDOUT;
            fail(i, "connect()");
        } else if (c.state == Conn::kOpen && (!c.inflight.empty() || o_.idle) &&
                   now - c.since_ns > o_.reply_timeout_ms * 1000000LL) {
            errno = ETIMEDOUT;
            fail(i, "waiting for the reply");
        }
        if (c.state == Conn::kClosed && now >= c.retry_ns && !draining_ &&
            (o_.idle == 0 || pending_connects_ < 128)) {
            reconnects_++;
            open(i);
        }
    }
}

int Bench::run()
{
    if (!zan::InetAddr::parse(o_.host, static_cast<uint16_t>(o_.port), &addr_)) {
        fprintf(stderr, "zan-bench: bad host %s\n", o_.host.c_str());
        return 2;
    }
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!ep_) {
        perror("zan-bench: epoll_create1");
        return 1;
    }
    if (o_.idle)
        return run_idle();
    long long start = now_ns();
    long long cap = start + static_cast<long long>(o_.max_time * 1e9);
    long long end = o_.requests ? cap : start + static_cast<long long>(o_.duration * 1e9);
    if (end > cap)
        end = cap;
    for (size_t i = 0; i < conns_.size(); i++)
        open(i);
    std::vector<struct epoll_event> evs(512);
    long long next_sweep = start + 20000000LL;
    long long now = start;
    while (!g_stop) {
        now = now_ns();
        if (now >= end)
            break;
        if (o_.requests && issued_ >= o_.requests && completed_ + lost_ >= issued_)
            break;
        if (now >= next_sweep) {
            sweep(now);
            next_sweep = now + 20000000LL;
        }
        int timeout = static_cast<int>((std::min(end, next_sweep) - now) / 1000000) + 1;
        if (!poll_once(&evs, timeout))
            return 1;
    }
    draining_ = true;
    report(static_cast<double>(std::min(now_ns(), end) - start) / 1e9);
    return errors_ || completed_ == 0 ? 1 : 0;
}

// Opens o_.idle connections (at most 128 connecting at once), optionally
// makes one HTTP request on each, then holds them.
int Bench::run_idle()
{
    long long start = now_ns();
    long long cap = start + static_cast<long long>(o_.max_time * 1e9);
    std::vector<struct epoll_event> evs(512);
    size_t next = 0;
    long long ready_ns = 0, hold_end = 0;
    while (!g_stop) {
        long long now = now_ns();
        if (now >= cap || (hold_end && now >= hold_end))
            break;
        while (!hold_end && next < conns_.size() && pending_connects_ < 128)
            open(next++);
        size_t ready = 0, given_up = 0;
        for (const Conn& c : conns_) {
            ready += c.state == Conn::kReady;
            given_up += c.state == Conn::kClosed && c.retry_ns == LLONG_MAX;
        }
        if (!hold_end && next == conns_.size() && ready + given_up == conns_.size()) {
            ready_ns = now;
            hold_end = now + static_cast<long long>(o_.hold * 1e9);
            printf("idle: %zu connections open in %.0f ms, %zu given up\n", ready,
                   (now - start) / 1e6, given_up);
            fflush(stdout);
        }
        if (!poll_once(&evs, 20))
            return 1;
        if (!hold_end)
            sweep(now_ns());
    }
    size_t open_now = 0;
    for (const Conn& c : conns_)
        open_now += c.state == Conn::kReady;
    double setup_ms = ready_ns ? (ready_ns - start) / 1e6 : -1;
    if (o_.json)
        printf("{\"idle_connections\":%d,\"open_at_end\":%zu,\"errors\":%lld,"
               "\"closed_by_server\":%lld,\"setup_ms\":%.1f}\n",
               o_.idle, open_now, errors_, peer_closed_, setup_ms);
    else
        printf("idle: %d wanted, %zu open at the end, %lld errors, %lld closed by the server, "
               "setup %.1f ms\n",
               o_.idle, open_now, errors_, peer_closed_, setup_ms);
    return ready_ns && errors_ == 0 ? 0 : 1;
}

void Bench::report(double secs) const
{
    double rps = secs > 0 ? completed_ / secs : 0;
    const char* framing = o_.length_framing ? "length" : "line";
    const char* payload = o_.task ? "task" : "echo";
    if (o_.json) {
        printf("{\"host\":\"%s\",\"port\":%d,\"connections\":%d,\"size\":%d,\"framing\":\"%s\","
               "\"pipeline\":%d,\"payload\":\"%s\",\"duration_s\":%.3f,\"requests\":%lld,"
               "\"errors\":%lld,\"lost\":%lld,\"reconnects\":%lld,\"rps\":%.1f,"
               "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
               "\"bytes_sent\":%lld,\"bytes_received\":%lld}\n",
               o_.host.c_str(), o_.port, o_.connections, o_.size, framing, o_.pipeline, payload,
               secs, completed_, errors_, lost_, reconnects_, rps, hist_.quantile(0.50) / 1e3,
               hist_.quantile(0.90) / 1e3, hist_.quantile(0.99) / 1e3, hist_.max() / 1e3,
               bytes_out_, bytes_in_);
        return;
    }
    printf("zan-bench %s:%d: %d connections, %s framing, %d B requests, pipeline %d, %s\n",
           o_.host.c_str(), o_.port, o_.connections, framing, o_.size, o_.pipeline, payload);
    printf("  %lld requests in %.2f s, %lld errors, %lld lost in flight, %lld reconnects\n",
           completed_, secs, errors_, lost_, reconnects_);
    printf("  %.1f requests/s, %.2f MB/s out, %.2f MB/s in\n", rps,
           secs > 0 ? bytes_out_ / secs / 1e6 : 0.0, secs > 0 ? bytes_in_ / secs / 1e6 : 0.0);
    printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", hist_.quantile(0.50) / 1e3,
           hist_.quantile(0.90) / 1e3, hist_.quantile(0.99) / 1e3, hist_.max() / 1e3);
}

[[noreturn]] void usage()
{
    fprintf(stderr,
            "usage: zan-bench --port P [--host H] [--connections C] [--duration S | --requests N]\n"
            "                 [--size BYTES] [--framing line|length] [--pipeline D]\n"
            "                 [--payload echo|task] [--connect-timeout MS] [--reply-timeout MS]\n"
            "                 [--max-time S] [--json] [--verbose]\n"
            "       zan-bench --port P --idle-connections N [--hold S] [--idle-http] [--json]\n");
    exit(2);
}

bool parse_num(const char* s, double lo, double hi, double* out)
{
    char* end = nullptr;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

Options parse_args(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--json") { o.json = true; continue; }
        if (a == "--idle-http") { o.idle_http = true; continue; }
        if (a == "--verbose") { o.verbose = true; continue; }
        if (a == "-h" || a == "--help" || i + 1 >= argc)
            usage();
        const char* v = argv[++i];
        double d = 0;
        bool ok = true;
        if (a == "--host") o.host = v;
        else if (a == "--framing" && (!strcmp(v, "line") || !strcmp(v, "length"))) o.length_framing = v[1] == 'e';
        else if (a == "--payload" && (!strcmp(v, "echo") || !strcmp(v, "task"))) o.task = v[0] == 't';
        else if (a == "--port" && (ok = parse_num(v, 1, 65535, &d))) o.port = static_cast<int>(d);
        else if (a == "--connections" && (ok = parse_num(v, 1, 100000, &d))) o.connections = static_cast<int>(d);
        else if (a == "--duration" && (ok = parse_num(v, 0.001, 86400, &d))) o.duration = d;
        else if (a == "--requests" && (ok = parse_num(v, 1, 1e15, &d))) o.requests = static_cast<long long>(d);
        else if (a == "--size" && (ok = parse_num(v, 1, 16 << 20, &d))) o.size = static_cast<int>(d);
        else if (a == "--pipeline" && (ok = parse_num(v, 1, 4096, &d))) o.pipeline = static_cast<int>(d);
        else if (a == "--connect-timeout" && (ok = parse_num(v, 1, 600000, &d))) o.connect_timeout_ms = static_cast<int>(d);
        else if (a == "--reply-timeout" && (ok = parse_num(v, 1, 600000, &d))) o.reply_timeout_ms = static_cast<int>(d);
        else if (a == "--max-time" && (ok = parse_num(v, 0.001, 86400, &d))) o.max_time = d;
        else if (a == "--idle-connections" && (ok = parse_num(v, 1, 1000000, &d))) o.idle = static_cast<int>(d);
        else if (a == "--hold" && (ok = parse_num(v, 0, 86400, &d))) o.hold = d;
        else ok = false;
        if (!ok) {
            fprintf(stderr, "zan-bench: bad option or value: %s %s\n", a.c_str(), v);
            usage();
        }
    }
    if (o.port == 0)
        usage();
    int min_size = o.length_framing ? 5 : o.task ? 7 : 2;
    if (o.size < min_size) {
        fprintf(stderr, "zan-bench: --size must be at least %d for this framing and payload\n", min_size);
        exit(2);
    }
    if (o.task && o.length_framing) {
        fprintf(stderr, "zan-bench: --payload task needs line framing\n");
        exit(2);
    }
    if (o.duration == 0 && o.requests == 0)
        o.duration = 10;
    return o;
}

// Each connection needs a descriptor: lift the soft limit to the hard one.
void raise_fd_limit(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want + 16)
        fprintf(stderr, "zan-bench: warning: open file limit %llu is below %zu connections\n",
                static_cast<unsigned long long>(rl.rlim_cur), want);
}

}  // namespace

int main(int argc, char** argv)
{
    Options o = parse_args(argc, argv);
    struct sigaction sa = {};
    sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(static_cast<size_t>(o.idle ? o.idle : o.connections));
    Bench b(o);
    return b.run();
}
