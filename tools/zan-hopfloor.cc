// zan-hopfloor: the floor of the pre-fork hop, for tools/bench.sh.
//
// zan's process model puts a hop between the process that owns a
// connection (a NetWorker) and the one that makes the reply (a Worker).
// This program is that hop and nothing else: N pairs of processes, a
// "front" that accepts, reads, finds request heads and writes replies, and
// a "back" that turns each request into "HTTP/1.1 200 OK ... hello\n",
// joined by two single-producer rings in shared memory, with one eventfd
// write only when the peer said it may sleep, and before a front says so,
// a sched_yield() while its back is awake (zan's wake-up protocol and its
// cooperative wait, ServerConfig::hop_yield; --hop-yield N, default 1),
// fronts with the short time slice of a NetWorker (net_worker_slice_us;
// --slice-us US, default 100, 0: the kernel's). No
// framework, no sessions, no callbacks, no timers, no body support: what a
// server of this model cannot go below on a given machine, as zan-baseline
// is the floor of a single process. Request heads travel in records of at
// most 16 KiB (a longer head closes the connection), so that the replies
// to one record always fit the reply ring.
//
//   zan-hopfloor [--host H] [--port P] [--pairs N] [--strict] [--hop-yield N]
//                [--slice-us US]
//
// --strict adds the HTTP work no conforming server of this model can skip:
// the front validates each message with zan's parser (framing mode, as a
// NetWorker does) and passes it on alone; the back cuts it up with
// HttpParser::load(), applies the server's refusals and answers with
// Server and Date lines. Without it the front only looks for "\r\n\r\n".
//
// Prints "listening on H:P" when every pair is ready; exits 0 on SIGTERM or
// SIGINT after stopping its children. The parent owns the listening
// socket, the shared mapping and the eventfds (inherited by the children);
// each front owns its accepted connections. Connections are shared out
// evenly: a front accepts only while it holds no more than any other.
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "tools/floor_conns.h"
#include "tools/server_options.h"
#include "zan/fd.h"
#include "zan/http_parser.h"
#include "zan/http_server.h"
#include "zan/inet_addr.h"
#include "zan/detail/shm.h"
#include "zan/socket.h"
#include "zan/sys.h"

