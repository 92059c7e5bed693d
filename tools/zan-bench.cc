// zan-bench: a wrk-like load generator for raw TCP and HTTP. One thread,
// one epoll set, C keep-alive connections; each connection keeps up to D
// requests in flight (closed loop), and every echo reply is compared byte
// for byte with what the server must answer. Request i of connection c
// carries "c<c>-s<i>-" at the front of its text, so a reply that reaches
// the wrong connection, or the right one out of order, is an error too.
// With --http the requests are GETs and each response must be a 200 whose
// end the framing gives (bench_http.h).
//
// --rate R is the open loop (bench_schedule.h): R requests a second in
// all, each sent when it is due (or as soon as its connection has room
// below D in flight), its latency counted from when it was due. How late
// the generator itself got to each request's due time is the schedule lag;
// when its 99th percentile is over --max-lag the run is invalid (exit 3).
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
// when no error was seen, 1 after errors, 2 on bad usage, 3 when an open
// loop run fell behind its schedule.
//
// This file is the traffic and the two run loops. The Makefile builds each
// tools/*.cc as a program of its own, so the other pieces are headers:
// bench_options.h (command line), bench_conn.h (the connections and their
// epoll set: connect, write, failure, back-off, timeouts), bench_protocol.h
// (echo requests and the replies they must get), bench_http.h (GET and its
// responses), bench_schedule.h (the open loop's timetable),
// bench_histogram.h (latency) and bench_report.h (what is printed).
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tools/bench_conn.h"
#include "tools/bench_histogram.h"
#include "tools/bench_http.h"
#include "tools/bench_options.h"
#include "tools/bench_protocol.h"
#include "tools/bench_report.h"
#include "tools/bench_schedule.h"

namespace {

using zan_bench::Conn;
using zan_bench::Options;
using zan_bench::Schedule;
using zan_bench::now_ns;

constexpr long long kSweepNs = 20000000LL;  // timeouts and reconnects: every 20 ms

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// One run: keeps the connections of net_ busy (or, in idle mode, open) and
// checks every byte that comes back. Single-threaded; owns, through net_,
// every socket it opens.
class Bench {
public:
    explicit Bench(const Options& o)
        : o_(o),
          net_(o, &t_),
          sched_(o.rate, net_.size(), o.requests),
          http_req_(zan_bench::http_request(o))
    {
    }
    int run();

private:
    bool poll_once(std::vector<struct epoll_event>* evs, int timeout_ms);
    void on_event(size_t i, uint32_t ev);
    void on_connected(size_t i);
    void on_readable(size_t i);
    bool consume(size_t i, const char* p, size_t n);
    bool verify(size_t i, const char* p, size_t n);
    bool verify_http(size_t i, const char* p, size_t n);
    bool verify_responses(size_t i, const char* p, size_t n);
    void replied(Conn& c, size_t k, long long now);
    void fill(size_t i);
    void add_request(Conn& c, size_t i, long long now, long long due_ns);
    bool may_issue() const { return !draining_ && (o_.requests == 0 || t_.issued < o_.requests); }
    bool all_replied() const
    {
        return o_.requests && t_.issued >= o_.requests && t_.completed + t_.lost >= t_.issued;
    }
    long long load_deadline(long long start) const;
    int run_load();
    int run_rate();
    bool connected() const;
    bool drained() const;
    int finish(long long start, long long stop_ns);
    int run_idle();
    bool idle_set_up(long long start, long long now) const;

