// Reliability scenarios of shared/research/reliability-scenarios.md that
// the other integration tests do not cover:
//   15  a reload goes past stuck Workers after max_wait_time;
//   20  a shutdown goes past a child that ignores or blocks SIGTERM;
//   22  a pipe message of several MB between Workers arrives intact;
//   29  a client that closes while the server still has output for it
//       costs nothing once it is gone, and the server keeps serving;
//   37  a reply to a closed connection never reaches the connection that
//       reuses its slot.
// Each test runs a library server (TcpServer) in a forked child that
// becomes its Master (ScenarioServer). Its callbacks write report lines
// to a pipe, which is the readiness signal the test waits on; its log
// goes to a file the test reads afterwards. Every wait has a deadline,
// and the server and every process it had are gone at the end of a test,
// also when an assertion fails. No SysV queue is made (no TaskWorkers).
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/helpers.h"
#include "zan/tcp_server.h"

namespace {

using zt::Sock;

// ---------------------------------------------------------------- helpers

// AddressSanitizer holds freed memory back (its quarantine), so a heap
// that does not shrink proves nothing there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizedHeap = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitizedHeap = true;
#else
constexpr bool kSanitizedHeap = false;
#endif
#else
constexpr bool kSanitizedHeap = false;
#endif

// One report line from a server process: a single write(2) of less than
// PIPE_BUF bytes, so lines of different processes never interleave.
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

// Word i of line as a number (0 when missing).
long long word_num(const std::string& line, size_t i)
{
    std::vector<std::string> w = words(line);
    return i < w.size() ? atoll(w[i].c_str()) : 0;
}

// A field of /proc/pid/status in kB ("RssAnon:"), -1 when unknown.
long status_kb(pid_t pid, const char* field)
{
    std::string st = zt::read_file("/proc/" + std::to_string(pid) + "/status");
    size_t at = st.find(std::string("\n") + field);
    return at == std::string::npos ? -1 : atol(st.c_str() + at + 1 + strlen(field));
}

// TCP state (the st column of /proc/net/tcp: 1 established, 3 SYN_RECV,
// ...) of the server side of the loopback connection from client port
// `cport` to `port`; -1 when the kernel lists no such socket (closed).
int server_side_state(int port, int cport)
{
    std::istringstream in(zt::read_file("/proc/net/tcp"));
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

// The state letter of /proc/pid/stat (R, S, T, Z, ...), 0 when gone.
char proc_state(pid_t pid)
{
    std::string st = zt::read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = st.rfind(')');
    return paren == std::string::npos || paren + 2 >= st.size() ? 0 : st[paren + 2];
}

// Sends SIGCONT to a process the test stopped, at the latest at scope exit.
class Resume {
public:
    explicit Resume(pid_t pid) : pid_(pid) {}
    ~Resume() { now(); }
    Resume(const Resume&) = delete;
    Resume& operator=(const Resume&) = delete;
    void now()
    {
        if (pid_ > 0)
            ::kill(pid_, SIGCONT);
        pid_ = 0;
    }

private:
    pid_t pid_;
};

// Polls `cond` (a state of /proc or of a socket that has no event to wait
// on) every 2 ms until it holds or timeout_ms passes.
bool eventually(const std::function<bool()>& cond, int timeout_ms)
{
    long long deadline = zt::now_ms() + timeout_ms;
    for (;;) {
        if (cond())
            return true;
        if (zt::now_ms() >= deadline)
            return false;
        ::usleep(2000);
    }
}

int occurrences(const std::string& text, const std::string& what)
{
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        n++;
    return n;
}

// Closes a client socket with a reset (SO_LINGER 0), as a client that
// goes away with replies unread does.
void reset_close(Sock* s)
{
    struct linger lg = {1, 0};
    ::setsockopt(s->get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    s->reset();
}

// n bytes that depend on their offset and on seed, so that a lost,
// repeated or misplaced fragment shows.
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

// A TcpServer in a forked child, which becomes its Master. setup() adds the
// callbacks there; they report through Ends::report, and the test can poke
// the server processes through Ends::trigger (non-blocking, read by
// whichever callback the test's setup polls it from). The Master reports
// "port <n>" from on_start, once every process is up. The destructor stops
// the server (SIGTERM, then SIGKILL for every process of the tree) and
// removes its log directory.
class ScenarioServer {
public:
    struct Ends {
        int report;   // write end of the report pipe
        int trigger;  // read end of the trigger pipe (O_NONBLOCK)
    };
    using Setup = std::function<void(zan::TcpServer&, const Ends&)>;

    ScenarioServer() = default;
    ~ScenarioServer() { kill_all(); }
    ScenarioServer(const ScenarioServer&) = delete;
    ScenarioServer& operator=(const ScenarioServer&) = delete;

    ::testing::AssertionResult start(zan::ServerConfig cfg, const Setup& setup)
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
            // shows in their RSS (the leak check of scenario 29).
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
        guard(zt::descendants_of(pid_));
        return ::testing::AssertionSuccess();
    }

    pid_t pid() const { return pid_; }
    int port() const { return port_; }
    std::string log() const { return zt::read_file(log_path_); }
    Sock connect() const { return Sock(zt::connect_local(port_)); }
    // The pid of the child named `name` (zan-net-0, ...), 0 when none.
    pid_t child(const std::string& name) const { return zt::find_by_name(pid_, name); }
    // Processes to SIGKILL at the end should they outlive the Master.
    void guard(pid_t p) { guard_.add(p); }
    void guard(const std::vector<pid_t>& ps) { guard_.add(ps); }
    bool trigger(char c) { return ::write(trigger_wr_.get(), &c, 1) == 1; }

    // True when line starts with the words of prefix: "close 1" matches
    // "close 1" and "close 1 x", not "close 12"; "close " any close line.
    static bool matches(const std::string& line, const std::string& prefix)
    {
        return line.rfind(prefix, 0) == 0 &&
               (line.size() == prefix.size() || prefix.empty() || prefix.back() == ' ' || line[prefix.size()] == ' ');
    }
    // Takes the first report line not taken yet that starts with prefix,
    // waiting for it at most timeout_ms; false on timeout, or when every
    // server process has closed the pipe.
    bool take(const std::string& prefix, std::string* line, int timeout_ms = 5000)
    {
        long long deadline = zt::now_ms() + timeout_ms;
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
    // Report lines so far (taken or not) that start with prefix (as take()).
    int count(const std::string& prefix)
    {
        while (fill(0)) {
        }
        int n = 0;
        for (const auto& l : all_)
            n += matches(l, prefix);
        return n;
    }
    std::string reports()
    {
        count("");
        std::string s;
        for (const auto& l : all_)
            s += l + "\n";
        return s;
    }

    // SIGTERM to the Master; its wait status once it has exited, with the
    // time it took in *took_ms, or -1 when it is still running after
    // timeout_ms (it is then killed with its whole tree).
    int stop(int timeout_ms, long long* took_ms = nullptr)
    {
        if (pid_ <= 0)
            return -1;
        guard(zt::descendants_of(pid_));
        long long t0 = zt::now_ms();
        ::kill(pid_, SIGTERM);
        int st = 0;
        bool done = eventually([&] { return ::waitpid(pid_, &st, WNOHANG) == pid_; }, timeout_ms);
        if (took_ms)
            *took_ms = zt::now_ms() - t0;
        if (!done) {
            kill_all(false);
            return -1;
        }
        pid_ = -1;
        return st;
    }

private:
    // One read of the report pipe; false on timeout or end of file.
    bool fill(long long deadline)
    {
        if (eof_)
            return false;
        int left = static_cast<int>(std::max(0LL, deadline - zt::now_ms()));
        if (!zt::wait_fd(report_rd_.get(), POLLIN, left))
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
    void kill_all(bool term = true)
    {
        if (pid_ <= 0)
            return;
        guard(zt::descendants_of(pid_));
        int st;
        if (term) {
            ::kill(pid_, SIGTERM);
            if (eventually([&] { return ::waitpid(pid_, &st, WNOHANG) == pid_; }, 5000)) {
                pid_ = -1;
                return;
            }
        }
        for (pid_t d : zt::descendants_of(pid_))
            ::kill(d, SIGKILL);
        eventually([&] { return zt::children_of(pid_).empty(); }, 2000);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
    }

    zt::TempDir dir_;  // removed last
    std::string log_path_;
    zt::PidGuard guard_;  // after kill_all(): children that outlived the Master
    pid_t pid_ = -1;
    int port_ = 0;
    Sock report_rd_, trigger_wr_;
    std::string buf_;
    std::vector<std::string> all_;
    std::deque<std::string> unread_;
    bool eof_ = false;
};

// Settings shared by the tests: one NetWorker, no TaskWorker, lines ending
// in '\n', and a short max_wait_time (1 s, the smallest).
zan::ServerConfig scenario_config(int workers)
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

std::string line_of(std::string_view msg)
{
    std::string l(msg);
    if (!l.empty() && l.back() == '\n')
        l.pop_back();
    return l;
}

// Blocks the calling process for good. SIGTERM is blocked in a Worker (its
// loop reads it from a signalfd), so only SIGKILL ends this.
[[noreturn]] void block_forever()
{
    for (;;)
        ::pause();
}

// ------------------------------------------------ 15: forced reload

// Scenario 15 (swoole force_reload.phpt). Four Workers are stuck in
// on_receive, where no stop request reaches them. SIGUSR1 forks a
// successor for each; once a successor is up, its predecessor is told to
// stop and is SIGKILLed max_wait_time (1 s) later. Every Worker is
// replaced within 3 s of the signal, not before max_wait_time; Workers
// start 2 x worker_num times in all; the clients of the stuck requests see
// their connection closed instead of hanging; the successors serve.
TEST(ServerScenarios, ReloadReplacesStuckWorkersAfterMaxWaitTime)
{
    const int kWorkers = 4;
    ScenarioServer srv;
    ASSERT_TRUE(srv.start(scenario_config(kWorkers), [](zan::TcpServer& s, const ScenarioServer::Ends& e) {
        int rep = e.report;
        s.on_worker_start([rep](zan::TcpServer&, int id) {
            report(rep, "start " + std::to_string(id) + " " + std::to_string(::getpid()));
        });
        s.on_receive([rep](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
            if (line_of(msg) == "block") {
                report(rep, "blocked " + std::to_string(s.worker_id()) + " " + std::to_string(::getpid()));
                block_forever();
            }
            s.send(id, "pid " + std::to_string(::getpid()) + "\n");
        });
    }));
    std::set<pid_t> old;
    for (int i = 0; i < kWorkers; i++) {
        std::string l;
        ASSERT_TRUE(srv.take("start ", &l)) << srv.reports();
        old.insert(static_cast<pid_t>(word_num(l, 2)));
    }
    // One connection per Worker (connections are homed on the Workers in
    // turn); each blocks its Worker.
    std::vector<Sock> stuck;
    for (int i = 0; i < kWorkers; i++) {
        stuck.push_back(srv.connect());
        ASSERT_TRUE(stuck.back().ok());
        ASSERT_TRUE(zt::send_str(stuck.back().get(), "block\n"));
    }
    std::set<pid_t> blocked;
    for (int i = 0; i < kWorkers; i++) {
        std::string l;
        ASSERT_TRUE(srv.take("blocked ", &l)) << "not every Worker got a block request\n" << srv.reports();
        blocked.insert(static_cast<pid_t>(word_num(l, 2)));
    }
    ASSERT_EQ(blocked, old);

    long long t0 = zt::now_ms();
    ASSERT_EQ(::kill(srv.pid(), SIGUSR1), 0);
    std::set<pid_t> fresh;
    for (int i = 0; i < kWorkers; i++) {
        std::string l;
        ASSERT_TRUE(srv.take("start ", &l, 3000)) << "successor " << i << " did not start\n" << srv.log();
        fresh.insert(static_cast<pid_t>(word_num(l, 2)));
        srv.guard(static_cast<pid_t>(word_num(l, 2)));
    }
    for (pid_t p : old)
        EXPECT_TRUE(zt::wait_gone(p, static_cast<int>(std::max(0LL, t0 + 3000 - zt::now_ms()))))
            << "stuck Worker " << p << " still runs 3 s after SIGUSR1\n" << srv.log();
    long long took = zt::now_ms() - t0;
    EXPECT_GE(took, 900) << "a stuck Worker was killed before max_wait_time";
    EXPECT_LE(took, 3000);
    // Logged before the kill; the deaths are logged once reaped (a
    // process that is gone may still be a zombie: poll the log).
    EXPECT_EQ(occurrences(srv.log(), "did not finish within max_wait_time: SIGKILL"), kWorkers) << srv.log();
    EXPECT_TRUE(eventually([&] { return occurrences(srv.log(), "killed by signal 9") == kWorkers; }, 2000))
        << srv.log();

    // The requests of the dead Workers are lost: their clients are told
    // by a close, not left waiting.
    for (auto& s : stuck)
        EXPECT_TRUE(zt::wait_closed(s.get(), 2000)) << "a client of a killed Worker hangs";
    // New connections are served, by the successors only.
    std::set<pid_t> served;
    for (int i = 0; i < kWorkers; i++) {
        Sock c = srv.connect();
        ASSERT_TRUE(c.ok());
        std::string r = zt::request(c.get(), "who", 3000);
        ASSERT_EQ(r.rfind("pid ", 0), 0u) << r;
        served.insert(static_cast<pid_t>(word_num(r, 1)));
    }
    EXPECT_EQ(served, fresh);
    EXPECT_EQ(srv.count("start "), 2 * kWorkers) << srv.reports();
    int st = srv.stop(5000);
    EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.log();
}

// ------------------------------------------------ 20: forced shutdown

// Scenario 20 (swoole user_process_force_exit.phpt). A UserWorker ignores
// SIGTERM and never returns from its callback. SIGTERM to the Master: the
// NetWorker drains at once (no clients), phase 2 asks every child to stop,
// and max_wait_time (1 s) later the UserWorker is SIGKILLed. The Master
// exits 0 about 1 s after the signal, and nothing of the server is left.
TEST(ServerScenarios, ShutdownKillsAUserWorkerThatIgnoresSigterm)
{
    ScenarioServer srv;
    ASSERT_TRUE(srv.start(scenario_config(1), [](zan::TcpServer& s, const ScenarioServer::Ends& e) {
        int rep = e.report;
        s.add_process([rep](zan::TcpServer&) {
            ::signal(SIGTERM, SIG_IGN);
            report(rep, "user " + std::to_string(::getpid()));
            block_forever();
        });
        s.on_receive([](zan::TcpServer& s, zan::SessionId id, std::string_view msg) { s.send(id, msg); });
    }));
    std::string l;
    ASSERT_TRUE(srv.take("user ", &l)) << srv.log();
    pid_t user = static_cast<pid_t>(word_num(l, 1));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(zt::request(c.get(), "hello"), "hello");
    c.reset();
    std::vector<pid_t> tree = zt::descendants_of(srv.pid());

    long long took = 0;
    int st = srv.stop(6000, &took);
    ASSERT_NE(st, -1) << "the Master did not exit within 6 s\n" << srv.log();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.log();
    EXPECT_GE(took, 900) << "killed before max_wait_time\n" << srv.log();
    EXPECT_LT(took, 3000) << "shutdown took far longer than max_wait_time\n" << srv.log();
    std::string log = srv.log();
    std::string want = "zan-user-0 (pid " + std::to_string(user) + ") did not stop within max_wait_time: SIGKILL";
    EXPECT_NE(log.find(want), std::string::npos) << log;
    EXPECT_NE(log.find("shutdown complete"), std::string::npos) << log;
    for (pid_t p : tree)
        EXPECT_FALSE(zt::pid_alive(p)) << "process " << p << " outlived the Master";
}

// Scenario 20, a Worker: stuck in on_receive (SIGTERM blocked, as in every
// Worker) while its client waits. Phase 1 cannot drain that client, so the
// NetWorker is SIGKILLed after max_wait_time; phase 2 then SIGKILLs the
// Worker after another max_wait_time. The Master exits 0 after about
// 2 x max_wait_time, and no process is left.
TEST(ServerScenarios, ShutdownKillsAWorkerStuckInACallback)
{
    ScenarioServer srv;
    ASSERT_TRUE(srv.start(scenario_config(1), [](zan::TcpServer& s, const ScenarioServer::Ends& e) {
        int rep = e.report;
        s.on_receive([rep](zan::TcpServer&, zan::SessionId, std::string_view) {
            report(rep, "blocked " + std::to_string(::getpid()));
            block_forever();
        });
    }));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "block\n"));
    std::string l;
    ASSERT_TRUE(srv.take("blocked ", &l)) << srv.log();
    pid_t worker = static_cast<pid_t>(word_num(l, 1));
    std::vector<pid_t> tree = zt::descendants_of(srv.pid());

    long long took = 0;
    int st = srv.stop(8000, &took);
    ASSERT_NE(st, -1) << "the Master did not exit within 8 s\n" << srv.log();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.log();
    EXPECT_GE(took, 1800) << srv.log();
    EXPECT_LT(took, 4000) << "shutdown took far longer than 2 x max_wait_time\n" << srv.log();
    std::string log = srv.log();
    std::string want = "zan-worker-0 (pid " + std::to_string(worker) + ") did not stop within max_wait_time: SIGKILL";
    EXPECT_NE(log.find(want), std::string::npos) << log;
    for (pid_t p : tree)
        EXPECT_FALSE(zt::pid_alive(p)) << "process " << p << " outlived the Master";
    EXPECT_TRUE(zt::wait_closed(c.get(), 1000));
}

// ------------------------------------------------ 22: big pipe messages

// What the Workers of the pipe-message test report: "pipe <me> from <src>
// seed <seed> len <n> ok|bad@<offset>" for each big message, and "tail
// <me> from <src> seed <seed> after-big <0|1>" for the small message sent
// right behind it.
void check_pipe_message(int rep, int me, int src, std::string_view data, std::set<unsigned>* seen)
{
    // "big <seed> <len>\n" + pattern(len, seed), or "tail <seed>".
    std::string head(data.substr(0, data.find('\n')));
    std::vector<std::string> w = words(head);
    if (w.size() == 2 && w[0] == "tail") {
        unsigned seed = static_cast<unsigned>(atol(w[1].c_str()));
        report(rep, "tail " + std::to_string(me) + " from " + std::to_string(src) + " seed " + w[1] +
                        " after-big " + (seen->count(seed) ? "1" : "0"));
        return;
    }
    if (w.size() != 3 || w[0] != "big" || head.size() == data.size()) {
        report(rep, "pipe " + std::to_string(me) + " from " + std::to_string(src) + " junk");
        return;
    }
    unsigned seed = static_cast<unsigned>(atol(w[1].c_str()));
    size_t len = static_cast<size_t>(atoll(w[2].c_str()));
    std::string_view body = data.substr(head.size() + 1);
    std::string want = pattern(len, seed);
    std::string verdict = "ok";
    if (body.size() != len) {
        verdict = "bad-length-" + std::to_string(body.size());
    } else if (body != want) {
        size_t i = 0;
        while (body[i] == want[i])
            i++;
        verdict = "bad@" + std::to_string(i);
    }
    seen->insert(seed);
    report(rep, "pipe " + std::to_string(me) + " from " + std::to_string(src) + " seed " + w[1] + " len " +
                    w[2] + " " + verdict);
}

std::string big_message(size_t len, unsigned seed)
{
    return "big " + std::to_string(seed) + " " + std::to_string(len) + "\n" + pattern(len, seed);
}

// Scenario 22 (swoole bigPipeMessage.phpt). A Worker sends 5 MiB + 3 bytes
// to the other Worker with send_message(), then a short message: the big
// one arrives whole and unchanged, and before the short one. Then the
// fragments of two senders interleave in one inbox: a UserWorker's 3 MiB
// + 5 arrive between the fragments of Worker 0's 12 MiB + 1 (stopping
// the processes in turn makes it so), while Worker 1 sends 9 MiB + 1 to
// Worker 0; every message arrives intact.
TEST(ServerScenarios, PipeMessagesOfSeveralMegabytesArriveIntact)
{
    zan::ServerConfig cfg = scenario_config(2);
    cfg.max_wait_time = 3;  // the UserWorker's send waits for room that long
    ScenarioServer srv;
    ASSERT_TRUE(srv.start(cfg, [](zan::TcpServer& s, const ScenarioServer::Ends& e) {
        int rep = e.report, trg = e.trigger;
        // Per Worker process: the seeds of the big messages received.
        auto seen = std::make_shared<std::set<unsigned>>();
        s.on_pipe_message([rep, seen](zan::TcpServer& s, int src, std::string_view data) {
            check_pipe_message(rep, s.worker_id(), src, data, seen.get());
        });
        s.on_receive([](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
            std::vector<std::string> w = words(line_of(msg));
            if (w.size() == 1 && w[0] == "whoami") {
                s.send(id, "worker " + std::to_string(s.worker_id()) + "\n");
            } else if (w.size() == 3 && w[0] == "big") {  // big <len> <seed>
                unsigned seed = static_cast<unsigned>(atol(w[2].c_str()));
                int other = 1 - s.worker_id();
                bool a = s.send_message(big_message(static_cast<size_t>(atoll(w[1].c_str())), seed), other);
                bool b = s.send_message("tail " + std::to_string(seed), other);
                s.send(id, std::string("queued ") + (a ? "1" : "0") + " " + (b ? "1" : "0") + "\n");
            } else {
                s.send(id, msg);
            }
        });
        // The UserWorker sends 3 MiB + 5 (seed 23) to Worker 1 when the
        // test writes 'U' to the trigger pipe.
        s.add_process([rep, trg](zan::TcpServer& s) {
            while (!s.stopping()) {
                struct pollfd p = {trg, POLLIN, 0};
                if (::poll(&p, 1, 100) <= 0)
                    continue;
                char c;
                if (::read(trg, &c, 1) != 1 || c != 'U')
                    continue;
                bool ok = s.send_message(big_message(3 * 1024 * 1024 + 5, 23), 1);
                report(rep, std::string("user-sent ") + (ok ? "1" : "0"));
            }
        });
    }));
    // A connection homed on each Worker.
    std::map<int, Sock> on;
    for (int i = 0; i < 6 && on.size() < 2; i++) {
        Sock c = srv.connect();
        ASSERT_TRUE(c.ok());
        std::string r = zt::request(c.get(), "whoami");
        ASSERT_EQ(r.rfind("worker ", 0), 0u) << r;
        on[static_cast<int>(word_num(r, 1))] = std::move(c);
    }
    ASSERT_EQ(on.size(), 2u);

    const std::string five = std::to_string(5 * 1024 * 1024 + 3);
    EXPECT_EQ(zt::request(on[0].get(), "big " + five + " 11"), "queued 1 1");
    std::string l;
    ASSERT_TRUE(srv.take("pipe ", &l)) << "the 5 MiB message did not arrive\n" << srv.log();
    EXPECT_EQ(l, "pipe 1 from 0 seed 11 len " + five + " ok");
    ASSERT_TRUE(srv.take("tail ", &l)) << srv.log();
    EXPECT_EQ(l, "tail 1 from 0 seed 11 after-big 1") << "the short message overtook the big one";

    // Interleaved fragments. Worker 1 is stopped while Worker 0 sends it
    // 12 MiB + 1: the first records fill Worker 1's inbox and Worker 0
    // keeps the rest. Then Worker 0 is stopped and Worker 1 resumed, and
    // the UserWorker's 3 MiB + 5 come in whole between Worker 0's first
    // fragments and the rest, which follow once Worker 0 runs again.
    // Meanwhile Worker 1 sends 9 MiB + 1 to the stopped Worker 0 (its
    // clients are still answered).
    pid_t w0 = srv.child("zan-worker-0"), w1 = srv.child("zan-worker-1");
    ASSERT_GT(w0, 0);
    ASSERT_GT(w1, 0);
    ASSERT_EQ(::kill(w1, SIGSTOP), 0);
    Resume resume1(w1);
    ASSERT_TRUE(eventually([&] { return proc_state(w1) == 'T'; }, 2000));
    const std::string twelve = std::to_string(12 * 1024 * 1024 + 1);
    const std::string nine = std::to_string(9 * 1024 * 1024 + 1);
    // Worker 0 answers after it has written what fits into the inbox.
    EXPECT_EQ(zt::request(on[0].get(), "big " + twelve + " 21"), "queued 1 1");
    ASSERT_EQ(::kill(w0, SIGSTOP), 0);
    Resume resume0(w0);
    ASSERT_TRUE(eventually([&] { return proc_state(w0) == 'T'; }, 2000));
    resume1.now();
    ASSERT_TRUE(srv.trigger('U'));
    ASSERT_TRUE(srv.take("user-sent ", &l)) << srv.log();
    EXPECT_EQ(l, "user-sent 1");
    ASSERT_TRUE(srv.take("pipe ", &l)) << srv.reports() << srv.log();
    EXPECT_EQ(l, "pipe 1 from 3 seed 23 len " + std::to_string(3 * 1024 * 1024 + 5) + " ok");
    EXPECT_EQ(zt::request(on[1].get(), "big " + nine + " 22"), "queued 1 1");
    EXPECT_EQ(zt::request(on[1].get(), "still answering"), "still answering");
    resume0.now();
    std::set<std::string> got;
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(srv.take("pipe ", &l)) << "a big message did not arrive\n" << srv.reports() << srv.log();
        got.insert(l);
    }
    EXPECT_EQ(got, (std::set<std::string>{"pipe 1 from 0 seed 21 len " + twelve + " ok",
                                          "pipe 0 from 1 seed 22 len " + nine + " ok"}));
    std::set<std::string> tails;
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(srv.take("tail ", &l)) << srv.reports();
        tails.insert(l);
    }
    EXPECT_EQ(tails, (std::set<std::string>{"tail 1 from 0 seed 21 after-big 1",
                                            "tail 0 from 1 seed 22 after-big 1"}));
    EXPECT_EQ(srv.log().find("send_message()"), std::string::npos) << srv.log();
    int st = srv.stop(5000);
    EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.log();
}