namespace {

volatile sig_atomic_t g_stop = 0;
bool g_strict = false;  // --strict: the HTTP work a conforming server cannot skip
long g_yield = 1;       // --hop-yield: turns of the cooperative wait
long g_slice_us = 100;  // --slice-us: a front's time slice (0: the kernel's)
void on_signal(int) { g_stop = 1; }

constexpr size_t kRingBytes = 1 << 18;      // per ring, a power of two
// Request bytes per ring record: a record's replies (at most 113 bytes for
// each head of at least 18) must fit the reply ring whole.
constexpr size_t kMaxRecord = 16 << 10;
constexpr int kMaxPairs = 16;
// Longest block in epoll_wait: a SIGTERM that lands after the loop looked
// at g_stop but before epoll_wait began (say, during a sched_yield) would
// otherwise leave the process blocked for ever.
constexpr int kStopCheckMs = 100;

// A single-producer, single-consumer byte ring. Records are
// [fd u32][generation u32][length u32][pad u32][bytes], padded to 8.
struct Ring {
    alignas(64) std::atomic<uint64_t> tail;  // bytes ever published
    alignas(64) std::atomic<uint64_t> head;  // bytes ever consumed
    alignas(64) std::atomic<int> sleeping;   // the consumer may be in epoll_wait
    alignas(64) char data[kRingBytes];
};
struct Shared {
    Ring req[kMaxPairs];    // front k -> back k
    Ring rep[kMaxPairs];    // back k -> front k
    std::atomic<int> conns[kMaxPairs];  // connections held by front k
};
struct RecHead {
    uint32_t fd, gen, len, pad;
};

size_t padded(size_t n) { return (n + 7) & ~size_t{7}; }

void ring_copy_in(Ring& r, uint64_t at, const void* p, size_t n)
{
    size_t off = at & (kRingBytes - 1), first = n < kRingBytes - off ? n : kRingBytes - off;
    memcpy(r.data + off, p, first);
    memcpy(r.data, static_cast<const char*>(p) + first, n - first);
}
void ring_copy_out(const Ring& r, uint64_t at, void* p, size_t n)
{
    size_t off = at & (kRingBytes - 1), first = n < kRingBytes - off ? n : kRingBytes - off;
    memcpy(p, r.data + off, first);
    memcpy(static_cast<char*>(p) + first, r.data, n - first);
}

// The producer's side: records are written at `pending`, published (and
// the consumer woken if it sleeps) by publish().
class Producer {
public:
    Producer(Ring* r, int wake_fd) : r_(r), wake_(wake_fd), pending_(r->tail.load()) {}
    bool room(size_t n) const
    {
        return pending_ + sizeof(RecHead) + padded(n) - r_->head.load(std::memory_order_acquire) <= kRingBytes;
    }
    void put(uint32_t fd, uint32_t gen, const char* p, size_t n)
    {
        RecHead h = {fd, gen, static_cast<uint32_t>(n), 0};
        ring_copy_in(*r_, pending_, &h, sizeof h);
        ring_copy_in(*r_, pending_ + sizeof h, p, n);
        pending_ += sizeof h + padded(n);
    }
    // True when there was something to publish.
    bool publish()
    {
        if (pending_ == r_->tail.load(std::memory_order_relaxed))
            return false;
        r_->tail.store(pending_, std::memory_order_seq_cst);
        if (r_->sleeping.load(std::memory_order_seq_cst) && r_->sleeping.exchange(0)) {
            uint64_t one = 1;
            while (write(wake_, &one, sizeof one) < 0 && errno == EINTR) {
            }
        }
        return true;
    }

private:
    Ring* r_;
    int wake_;
    uint64_t pending_;
};

// The consumer's side: calls f(fd, gen, bytes, len) for every published record.
template <class F>
void consume(Ring& r, std::string& scratch, F f)
{
    uint64_t head = r.head.load(std::memory_order_relaxed);
    uint64_t tail = r.tail.load(std::memory_order_acquire);
    while (head != tail) {
        RecHead h;
        ring_copy_out(r, head, &h, sizeof h);
        scratch.resize(h.len);
        ring_copy_out(r, head + sizeof h, scratch.data(), h.len);
        head += sizeof h + padded(h.len);
        f(h.fd, h.gen, scratch.data(), scratch.size());
    }
    r.head.store(head, std::memory_order_release);
}

// zan's cooperative wait (Channel::yield_to_peers), a front's: while the
// peer, the consumer of `peer_in`, is awake, give up the CPU up to g_yield
// times before saying we may sleep. True as soon as `in` holds records.
bool yield_to_peer(const Ring& in, const Ring& peer_in)
{
    for (long t = 0; t < g_yield && !peer_in.sleeping.load(std::memory_order_relaxed); t++) {
        sched_yield();
        if (in.tail.load(std::memory_order_acquire) != in.head.load(std::memory_order_relaxed))
            return true;
    }
    return false;
}

// Says "I may sleep" and then looks once more: true if the ring is still
// empty, so that epoll_wait may block (a producer publishing after this
// sees the flag and writes the eventfd).
bool may_sleep(Ring& r)
{
    r.sleeping.store(1, std::memory_order_seq_cst);
    if (r.tail.load(std::memory_order_seq_cst) != r.head.load(std::memory_order_relaxed)) {
        r.sleeping.store(0, std::memory_order_relaxed);
        return false;
    }
    return true;
}

// Tells the parent this process is set up (one byte on the ready pipe).
void say_ready(int ready_fd)
{
    char c = 1;
    while (write(ready_fd, &c, 1) < 0 && errno == EINTR) {
    }
    close(ready_fd);
}

// --strict, the back: what a Worker of a conforming server must do with a
// message its front validated: cut it up (HttpParser::load), refuse what
// a server refuses, and answer with a Date line.
class StrictBack {
public:
    void answer(const char* p, size_t n, std::string* out)
    {
        if (!parser_.load(p, n))
            parser_.feed(p, n);
        const zan::HttpRequest& r = parser_.request();
        bool hello = parser_.state() == zan::HttpParser::kComplete && r.refusal_status() == 0 &&
                     r.path == "/" && r.method == "GET";
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME_COARSE, &ts);
        if (ts.tv_sec != sec_) {
            sec_ = ts.tv_sec;
            date_ = "Server: zan-floor\r\nDate: " + zan::HttpServer::http_date(ts.tv_sec) + "\r\n";
        }
        out->append(hello ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n");
        out->append(date_);
        out->append(hello ? "Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n"
                          : "Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n");
    }

private:
    zan::HttpParser parser_;
    time_t sec_ = 0;
    std::string date_;
};

// The back: a Worker's part of the hop.
int run_back(Shared* sh, int k, int my_wake, int front_wake, int ready_fd)
{
    zan::Fd ep(epoll_create1(EPOLL_CLOEXEC));
    if (!ep || zan_floor::epoll_add(ep.get(), my_wake, EPOLLIN | EPOLLET) < 0)
        return 1;
    say_ready(ready_fd);
    Producer out(&sh->rep[k], front_wake);
    StrictBack strict;
    std::string scratch, reply;
    struct epoll_event evs[8];
    while (!g_stop) {
        consume(sh->req[k], scratch, [&](uint32_t fd, uint32_t gen, const char* p, size_t n) {
            reply.clear();
            if (g_strict)
                strict.answer(p, n, &reply);  // exactly one message
            else
                zan_floor::answer_heads(p, n, &reply);  // one or more complete heads
            while (!out.room(reply.size()) && !g_stop) {  // the front drains it
                out.publish();
                sched_yield();
            }
            out.put(fd, gen, reply.data(), reply.size());
        });
        out.publish();
        if (!may_sleep(sh->req[k]))
            continue;
        int n = epoll_wait(ep.get(), evs, 8, kStopCheckMs);
        sh->req[k].sleeping.store(0, std::memory_order_relaxed);
        if (n < 0 && errno != EINTR)
            return 1;
    }
    return 0;
}

// The front: a NetWorker's part of the hop.
class Front {
public:
    Front(Shared* sh, int k, int pairs, int listen_fd, int my_wake, int back_wake)
        : sh_(sh), k_(k), pairs_(pairs), listen_(listen_fd), my_wake_(my_wake),
          out_(&sh->req[k], back_wake) {}
    int run(int ready_fd);

private:
    bool my_turn() const;
    void accept_conn();
    size_t take_heads(int fd, const char* p, size_t n);
    size_t take_messages(int fd, const char* p, size_t n);
    bool pass_on(int fd, const char* p, size_t len);
    void take_replies();

