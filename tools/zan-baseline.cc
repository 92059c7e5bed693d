// zan-baseline: the floor for tools/bench.sh. One process, one thread,
// level-triggered epoll, no zan process model: what a server costs when
// it does nothing but read, find message ends and write.
//
//   --http         answers every complete request head ("...\r\n\r\n") with
//                  a fixed keep-alive "HTTP/1.1 200 OK", body "hello\n", for
//                  "GET / " (404 for anything else); pipelined requests
//                  read together are answered with one write. Request
//                  bodies are not supported (it is a floor, not a server).
//   --echo-lines   echoes newline-terminated lines (partial lines wait)
//   --echo-length  echoes 4-byte big-endian length-prefixed frames
//
// Prints "listening on H:P" when ready; exits 0 on SIGTERM or SIGINT.
// Owns the listening socket and every accepted one. Per connection it
// keeps a table entry and, only while a message is partial or a write is
// pending, a heap buffer (released again once empty).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tools/server_options.h"
#include "zan/fd.h"
#include "zan/inet_addr.h"
#include "zan/socket.h"

namespace {

enum Mode { kHttp, kLines, kLength };

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

const char kHello[] =
    "HTTP/1.1 200 OK\r\nServer: zan-baseline\r\nContent-Type: text/plain\r\n"
    "Content-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n";
const char kNotFound[] =
    "HTTP/1.1 404 Not Found\r\nServer: zan-baseline\r\nContent-Type: text/plain\r\n"
    "Content-Length: 10\r\nConnection: keep-alive\r\n\r\nnot found\n";
constexpr size_t kMaxPending = 1 << 20;  // a partial message larger than this closes

struct Conn {
    bool open = false;
    bool want_out = false;
    std::string in;   // partial message
    std::string out;  // unwritten reply bytes
};

class Baseline {
public:
    explicit Baseline(Mode m) : mode_(m) {}
    bool start(const std::string& host, int port);
    int run();

private:
    void accept_all();
    void on_readable(int fd);
    void on_writable(int fd);
    size_t frame(const char* p, size_t n, std::string* reply);
    void send_reply(int fd, const std::string& reply);
    void close_conn(int fd);
    void set_out(int fd, bool on);

    Mode mode_;
    zan::Fd listen_;
    zan::Fd ep_;
    zan::Fd spare_;  // /dev/null, given up to accept-and-close on EMFILE
    std::vector<Conn> conns_;
    std::vector<char> rbuf_ = std::vector<char>(64 * 1024);
    std::string reply_;  // reused for every read
};

bool Baseline::start(const std::string& host, int port)
{
    zan::InetAddr addr;
    if (!zan::InetAddr::parse(host, static_cast<uint16_t>(port), &addr)) {
        fprintf(stderr, "zan-baseline: bad host %s\n", host.c_str());
        return false;
    }
    std::string err;
    listen_ = zan::listen_tcp(addr, 4096, false, &err);
    if (!listen_) {
        fprintf(stderr, "zan-baseline: %s\n", err.c_str());
        return false;
    }
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    spare_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = listen_.get();
    if (!ep_ || epoll_ctl(ep_.get(), EPOLL_CTL_ADD, listen_.get(), &ev) < 0) {
        perror("zan-baseline: epoll");
        return false;
    }
    printf("listening on %s\n", zan::local_addr(listen_.get()).to_string().c_str());
    fflush(stdout);
    return true;
}

void Baseline::accept_all()
{
    for (;;) {
        int fd = zan::accept_conn(listen_.get(), nullptr);
        if (fd < 0) {
            if ((errno == EMFILE || errno == ENFILE) && spare_) {
                spare_.reset();  // make room, refuse one client, keep the slot
                zan::Fd refused(zan::accept_conn(listen_.get(), nullptr));
                refused.reset();
                spare_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
            } else if (errno != EAGAIN) {
                perror("zan-baseline: accept4");
            }
            return;
        }
        if (static_cast<size_t>(fd) >= conns_.size())
            conns_.resize(static_cast<size_t>(fd) + 1024);
        zan::set_tcp_nodelay(fd, true);
        struct epoll_event ev = {};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("zan-baseline: epoll_ctl");
            close(fd);
            continue;
        }
        conns_[fd].open = true;
    }
}

