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
// Owns the listening socket and every accepted one (zan_floor::ConnTable,
// shared with zan-hopfloor). Per connection it keeps a table entry and,
// only while a message is partial or a write is pending, a heap buffer
// (released again once empty).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "tools/floor_conns.h"
#include "tools/server_options.h"
#include "zan/fd.h"
#include "zan/inet_addr.h"
#include "zan/socket.h"

namespace {

enum Mode { kHttp, kLines, kLength };

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
// Longest block in epoll_wait: a SIGTERM that lands after the loop looked
// at g_stop but before epoll_wait began would otherwise be lost.
constexpr int kStopCheckMs = 100;

class Baseline {
public:
    explicit Baseline(Mode m) : mode_(m) {}
    bool start(const std::string& host, int port);
    int run();

private:
    void accept_all();
    void on_readable(int fd);
    size_t frame(const char* p, size_t n, std::string* reply);

    Mode mode_;
    zan::Fd listen_;
    zan::Fd ep_;
    zan::Fd spare_;  // /dev/null, given up to accept-and-close on EMFILE
    zan_floor::ConnTable conns_;  // after ep_: closes its descriptors first
    std::string reply_;  // reused for every read
};

bool Baseline::start(const std::string& host, int port)
{
    std::optional<zan::InetAddr> parsed = zan::InetAddr::parse(host, static_cast<uint16_t>(port));
    if (!parsed) {
        fprintf(stderr, "zan-baseline: bad host %s\n", host.c_str());
        return false;
    }
    std::string err;
    listen_ = zan::listen_tcp(*parsed, 4096, false, &err);
    if (!listen_) {
        fprintf(stderr, "zan-baseline: %s\n", err.c_str());
        return false;
    }
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    spare_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!ep_ || zan_floor::epoll_add(ep_.get(), listen_.get(), EPOLLIN) < 0) {
        perror("zan-baseline: epoll");
        return false;
    }
    conns_.attach(ep_.get());
    printf("listening on %s\n", zan::local_addr(listen_.get()).to_string().c_str());
    fflush(stdout);
    return true;
}

void Baseline::accept_all()
{
    for (;;) {
        int fd = zan_floor::accept_one(listen_.get(), &spare_);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EMFILE && errno != ENFILE)
                perror("zan-baseline: accept4");
            return;
        }
        if (!conns_.add(fd))
            perror("zan-baseline: epoll_ctl");
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
        used = zan_floor::complete_heads(p, n);
        zan_floor::answer_heads(p, used, reply);
    }
    return used;
}

void Baseline::on_readable(int fd)
{
    reply_.clear();
    bool open = conns_.read(fd, [&](const char* p, size_t n) { return frame(p, n, &reply_); });
    if (open && !reply_.empty())
        conns_.send(fd, reply_.data(), reply_.size());
}

int Baseline::run()
{
    struct epoll_event evs[256];
    while (!g_stop) {
        int n = epoll_wait(ep_.get(), evs, 256, kStopCheckMs);
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
            if (!conns_.is_open(fd))  // closed earlier in this pass
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(fd);
            if ((evs[i].events & EPOLLOUT) && conns_.is_open(fd) && conns_.wants_out(fd))
                conns_.on_writable(fd);
        }
    }
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