    Shared* sh_;
    int k_, pairs_, listen_, my_wake_;
    Producer out_;
    zan::Fd ep_;
    zan::Fd spare_{::open("/dev/null", O_RDONLY | O_CLOEXEC)};  // see accept_one()
    zan_floor::ConnTable conns_;  // after ep_: closes its descriptors first
    std::string scratch_;
    std::string replies_;  // take_replies(): one connection's consecutive replies
    zan::HttpParser parser_{zan::HttpLimits(), false};  // --strict framing
};

bool Front::my_turn() const
{
    int mine = sh_->conns[k_].load(std::memory_order_relaxed);
    for (int i = 0; i < pairs_; i++)
        if (sh_->conns[i].load(std::memory_order_relaxed) < mine)
            return false;
    return true;
}

void Front::accept_conn()
{
    if (!my_turn())
        return;
    int fd = zan_floor::accept_one(listen_, &spare_);
    if (fd < 0)
        return;  // another front took it, or refused for want of descriptors
    conns_.add(fd);
    sh_->conns[k_].store(static_cast<int>(conns_.open_count()), std::memory_order_relaxed);
}

// Passes the complete request heads at p to the back, in records of at
// most kMaxRecord bytes cut between heads. A head longer than that closes
// the connection (a floor, not a server).
// Puts one record for fd in the request ring, waiting for room (taking
// the back's replies meanwhile). False when it was not put: a reply's
// write failed and closed fd, or a stop.
bool Front::pass_on(int fd, const char* p, size_t len)
{
    while (!out_.room(len) && !g_stop) {
        out_.publish();
        take_replies();
        sched_yield();
    }
    if (!conns_.is_open(fd) || g_stop)
        return false;
    out_.put(static_cast<uint32_t>(fd), conns_.gen(fd), p, len);
    conns_[fd].inflight++;
    return true;
}

size_t Front::take_heads(int fd, const char* p, size_t n)
{
    if (g_strict)
        return take_messages(fd, p, n);
    size_t used = zan_floor::complete_heads(p, n);
    if (used == 0 && n > kMaxRecord) {
        conns_.close(fd);
        return 0;
    }
    for (size_t at = 0; at < used && conns_.is_open(fd) && !g_stop;) {
        size_t len = zan_floor::complete_heads(p + at, std::min(used - at, kMaxRecord));
        if (len == 0) {
            conns_.close(fd);
            return used;
        }
        if (!pass_on(fd, p + at, len))
            break;
        at += len;
    }
    return used;
}

// --strict: each complete message, validated by zan's parser (framing
// mode, as a NetWorker does), goes to the back as one record; bad input
// closes the connection. A partial message is parsed again from its start
// when more arrives (rare here: one read holds whole requests).
size_t Front::take_messages(int fd, const char* p, size_t n)
{
    size_t used = 0;
    while (used < n && conns_.is_open(fd) && !g_stop) {
        parser_.reset_connection();
        size_t len = parser_.feed(p + used, n - used);
        if (parser_.state() == zan::HttpParser::kError || len > kMaxRecord) {
            conns_.close(fd);
            return used;
        }
        if (parser_.state() != zan::HttpParser::kComplete)
            break;
        if (!pass_on(fd, p + used, len))
            break;
        used += len;
    }
    return used;
}

// Consecutive records for one connection (--strict sends a record per
// message) go out in one write, as zan coalesces a connection's replies.
void Front::take_replies()
{
    int cur = -1;
    replies_.clear();
    auto send_cur = [&] {
        if (cur >= 0 && !replies_.empty() && conns_.is_open(cur))
            conns_.send(cur, replies_.data(), replies_.size());
        replies_.clear();
    };
    consume(sh_->rep[k_], scratch_, [&](uint32_t fd, uint32_t gen, const char* p, size_t n) {
        int f = static_cast<int>(fd);
        if (!conns_.is_open(f) || conns_.gen(f) != gen)  // it closed meanwhile
            return;
        conns_[f].inflight--;
        if (f != cur) {
            send_cur();
            cur = f;
        }
        replies_.append(p, n);
    });
    send_cur();
}

int Front::run(int ready_fd)
{
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!ep_ || zan_floor::epoll_add(ep_.get(), listen_, EPOLLIN) < 0 ||
        zan_floor::epoll_add(ep_.get(), my_wake_, EPOLLIN | EPOLLET) < 0)
        return 1;
    conns_.attach(ep_.get());
    say_ready(ready_fd);
    struct epoll_event evs[256];
    int timeout = 0;
    bool handed = false;  // published records since we last said we may sleep
    while (!g_stop) {
        int n = epoll_wait(ep_.get(), evs, 256, timeout);
        sh_->rep[k_].sleeping.store(0, std::memory_order_relaxed);
        if (n < 0 && errno != EINTR)
            return 1;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == listen_) {
                accept_conn();
                continue;
            }
            if (fd == my_wake_ || !conns_.is_open(fd))
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conns_.read(fd, [&](const char* p, size_t m) { return take_heads(fd, p, m); });
            if ((evs[i].events & EPOLLOUT) && conns_.is_open(fd) && conns_.wants_out(fd))
                conns_.on_writable(fd);
        }
        handed = out_.publish() || handed;
        take_replies();
        sh_->conns[k_].store(static_cast<int>(conns_.open_count()), std::memory_order_relaxed);
        if (handed && yield_to_peer(sh_->rep[k_], sh_->req[k_])) {
            timeout = 0;
            continue;
        }
        handed = false;
        timeout = may_sleep(sh_->rep[k_]) ? kStopCheckMs : 0;
    }
    return 0;
}