// ------------------------------------------------ 29: close with output pending

// Scenario 29 (swoole client_close_in_writable_event.phpt). A client asks
// for 8 x 2 MiB and reads nothing (a 16 KiB receive buffer), then closes,
// which resets the connection with 12 MiB or more still queued in the
// NetWorker. Eight rounds. Each time on_close runs exactly once and the
// NetWorker lets go of the socket; afterwards its descriptor count is back
// where it was, its heap has not grown round after round (no output
// buffer kept), connection_num and close_count add up, the NetWorker is
// the same process and the server serves.
TEST(ServerScenarios, ClientClosingWithOutputPendingLeaksNothing)
{
    const size_t kPiece = 2 * 1024 * 1024;
    zan::ServerConfig cfg = scenario_config(1);
    cfg.buffer_output_size = 32 * 1024 * 1024;
    ScenarioServer srv;
    ASSERT_TRUE(srv.start(cfg, [kPiece](zan::TcpServer& s, const ScenarioServer::Ends& e) {
        int rep = e.report;
        auto piece = std::make_shared<std::string>(pattern(kPiece, 29));
        s.on_connect([rep](zan::TcpServer&, zan::SessionId id) { report(rep, "connect " + std::to_string(id)); });
        s.on_close([rep](zan::TcpServer&, zan::SessionId id) { report(rep, "close " + std::to_string(id)); });
        s.on_receive([rep, piece](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
            std::string l = line_of(msg);
            if (l == "flood") {
                int ok = 0;
                for (int i = 0; i < 8; i++)
                    ok += s.send(id, *piece) ? 1 : 0;
                report(rep, "flood " + std::to_string(id) + " " + std::to_string(ok));
            } else if (l == "stats") {
                s.send(id, s.stats().to_json() + "\n");
            } else {
                s.send(id, msg);
            }
        });
    }));
    pid_t net = srv.child("zan-net-0");
    ASSERT_GT(net, 0);
    // The fence: its replies share the Worker's channel with the flood,
    // behind it, so when one comes back the NetWorker has taken the whole
    // flood off the channel. It also keeps the NetWorker's table in use.
    Sock fence = srv.connect();
    ASSERT_TRUE(fence.ok());
    std::string lf;
    ASSERT_TRUE(srv.take("connect ", &lf));
    const std::string fence_sid = words(lf)[1];
    ASSERT_EQ(zt::request(fence.get(), "fence"), "fence");
    int fds0 = zt::open_fds(net);
    long anon0 = status_kb(net, "RssAnon:");
    ASSERT_GT(anon0, 0);

    long wmem[3] = {0, 0, 0};
    sscanf(zt::read_file("/proc/sys/net/ipv4/tcp_wmem").c_str(), "%ld %ld %ld", &wmem[0], &wmem[1], &wmem[2]);
    const long held_kb = 16 * 1024 - wmem[2] / 1024 - 64;  // output the NetWorker must hold
    const int kRounds = 8;
    std::vector<std::string> sessions;
    std::vector<long> anon;
    for (int round = 0; round < kRounds; round++) {
        Sock a(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_TRUE(a.ok());
        int small = 16 * 1024;
        ASSERT_EQ(::setsockopt(a.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
        struct sockaddr_in addr = zt::loopback_addr(srv.port());
        ASSERT_EQ(::connect(a.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
        std::string l;
        ASSERT_TRUE(srv.take("connect ", &l)) << srv.log();
        std::string sid = words(l)[1];
        sessions.push_back(sid);
        ASSERT_TRUE(zt::send_str(a.get(), "flood\n"));
        ASSERT_TRUE(srv.take("flood ", &l)) << srv.log();
        ASSERT_EQ(l, "flood " + sid + " 8") << "the Worker could not queue 8 x 2 MiB";
        // All 16 MiB are in the NetWorker or in the kernel's socket
        // buffers, which take tcp_wmem[2] (4 MiB by default) and 16 KiB.
        ASSERT_EQ(zt::request(fence.get(), "fence"), "fence");
        ASSERT_TRUE(zt::wait_fd(a.get(), POLLIN, 3000)) << "no output reached the client";
        if (round == 0 && held_kb >= 4096) {
            EXPECT_GE(status_kb(net, "RssAnon:") - anon0, held_kb / 2) << "the NetWorker does not hold the output";
        }
        unsigned long inode = zt::server_inode_of(a.get(), srv.port());
        ASSERT_NE(inode, 0ul);
        a.reset();  // unread data: the kernel resets the connection
        ASSERT_TRUE(srv.take("close " + sid, &l)) << "on_close did not run for " << sid << "\n" << srv.log();
        ASSERT_TRUE(eventually([&] { return !zt::has_socket_inode(net, inode); }, 3000))
            << "round " << round << ": the NetWorker still holds the closed socket";
        anon.push_back(status_kb(net, "RssAnon:"));
    }
    // The fence's requests come after anything the NetWorker still had to
    // say about the closed connections.
    std::string stats = zt::request(fence.get(), "stats");
    EXPECT_EQ(zt::json_int(stats, "connection_num"), 1) << stats;
    EXPECT_EQ(zt::json_int(stats, "close_count"), kRounds) << stats;
    EXPECT_EQ(zt::request(fence.get(), "still serving"), "still serving");
    fence.reset();
    ASSERT_TRUE(srv.take("close " + fence_sid, &lf)) << srv.log();
    for (const auto& sid : sessions)
        EXPECT_EQ(srv.count("close " + sid), 1) << "on_close of " << sid << "\n" << srv.reports();
    EXPECT_EQ(srv.count("close "), kRounds + 1) << srv.reports();

    EXPECT_EQ(srv.child("zan-net-0"), net) << "the NetWorker was replaced\n" << srv.log();
    EXPECT_EQ(srv.log().find("killed by signal"), std::string::npos) << srv.log();
    EXPECT_TRUE(eventually([&] { return zt::open_fds(net) == fds0 - 1; }, 2000))
        << "NetWorker descriptors: " << zt::open_fds(net) << ", " << fds0 << " before (with the fence)";
    // The heap may keep what the first rounds freed, for reuse (here from
    // nothing to all of it, depending on its layout), but not grow round
    // after round: an output buffer kept per round would add 12 MiB or
    // more each time, 72 MiB or more over the last six rounds.
    std::string series;
    for (long kb : anon)
        series += std::to_string(kb) + " ";
    long growth = anon.back() - std::max(anon[0], anon[1]);
    if (kSanitizedHeap)
        std::cerr << "(heap not checked: ASan keeps freed memory in quarantine)\n";
    else
        EXPECT_LT(growth, 24 * 1024) << "NetWorker RssAnon (kB) after each round: " << series << "(" << anon0
                                     << " before)";
    int st = srv.stop(5000);
    EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.log();
}

// ------------------------------------------------ 37: late replies

constexpr char kStale[] = "STALE reply for a closed connection\n";

// Scenario 37 (swoole discard_timeout_packet.phpt, for replies). One
// NetWorker and one Worker. The Worker keeps the session of the last
// client that said "hold" and sends kStale to it on "fire", or when the
// test writes 'F' to the trigger pipe (a 5 ms timer polls it).
//   a) The held client resets its connection and its slot is reused by a
//      new client, which says "fire": send() to the dead session fails,
//      and the new client gets only its own reply.
//   b) The reply is already on its way when the slot is reused: the
//      NetWorker is held (ptrace) at the entry of epoll_wait() while the
//      held client resets, a new client connects and the Worker sends to
//      the still-live session. Released, the NetWorker sees the reset, the
//      new connection (same slot) and the reply, in that order, and must
//      drop the reply by its generation.
TEST(ServerScenarios, LateRepliesNeverReachTheConnectionThatReusesTheSlot)
{
    ScenarioServer srv;
    ASSERT_TRUE(srv.start(scenario_config(1), [](zan::TcpServer& s, const ScenarioServer::Ends& e) {
        int rep = e.report, trg = e.trigger;
        auto held = std::make_shared<zan::SessionId>(0);
        s.on_connect([rep](zan::TcpServer&, zan::SessionId id) { report(rep, "connect " + std::to_string(id)); });
        s.on_close([rep](zan::TcpServer&, zan::SessionId id) { report(rep, "close " + std::to_string(id)); });
        s.on_receive([rep, held](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
            std::string l = line_of(msg);
            if (l == "hold") {
                *held = id;
                s.send(id, "held\n");
            } else if (l == "fire") {
                bool ok = s.send(*held, kStale);
                report(rep, std::string("fire ") + (ok ? "1" : "0"));
                s.send(id, "fresh\n");
            } else {
                s.send(id, msg);
            }
        });
        s.on_worker_start([rep, trg, held](zan::TcpServer& s, int) {
            s.tick(5, [rep, trg, held, &s] {
                char c;
                while (::read(trg, &c, 1) == 1) {
                    bool ok = s.send(*held, kStale);
                    // Reported on the next pass, after this one's replies
                    // have gone to the NetWorker.
                    s.after(0, [rep, ok] { report(rep, std::string("fired ") + (ok ? "1" : "0")); });
                }
            });
        });
    }));
    pid_t net = srv.child("zan-net-0");
    ASSERT_GT(net, 0);
    auto slot_of = [](const std::string& sid) { return zan::session_slot(std::stoull(sid)); };
    auto gen_of = [](const std::string& sid) { return zan::session_gen(std::stoull(sid)); };
    std::string l;

    // a) The Worker sends after the close.
    Sock a = srv.connect();
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(srv.take("connect ", &l));
    std::string sid_a = words(l)[1];
    ASSERT_EQ(zt::request(a.get(), "hold"), "held");
    reset_close(&a);
    ASSERT_TRUE(srv.take("close " + sid_a, &l)) << srv.log();
    Sock b = srv.connect();
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(srv.take("connect ", &l));
    std::string sid_b = words(l)[1];
    ASSERT_EQ(slot_of(sid_b), slot_of(sid_a)) << "the new connection did not reuse the slot";
    ASSERT_NE(gen_of(sid_b), gen_of(sid_a));
    EXPECT_EQ(zt::request(b.get(), "fire"), "fresh") << "the reply to the closed session was delivered";
    ASSERT_TRUE(srv.take("fire ", &l));
    EXPECT_EQ(l, "fire 0") << "send() to a closed session whose slot is reused succeeded";
    EXPECT_EQ(zt::request(b.get(), "ping"), "ping");

    // b) The reply is in flight when the slot is reused.
    ASSERT_EQ(zt::request(b.get(), "hold"), "held");
    int bport = local_port(b.get());
    zt::SyscallTrap trap(net);
    bool stopped = trap.stop_at(SYS_epoll_wait, 5000, nullptr);
    if (!stopped && trap.error().rfind("PTRACE_SEIZE", 0) == 0)
        GTEST_SKIP() << "ptrace is not permitted here: " << trap.error();
    ASSERT_TRUE(stopped) << "could not hold the NetWorker at epoll_wait(): " << trap.error();
    reset_close(&b);
    ASSERT_TRUE(eventually([&] { return server_side_state(srv.port(), bport) == -1; }, 2000))
        << "the reset did not reach the server side";
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    int cport = local_port(c.get());
    ASSERT_TRUE(eventually([&] { return server_side_state(srv.port(), cport) == 1; }, 2000))
        << "the new connection is not waiting to be accepted";
    ASSERT_TRUE(srv.trigger('F'));
    ASSERT_TRUE(srv.take("fired ", &l)) << srv.log();
    ASSERT_EQ(l, "fired 1") << "the Worker did not send while the session was live: nothing in flight";
    trap.release();

    ASSERT_TRUE(srv.take("connect ", &l)) << srv.log();
    std::string sid_c = words(l)[1];
    ASSERT_TRUE(srv.take("close " + sid_b, &l)) << srv.log();
    ASSERT_EQ(slot_of(sid_c), slot_of(sid_b)) << "the new connection did not reuse the slot";
    std::string first;
    ASSERT_TRUE(zt::send_str(c.get(), "ping\n"));
    ASSERT_TRUE(zt::read_line(c.get(), &first, 3000));
    EXPECT_EQ(first, "ping") << "the reply in flight for the closed session reached the new connection";
    int st = srv.stop(5000);
    EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.log();
}

}  // namespace
