#include "t/forked_server.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "t/test_env.h"

namespace zt {

::testing::AssertionResult ForkedServer::start(zan::ServerConfig cfg, const Setup& setup)
{
    int rep[2], trg[2];
    if (dir_.path.empty() || ::pipe2(rep, O_CLOEXEC) < 0)
        return ::testing::AssertionFailure() << "no temp dir or pipe";
    if (::pipe2(trg, O_CLOEXEC) < 0) {
        ::close(rep[0]);
        ::close(rep[1]);
        return ::testing::AssertionFailure() << "pipe2() failed";
    }
    log_path_ = dir_.path + "/zan.log";
    cfg.log_file = log_path_;
    pid_ = ::fork();
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        // The heap came with the test process (fork): give its free
        // pages back, so that what the server processes allocate
        // shows in their RSS (the leak checks read it).
        ::malloc_trim(0);
        ::close(rep[0]);
        ::close(trg[1]);
        ::fcntl(trg[0], F_SETFL, O_NONBLOCK);
        Ends e{rep[1], trg[0]};
        int rc = 1;
        try {
            zan::TcpServer srv(cfg);
            if (srv.listen("127.0.0.1", 0)) {
                srv.on_start([e](zan::TcpServer& s) { report(e.report, "port " + std::to_string(s.port())); });
                setup(srv, e);
                rc = srv.start();
            }
        } catch (...) {
            rc = 1;
        }
        _exit(rc);
    }
    ::close(rep[1]);
    ::close(trg[0]);
    report_rd_.reset(rep[0]);
    trigger_wr_.reset(trg[1]);
    if (pid_ < 0)
        return ::testing::AssertionFailure() << "fork() failed";
    std::string line;
    if (!take("port ", &line, 10000))
        return ::testing::AssertionFailure() << "the server did not start\n" << log();
    port_ = static_cast<int>(word_num(line, 1));
    guard(descendants_of(pid_));
    return ::testing::AssertionSuccess();
}

bool ForkedServer::trigger(char c) { return ::write(trigger_wr_.get(), &c, 1) == 1; }

bool ForkedServer::matches(const std::string& line, const std::string& prefix)
{
    return line.rfind(prefix, 0) == 0 &&
           (line.size() == prefix.size() || prefix.empty() || prefix.back() == ' ' || line[prefix.size()] == ' ');
}

bool ForkedServer::take(const std::string& prefix, std::string* line, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        for (auto it = unread_.begin(); it != unread_.end(); ++it) {
            if (matches(*it, prefix)) {
                *line = *it;
                unread_.erase(it);
                return true;
            }
        }
        if (!fill(deadline))
            return false;
    }
}

int ForkedServer::count(const std::string& prefix)
{
    while (fill(0)) {
    }
    int n = 0;
    for (const auto& l : all_)
        n += matches(l, prefix);
    return n;
}

std::string ForkedServer::reports()
{
    count("");
    std::string s;
    for (const auto& l : all_)
        s += l + "\n";
    return s;
}

int ForkedServer::stop(int timeout_ms, long long* took_ms)
{
    if (pid_ <= 0)
        return -1;
    guard(descendants_of(pid_));
    long long t0 = now_ms();
    ::kill(pid_, SIGTERM);
    int st = 0;
    bool done = reap_by(pid_, &st, now_ms() + scaled(timeout_ms));
    if (took_ms)
        *took_ms = now_ms() - t0;
    if (!done) {
        kill_all(false);
        return -1;
    }
    pid_ = -1;
    return st;
}

// One read of the report pipe; false on timeout or end of file.
bool ForkedServer::fill(long long deadline)
{
    if (eof_)
        return false;
    int left = static_cast<int>(std::max(0LL, deadline - now_ms()));
    if (!wait_fd(report_rd_.get(), POLLIN, left))
        return false;
    char buf[4096];
    ssize_t n = ::read(report_rd_.get(), buf, sizeof(buf));
    if (n <= 0) {
        eof_ = n == 0 || errno != EINTR;
        return !eof_;
    }
    buf_.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = buf_.find('\n')) != std::string::npos;) {
        all_.push_back(buf_.substr(0, nl));
        unread_.push_back(all_.back());
        buf_.erase(0, nl + 1);
    }
    return true;
}