[[noreturn]] void usage()
{
    fprintf(stderr, "usage: zan-hopfloor [--host H] [--port P] [--pairs N] [--strict] [--hop-yield N]\n"
                    "                    [--slice-us US]\n");
    exit(2);
}

// Forks one child that runs f and exits with its status. Returns its pid.
template <class F>
pid_t spawn(F f)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(0);
        _exit(f());
    }
    return pid;
}

// Forks the pairs (a back and a front each) and waits until every child
// says it is set up. Returns false if one failed before that.
bool start_pairs(Shared* sh, int pairs, int listen_fd, std::vector<pid_t>* kids)
{
    std::vector<zan::Fd> front_wake, back_wake;
    for (int k = 0; k < pairs; k++) {
        front_wake.emplace_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        back_wake.emplace_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!front_wake.back() || !back_wake.back()) {
            perror("zan-hopfloor: eventfd");
            return false;
        }
    }
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) {
        perror("zan-hopfloor: pipe2");
        return false;
    }
    zan::Fd ready_rd(ready[0]), ready_wr(ready[1]);
    for (int k = 0; k < pairs; k++) {
        int fw = front_wake[static_cast<size_t>(k)].get(), bw = back_wake[static_cast<size_t>(k)].get();
        kids->push_back(spawn([&] { return run_back(sh, k, bw, fw, ready[1]); }));
        kids->push_back(spawn([&] {
            if (g_slice_us > 0 && zan::set_sched_slice(static_cast<int>(g_slice_us)) < 0)
                perror("zan-hopfloor: sched_setattr");
            Front f(sh, k, pairs, listen_fd, fw, bw);
            return f.run(ready[1]);
        }));
    }
    ready_wr.reset();  // from now on EOF means every child wrote or died
    size_t ready_n = 0;
    char buf[kMaxPairs * 2];
    while (ready_n < kids->size() && !g_stop) {
        ssize_t n = read(ready_rd.get(), buf, sizeof buf);
        if (n > 0)
            ready_n += static_cast<size_t>(n);
        else if (n == 0 || errno != EINTR)
            break;
    }
    return ready_n == kids->size();
}