// Appends the replies for the complete messages at p and returns the bytes
// they took; the rest is a partial message.
size_t Baseline::frame(const char* p, size_t n, std::string* reply)
{
    size_t used = 0;
    if (mode_ == kLines) {
        const void* nl = memrchr(p, '\n', n);
        if (nl) {
            used = static_cast<size_t>(static_cast<const char*>(nl) - p) + 1;
            reply->append(p, used);
        }
    } else if (mode_ == kLength) {
        while (n - used >= 4) {
            const unsigned char* h = reinterpret_cast<const unsigned char*>(p + used);
            size_t len = (size_t{h[0]} << 24) | (size_t{h[1]} << 16) | (size_t{h[2]} << 8) | h[3];
            if (n - used - 4 < len)
                break;
            reply->append(p + used, 4 + len);
            used += 4 + len;
        }
    } else {
        while (used < n) {
            const void* end = memmem(p + used, n - used, "\r\n\r\n", 4);
            if (!end)
                break;
            bool hello = n - used >= 6 && memcmp(p + used, "GET / ", 6) == 0;
            reply->append(hello ? kHello : kNotFound, hello ? sizeof(kHello) - 1 : sizeof(kNotFound) - 1);
            used = static_cast<size_t>(static_cast<const char*>(end) - p) + 4;
        }
    }
    return used;
}

void Baseline::on_readable(int fd)
{
    Conn& c = conns_[fd];
    ssize_t n;
    do
        n = read(fd, rbuf_.data(), rbuf_.size());
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        close_conn(fd);
        return;
    }
    reply_.clear();
    size_t len = static_cast<size_t>(n);
    if (c.in.empty()) {  // the common case: no copy of the request
        size_t used = frame(rbuf_.data(), len, &reply_);
        c.in.assign(rbuf_.data() + used, len - used);
    } else {
        c.in.append(rbuf_.data(), len);
        size_t used = frame(c.in.data(), c.in.size(), &reply_);
        c.in.erase(0, used);
    }
    if (c.in.size() > kMaxPending) {
        close_conn(fd);
        return;
    }
    if (c.in.empty() && c.in.capacity() > 15)
        std::string().swap(c.in);
    if (!reply_.empty())
        send_reply(fd, reply_);
}

void Baseline::send_reply(int fd, const std::string& reply)
{
    Conn& c = conns_[fd];
    if (!c.out.empty()) {  // still waiting for EPOLLOUT: keep the order
        c.out.append(reply);
        return;
    }
    ssize_t n;
    do
        n = send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) {
        close_conn(fd);
        return;
    }
    size_t done = n < 0 ? 0 : static_cast<size_t>(n);
    if (done < reply.size()) {
        c.out.assign(reply, done, std::string::npos);
        set_out(fd, true);
    }
}

void Baseline::on_writable(int fd)
{
    Conn& c = conns_[fd];
    ssize_t n;
    do
        n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n < 0) {
        close_conn(fd);
        return;
    }
    c.out.erase(0, static_cast<size_t>(n));
    if (c.out.empty()) {
        std::string().swap(c.out);
        set_out(fd, false);
    }
}

void Baseline::set_out(int fd, bool on)
{
    Conn& c = conns_[fd];
    if (c.want_out == on)
        return;
    struct epoll_event ev = {};
    ev.events = EPOLLIN | (on ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    ev.data.fd = fd;
    epoll_ctl(ep_.get(), EPOLL_CTL_MOD, fd, &ev);
    c.want_out = on;
}

void Baseline::close_conn(int fd)
{
    epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns_[fd] = Conn();
}

int Baseline::run()
{
    struct epoll_event evs[256];
    while (!g_stop) {
        int n = epoll_wait(ep_.get(), evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("zan-baseline: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == listen_.get()) {
                accept_all();
                continue;
            }
            if (!conns_[fd].open)  // closed earlier in this pass
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(fd);
            if ((evs[i].events & EPOLLOUT) && conns_[fd].open && !conns_[fd].out.empty())
                on_writable(fd);
        }
    }
    for (size_t fd = 0; fd < conns_.size(); fd++)
        if (conns_[fd].open)
            close_conn(static_cast<int>(fd));
    return 0;
}

[[noreturn]] void usage()
{
    fprintf(stderr, "usage: zan-baseline --http | --echo-lines | --echo-length [--host H] [--port P]\n");
    exit(2);
}

}  // namespace

int main(int argc, char** argv)
{
    std::string host = "127.0.0.1";
    int port = 9600;
    int mode = -1;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--http") mode = kHttp;
        else if (a == "--echo-lines") mode = kLines;
        else if (a == "--echo-length") mode = kLength;
        else if (a == "--host" && i + 1 < argc) host = argv[++i];
        else if (a == "--port" && i + 1 < argc) {
            long n = 0;
            if (!zan_tools::parse_number(argv[++i], 0, 65535, &n))
                usage();
            port = static_cast<int>(n);
        } else usage();
    }
    if (mode < 0)
        usage();
    struct sigaction sa = {};
    sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    Baseline b(static_cast<Mode>(mode));
    if (!b.start(host, port))
        return 1;
    return b.run();
}