// SIGTERM (unless `term` is false) and up to 5 s for the Master to
// stop; then SIGKILL for its children first, while it still reaps
// them (the zombie of an orphan may never be reaped here), and for it.
void ForkedServer::kill_all(bool term)
{
    if (pid_ <= 0)
        return;
    guard(descendants_of(pid_));
    int st;
    if (term) {
        ::kill(pid_, SIGTERM);
        if (reap_by(pid_, &st, now_ms() + scaled(5000))) {
            pid_ = -1;
            return;
        }
    }
    for (pid_t d : descendants_of(pid_))
        ::kill(d, SIGKILL);
    eventually([&] { return children_of(pid_).empty(); }, 2000);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
}

zan::ServerConfig forked_server_config(int workers)
{
    zan::ServerConfig cfg;
    cfg.worker_num = workers;
    cfg.net_worker_num = 1;
    cfg.task_worker_num = 0;
    cfg.max_wait_time = 1;
    cfg.open_eof_check = true;
    cfg.package_eof = "\n";
    cfg.log_level = zan::Level::info;
    return cfg;
}

void report(int fd, const std::string& line)
{
    std::string l = line + "\n";
    ssize_t n = ::write(fd, l.data(), l.size());
    (void)n;
}

std::vector<std::string> words(const std::string& line)
{
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;)
        w.push_back(s);
    return w;
}

long long word_num(const std::string& line, size_t i)
{
    std::vector<std::string> w = words(line);
    return i < w.size() ? atoll(w[i].c_str()) : 0;
}

std::string line_of(std::string_view msg)
{
    std::string l(msg);
    if (!l.empty() && l.back() == '\n')
        l.pop_back();
    return l;
}

int occurrences(const std::string& text, const std::string& what)
{
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        n++;
    return n;
}

std::string pattern(size_t n, unsigned seed)
{
    std::string s(n, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = static_cast<char>((x >> 16) ^ (i >> 16));
    }
    return s;
}

long status_kb(pid_t pid, const char* field)
{
    std::string st = read_file("/proc/" + std::to_string(pid) + "/status");
    size_t at = st.find(std::string("\n") + field);
    return at == std::string::npos ? -1 : atol(st.c_str() + at + 1 + strlen(field));
}

char proc_state(pid_t pid)
{
    std::string st = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = st.rfind(')');
    return paren == std::string::npos || paren + 2 >= st.size() ? 0 : st[paren + 2];
}

int server_side_state(int port, int cport)
{
    std::istringstream in(read_file("/proc/net/tcp"));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        unsigned la, lp, ra, rp, st;
        if (sscanf(line.c_str(), " %*d: %8X:%4X %8X:%4X %2X", &la, &lp, &ra, &rp, &st) == 5 &&
            static_cast<int>(lp) == port && static_cast<int>(rp) == cport)
            return static_cast<int>(st);
    }
    return -1;
}

int local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    if (::getsockname(fd, reinterpret_cast<struct sockaddr*>(&a), &len) < 0)
        return -1;
    return ntohs(a.sin_port);
}

void reset_close(Sock* s)
{
    struct linger lg = {1, 0};
    ::setsockopt(s->get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    s->reset();
}

bool eventually(const std::function<bool()>& cond, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        if (cond())
            return true;
        if (now_ms() >= deadline)
            return false;
        ::usleep(2000);
    }
}

void Resume::now()
{
    if (pid_ > 0)
        ::kill(pid_, SIGCONT);
    pid_ = 0;
}

void block_forever()
{
    for (;;)
        ::pause();
}

}  // namespace zt