// Until SIGTERM or SIGINT, or a child's exit (a floor does not re-fork);
// then stops and reaps the children. Returns the exit code.
int supervise(const std::vector<pid_t>& kids, int code)
{
    while (!g_stop && code == 0) {
        int st;
        pid_t p = wait(&st);
        if (p > 0) {
            fprintf(stderr, "zan-hopfloor: child %d exited\n", static_cast<int>(p));
            code = 1;
        } else if (errno == ECHILD) {
            break;
        }
    }
    for (pid_t p : kids)
        if (p > 0)
            kill(p, SIGTERM);
    while (wait(nullptr) > 0 || errno == EINTR) {
    }
    return code;
}

}  // namespace

int main(int argc, char** argv)
{
    std::string host = "127.0.0.1";
    long port = 9600, pairs = 1;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--host" && i + 1 < argc) host = argv[++i];
        else if (a == "--port" && i + 1 < argc) {
            if (!zan_tools::parse_number(argv[++i], 0, 65535, &port))
                usage();
        } else if (a == "--pairs" && i + 1 < argc) {
            if (!zan_tools::parse_number(argv[++i], 1, kMaxPairs, &pairs))
                usage();
        } else if (a == "--strict") {
            g_strict = true;
        } else if (a == "--hop-yield" && i + 1 < argc) {
            if (!zan_tools::parse_number(argv[++i], 0, 64, &g_yield))
                usage();
        } else if (a == "--slice-us" && i + 1 < argc) {
            if (!zan_tools::parse_number(argv[++i], 0, zan::kSchedSliceMaxUs, &g_slice_us) ||
                (g_slice_us > 0 && g_slice_us < zan::kSchedSliceMinUs))
                usage();
        } else usage();
    }
    std::optional<zan::InetAddr> parsed = zan::InetAddr::parse(host, static_cast<uint16_t>(port));
    if (!parsed) {
        fprintf(stderr, "zan-hopfloor: bad host %s\n", host.c_str());
        return 1;
    }
    std::string err;
    zan::Fd listen = zan::listen_tcp(*parsed, 4096, false, &err);
    if (!listen) {
        fprintf(stderr, "zan-hopfloor: %s\n", err.c_str());
        return 1;
    }
    // Zero-filled: empty rings, nobody sleeping. Pages are touched only as
    // the rings are used (no constructor runs over them).
    zan::ShmRegion shm;
    if (!shm.create(sizeof(Shared))) {
        perror("zan-hopfloor: mmap");
        return 1;
    }
    Shared* sh = static_cast<Shared*>(shm.data());
    struct sigaction sa = {};
    sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::vector<pid_t> kids;
    int code = 0;
    if (start_pairs(sh, static_cast<int>(pairs), listen.get(), &kids)) {
        printf("listening on %s\n", zan::local_addr(listen.get()).to_string().c_str());
        fflush(stdout);
    } else if (!g_stop) {
        fprintf(stderr, "zan-hopfloor: a child failed to start\n");
        code = 1;
    }
    return supervise(kids, code);
}