    Options o_;
    zan_bench::Totals t_;
    zan_bench::ConnTable net_;
    zan_bench::Histogram hist_;
    Schedule sched_;
    zan_bench::Histogram lag_;  // --rate: how late the generator sent
    std::vector<size_t> touched_;  // --rate: connections given a due request
    std::string http_req_;
    std::vector<char> rbuf_ = std::vector<char>(256 * 1024);
    bool draining_ = false;
};

// Appends request number c.seq (and, for echo, the reply it must get);
// its latency runs from due_ns, or from now when that is 0.
void Bench::add_request(Conn& c, size_t i, long long now, long long due_ns)
{
    size_t before = c.expect.size();
    if (o_.http) {
        c.out += http_req_;
    } else {
        std::string text = zan_bench::request_text(i, c.seq, zan_bench::request_text_len(o_));
        zan_bench::append_request(o_, text, &c.out, &c.expect);
    }
    if (c.inflight.empty())
        c.since_ns = now;  // the reply timeout runs from here
    c.inflight.push_back({due_ns ? due_ns : now, c.expect.size() - before});
    c.seq++;
    t_.issued++;
}

// Queues what connection i may send now and writes it. Closed loop: up to
// --pipeline requests in flight. Open loop: the requests due on it, as far
// as --pipeline allows.
void Bench::fill(size_t i)
{
    Conn& c = net_[i];
    size_t depth = static_cast<size_t>(o_.pipeline);
    long long now = now_ns();
    if (o_.rate > 0) {
        while (c.sched_k < c.due_k && c.inflight.size() < depth && !c.closing) {
            long long due = sched_.intended_ns(i, c.sched_k++);
            add_request(c, i, now, due);
        }
    } else {
        while (c.inflight.size() < depth && may_issue() && !c.closing)
            add_request(c, i, now, 0);
    }
    if (c.out_off < c.out.size())
        net_.flush(i);
}

// The oldest k requests in flight on c are answered.
void Bench::replied(Conn& c, size_t k, long long now)
{
    for (; k > 0; k--) {
        hist_.record(now - c.inflight.front().sent_ns);
        c.inflight.pop_front();
        t_.completed++;
    }
    c.since_ns = now;
    c.failures = 0;
}

// --http: counts the responses the n bytes complete; false (after fail())
// if they are not 200s with a framing, or answer no request.
bool Bench::verify_responses(size_t i, const char* p, size_t n)
{
    Conn& c = net_[i];
    std::string why;
    int k = c.http.feed(p, n, &why);
    if (k < 0 || static_cast<size_t>(k) > c.inflight.size()) {
        errno = 0;
        net_.fail(i, k < 0 ? why.c_str() : "HTTP response to no request");
        return false;
    }
    if (k > 0 && c.http.closing())
        c.closing = true;  // send nothing more: the server closes
    replied(c, static_cast<size_t>(k), now_ns());
    return true;
}

// Matches n received bytes against the replies due; records each reply
// that is now complete. False (after fail()) on a wrong or surplus byte.
bool Bench::verify(size_t i, const char* p, size_t n)
{
    Conn& c = net_[i];
    char why[160];
    if (!zan_bench::match_reply(c.expect.data() + c.exp_off, c.expect.size() - c.exp_off, p, n,
                                c.exp_off - c.head, why, sizeof(why))) {
        errno = 0;
        net_.fail(i, why);
        return false;
    }
    c.exp_off += n;
    size_t k = 0;  // replies now complete
    while (k < c.inflight.size() && c.exp_off - c.head >= c.inflight[k].reply_len)
        c.head += c.inflight[k++].reply_len;
    replied(c, k, now_ns());
    if (c.head == c.expect.size()) {
        c.expect.clear();
        c.exp_off = c.head = 0;
    } else if (c.head > 64 * 1024) {  // drop checked replies now and then, not every time
        c.expect.erase(0, c.head);
        c.exp_off -= c.head;
        c.head = 0;
    }
    return true;
}

// Idle mode: reads one HTTP response (headers + Content-Length body).
bool Bench::verify_http(size_t i, const char* p, size_t n)
{
    Conn& c = net_[i];
    c.expect.append(p, n);  // the response so far
    zan_bench::HttpAnswer a = zan_bench::http_answer(c.expect);
    if (a == zan_bench::HttpAnswer::not_200) {
        errno = 0;
        net_.fail(i, "HTTP answer is not 200");
        return false;
    }
    if (a == zan_bench::HttpAnswer::complete) {
        c.expect.clear();
        c.expect.shrink_to_fit();
        c.state = Conn::kReady;
        t_.completed++;
    }
    return true;
}

void Bench::on_connected(size_t i)
{
    if (!net_.finish_connect(i))
        return;
    Conn& c = net_[i];
    if (o_.idle == 0) {
        fill(i);
    } else if (o_.idle_http) {
        c.out = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        net_.flush(i);
    } else {
        c.state = Conn::kReady;
    }
}

// Hands n received bytes to the check of this mode; false after fail().
bool Bench::consume(size_t i, const char* p, size_t n)
{
    if (o_.idle == 0)
        return o_.http ? verify_responses(i, p, n) : verify(i, p, n);
    if (net_[i].state == Conn::kOpen)
        return verify_http(i, p, n);
    errno = 0;
    net_.fail(i, "unexpected data on an idle connection");
    return false;
}

void Bench::on_readable(size_t i)
{
    Conn& c = net_[i];
    uint32_t gen = c.gen;
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = recv(c.fd.get(), rbuf_.data(), rbuf_.size(), 0);
        if (n > 0) {
            t_.bytes_in += n;
            if (!consume(i, rbuf_.data(), static_cast<size_t>(n)))
                return;
            if (static_cast<size_t>(n) < rbuf_.size())
                break;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else if (c.closing && (n == 0 || errno == ECONNRESET)) {
            net_.reopen(i);  // as the last response said (a reset: requests it never read)
            return;
        } else {
            if (n == 0) {
                errno = 0;
                t_.peer_closed++;
            }
            net_.fail(i, n == 0 ? "closed by the server" : "recv()");
            return;
        }
    }
    if (o_.idle == 0 && c.gen == gen)
        fill(i);
}

// One epoll_wait and the events it returns; false on failure (not EINTR).
bool Bench::poll_once(std::vector<struct epoll_event>* evs, int timeout_ms)
{
    int n = net_.wait(evs, timeout_ms);
    if (n < 0)
        return false;
    for (int k = 0; k < n; k++) {
        const struct epoll_event& ev = (*evs)[static_cast<size_t>(k)];
        size_t i = 0;
        if (ev.data.u64 == Schedule::kTimerTag) {
            sched_.fired();  // the loop hands out the due requests
            continue;
        }
        if (net_.current(ev, &i))  // checked just before: an earlier event may have closed it
            on_event(i, ev.events);
    }
    return true;
}

void Bench::on_event(size_t i, uint32_t ev)
{
    Conn& c = net_[i];
    if (c.state == Conn::kConnecting) {
        on_connected(i);
        return;
    }
    uint32_t gen = c.gen;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(i);
    if ((ev & EPOLLOUT) && c.gen == gen && c.fd)
        net_.flush(i);
}

int Bench::run()
{
    if (int rc = net_.start())
        return rc;
    if (o_.idle)
        return run_idle();
    return o_.rate > 0 ? run_rate() : run_load();
}

// When a load run stops: after --duration, or for --requests once they are
// in; never later than --max-time.
long long Bench::load_deadline(long long start) const
{
    long long cap = start + static_cast<long long>(o_.max_time * 1e9);
    long long end = o_.requests ? cap : start + static_cast<long long>(o_.duration * 1e9);
    return std::min(end, cap);
}

// Opens every connection at once and keeps them busy until the deadline,
// until --requests replies are in or lost, or until SIGTERM/SIGINT.
int Bench::run_load()
{
    long long start = now_ns();
    long long end = load_deadline(start);
    for (size_t i = 0; i < net_.size(); i++)
        net_.open(i);
    std::vector<struct epoll_event> evs(512);
    long long next_sweep = start + kSweepNs;
    while (!g_stop) {
        long long now = now_ns();
        if (now >= end || all_replied())
            break;
        if (now >= next_sweep) {
            net_.sweep(now, draining_);
            next_sweep = now + kSweepNs;
        }
        int timeout = static_cast<int>((std::min(end, next_sweep) - now) / 1000000) + 1;
        if (!poll_once(&evs, timeout))
            return 1;
    }
    draining_ = true;
    return finish(start, std::min(now_ns(), end));
}

// Prints the report of a load run from start to stop_ns; the exit status.
int Bench::finish(long long start, long long stop_ns)
{
    double secs = static_cast<double>(stop_ns - start) / 1e9;
    zan_bench::OpenLoop ol = {};
    if (o_.rate > 0) {
        ol.due = sched_.due();
        ol.lag_p99_us = lag_.quantile(0.99) / 1e3;
        ol.lag_max_us = lag_.max() / 1e3;
        ol.behind = ol.lag_p99_us > o_.max_lag_ms * 1e3;
    }
    zan_bench::print_report(o_, t_, hist_, secs, ol);
    if (t_.errors || t_.completed == 0)
        return 1;
    return ol.behind ? 3 : 0;
}

// Open loop: no connection is connecting any more.
bool Bench::connected() const
{
    for (const Conn& c : net_.all())
        if (c.state == Conn::kConnecting || c.state == Conn::kNew)
            return false;
    return true;
}

// Open loop, after the last slot: every request that was due has been
// answered or lost, or sits on a closed connection (not opened again now).
bool Bench::drained() const
{
    for (const Conn& c : net_.all()) {
        if (!c.inflight.empty() || c.state == Conn::kConnecting)
            return false;
        if (c.state == Conn::kOpen && (c.sched_k < c.due_k || c.closing))
            return false;
    }
    return true;
}

// The open loop: connects first, then hands out slot after slot as they
// fall due (Schedule) until the end of the run, then waits for the answers
// to everything that was due. Runs until --max-time at most.
int Bench::run_rate()
{
    std::vector<struct epoll_event> evs(512);
    long long t0 = now_ns();
    long long cap = t0 + static_cast<long long>(o_.max_time * 1e9);
    for (size_t i = 0; i < net_.size(); i++)
        net_.open(i);
    long long connect_end = t0 + o_.connect_timeout_ms * 1000000LL;
    while (!g_stop && !connected() && now_ns() < std::min(connect_end, cap))
        if (!poll_once(&evs, 10))
            return 1;
    long long start = now_ns();
    if (!sched_.start(net_.epoll_fd(), start, load_deadline(start)))
        return 1;
    long long next_sweep = start + kSweepNs, now = start;
    while (!g_stop) {
        now = now_ns();
        if (now >= cap)
            break;
        sched_.advance(now, [this, now](size_t i, long long due_ns) {
            lag_.record(now - due_ns);  // the generator's own lateness
            net_[i].due_k++;
            touched_.push_back(i);
        });
        for (size_t i : touched_)
            if (net_[i].state == Conn::kOpen)
                fill(i);
        touched_.clear();
        draining_ = sched_.over();  // no reconnects from here on
        if (draining_ && drained())
            break;
        if (now >= next_sweep) {
            net_.sweep(now, draining_);
            next_sweep = now + kSweepNs;
        }
        sched_.arm();  // the timer wakes the loop for the next slot
        if (!poll_once(&evs, static_cast<int>((next_sweep - now) / 1000000) + 1))
            return 1;
    }
    return finish(start, now);
}

// Idle mode: true, after printing the "open in" line, once every
// connection is ready or has been given up.
bool Bench::idle_set_up(long long start, long long now) const
{
    size_t ready = 0, given_up = 0;
    for (const Conn& c : net_.all()) {
        ready += c.state == Conn::kReady;
        given_up += c.state == Conn::kClosed && c.retry_ns == LLONG_MAX;
    }
    if (ready + given_up != net_.size())
        return false;
    zan_bench::print_idle_ready(ready, (now - start) / 1e6, given_up);
    return true;
}

// Opens o_.idle connections (at most kMaxConnecting connecting at once),
// optionally makes one HTTP request on each, then holds them.
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
        while (!hold_end && next < net_.size() &&
               net_.pending_connects() < zan_bench::kMaxConnecting)
            net_.open(next++);
        if (!hold_end && next == net_.size() && idle_set_up(start, now)) {
            ready_ns = now;
            hold_end = now + static_cast<long long>(o_.hold * 1e9);
        }
        if (!poll_once(&evs, 20))
            return 1;
        if (!hold_end)
            net_.sweep(now_ns(), draining_);
    }
    size_t open_now = 0;
    for (const Conn& c : net_.all())
        open_now += c.state == Conn::kReady;
    double setup_ms = ready_ns ? (ready_ns - start) / 1e6 : -1;
    zan_bench::print_idle_report(o_, t_, open_now, setup_ms);
    return ready_ns && t_.errors == 0 ? 0 : 1;
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
    Options o = zan_bench::parse_args(argc, argv);
    struct sigaction sa = {};
    sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(static_cast<size_t>(o.idle ? o.idle : o.connections));
    Bench b(o);
    return b.run();
}
