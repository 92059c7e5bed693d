// Integration tests of the binary upgrade (zanctl upgrade, SIGRTMIN+2):
// under continuous load, keep-alive connections and a new connection
// per request both, an upgrade loses no request and refuses no
// connection, and the pid file names the new Master; a new binary that
// exits at once, or never gets ready, leaves the old server serving with
// no client error, and zanctl says so by its exit status; under systemd
// (a fake NOTIFY_SOCKET) the old Master hands MAINPID= over and falls
// silent, and the new one notifies from then on. The clients retry
// nothing: a connect is tried once, a request sent once; a reply with
// "Connection: close" is the server's word to open a new connection.
//
// The new Master is a child of the old one and is orphaned when that
// exits: the test process is a subreaper meanwhile (Subreaper), so the
// new Master becomes its child, and is stopped and reaped by pid.
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "t/forked_server.h"
#include "t/http_client.h"
#include "t/net_helpers.h"
#include "t/notify_sink.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

namespace {

// Orphaned descendants become our children while this lives; the ones
// named with adopt() are stopped (SIGTERM, SIGKILL after 5 s, with all
// their descendants) and reaped at scope exit.
class Subreaper {
public:
    Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
    ~Subreaper()
    {
        for (pid_t p : adopted_) {
            if (p <= 0)
                continue;
            std::vector<pid_t> desc = zt::descendants_of(p);
            int st;
            if (::kill(p, SIGTERM) == 0 && !zt::reap_by(p, &st, zt::now_ms() + zt::scaled(5000))) {
                ::kill(p, SIGKILL);
                zt::reap_by(p, &st, zt::now_ms() + zt::scaled(5000));
            }
            for (pid_t d : desc)
                if (zt::pid_alive(d))
                    ::kill(d, SIGKILL);
        }
        ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    }
    Subreaper(const Subreaper&) = delete;
    Subreaper& operator=(const Subreaper&) = delete;
    void adopt(pid_t p) { adopted_.push_back(p); }
    // Stops an adopted Master gracefully; its wait status, -1 on timeout.
    int stop(pid_t p)
    {
        int st = -1;
        if (p <= 0 || ::kill(p, SIGTERM) < 0 || !zt::reap_by(p, &st, zt::now_ms() + zt::scaled(10000)))
            return -1;
        for (auto& a : adopted_)
            if (a == p)
                a = 0;
        return st;
    }

private:
    std::vector<pid_t> adopted_;
};

pid_t pid_in(const std::string& file)
{
    return static_cast<pid_t>(atol(zt::read_file(file).c_str()));
}

int zanctl(const std::string& args, std::string* out)
{
    return zt::run_command(zt::shell_quote(zt::tool("zanctl")) + " " + args + " 2>&1", out, 60);
}

// One connect(2), no retry; an invalid Sock with errno on failure.
zt::Sock connect_once(int port)
{
    zt::Sock s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct timeval tv = {5, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = zt::loopback_addr(port);
    int r;
    do
        r = ::connect(s.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a));
    while (r < 0 && errno == EINTR);
    if (r < 0)
        s.reset();
    return s;
}

// Clients that run until stop: `keep` on keep-alive connections, `fresh`
// with a new connection per request. Every failure is counted and the
// first few described.
class Load {
public:
    Load(int port, int keep, int fresh) : port_(port)
    {
        for (int i = 0; i < keep; i++)
            threads_.emplace_back([this] { keep_alive(); });
        for (int i = 0; i < fresh; i++)
            threads_.emplace_back([this] { one_per_connection(); });
    }
    ~Load() { stop(); }
    void stop()
    {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable())
                t.join();
    }
    long ok() const { return ok_; }
    long failed() const { return failed_; }
    long refused() const { return refused_; }
    std::string errors()
    {
        std::lock_guard<std::mutex> g(mu_);
        std::string s;
        for (const auto& e : errors_)
            s += e + "\n";
        return s;
    }

private:
    void fail(const std::string& what)
    {
        failed_++;
        std::lock_guard<std::mutex> g(mu_);
        if (errors_.size() < 10)
            errors_.push_back(what);
    }
    // The reply to one request on s; false (counted) when there is none.
    // `what`: the kind of connection and request, for the failure.
    bool exchange(int fd, zt::HttpReader* rd, const char* req, bool* closes, const std::string& what)
    {
        if (!zt::send_str(fd, req)) {
            fail(what + ": send: " + strerror(errno));
            return false;
        }
        zt::HttpReply r;
        if (!rd->next(&r, false, 5000)) {
            fail(what + (rd->reset() ? ": reset before the reply"
                                     : rd->eof() ? ": closed before the reply" : ": no reply in 5 s"));
            return false;
        }
        if (r.status != 200 || r.body != "hello\n") {
            fail(what + ": reply " + std::to_string(r.status) + " " + r.body);
            return false;
        }
        ok_++;
        *closes = r.closes();
        return true;
    }
    void keep_alive()
    {
        while (!stop_) {
            zt::Sock s = connect_once(port_);
            if (!s.ok()) {
                refused_++;
                fail(std::string("connect: ") + strerror(errno));
                continue;
            }
            zt::HttpReader rd(s.get());
            bool closes = false;
            for (int n = 0; !stop_; n++) {
                std::string what = "keep-alive connection, request " + std::to_string(n + 1);
                if (!exchange(s.get(), &rd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", &closes, what) || closes)
                    break;
            }
        }
    }
    void one_per_connection()
    {
        while (!stop_) {
            zt::Sock s = connect_once(port_);
            if (!s.ok()) {
                refused_++;
                fail(std::string("connect: ") + strerror(errno));
                continue;
            }
            zt::HttpReader rd(s.get());
            bool closes = false;
            exchange(s.get(), &rd, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &closes,
                     "new connection");
        }
    }

    int port_;
    std::atomic<bool> stop_{false};
    std::atomic<long> ok_{0}, failed_{0}, refused_{0};
    std::mutex mu_;
    std::vector<std::string> errors_;
    std::vector<std::thread> threads_;
};

// Waits until `load` has answered n more requests.
bool served(const Load& load, long n, int timeout_ms = 5000)
{
    long target = load.ok() + n;
    long long deadline = zt::now_ms() + zt::scaled(timeout_ms);
    while (load.ok() < target && zt::now_ms() < deadline)
        ::usleep(2000);  // a counter of other threads: nothing to wait on
    return load.ok() >= target;
}

// Runs an upgrade of a zan-httpd (2 NetWorkers, 2 Workers) under `load`
// clients and checks what the upgrade itself promises: zanctl reports
// success, the new Master holds as many descriptors as the old one, the
// pid file names it (also after the old one's clean-up), the old Master
// finishes and exits 0, not one connect() is refused, and the new Master
// serves. The caller checks the requests.
void upgrade_under_load(int keep, int fresh, Load** out_load, std::string* log)
{
    zt::TempDir dir;
    std::string pidfile = dir.path + "/httpd.pid";
    Subreaper reaper;
    zt::Proc server;
    int port = zt::start_httpd(&server, {"--worker-num", "2", "--net-worker-num", "2", "--pid-file", pidfile});
    ASSERT_GT(port, 0) << server.output();
    pid_t old = server.pid();
    int old_fds = zt::open_fds(old);
    Load* load = new Load(port, keep, fresh);
    *out_load = load;
    ASSERT_TRUE(served(*load, 200)) << load->errors();

    std::string out;
    int rc = zanctl("-p " + zt::shell_quote(pidfile) + " upgrade -w 30", &out);
    pid_t new_master = pid_in(pidfile);
    if (new_master > 0 && new_master != old)
        reaper.adopt(new_master);
    ASSERT_EQ(0, rc) << out << server.output();
    ASSERT_GT(new_master, 0);
    EXPECT_NE(std::string::npos, out.find("upgraded: new Master " + std::to_string(new_master))) << out;
    ASSERT_NE(old, new_master);
    EXPECT_EQ("zan-master", zt::comm_of(new_master));
    // The same descriptors as the old Master had: its listening socket at
    // 3, nothing of the old one (its upgrade socket, channels, loop).
    EXPECT_EQ(old_fds, zt::open_fds(new_master));
    ASSERT_TRUE(zt::wait_gone(old, 15000)) << "the old Master did not finish\n" << server.output();
    // The control socket went over with the pid file, and the old
    // Master's clean-up left it in place.
    EXPECT_EQ(0, zanctl("-p " + zt::shell_quote(pidfile) + " stats", &out)) << out;
    EXPECT_NE(std::string::npos, out.find("\"pid\":" + std::to_string(new_master))) << out;
    long before_gone = load->ok();
    EXPECT_TRUE(served(*load, 200)) << "nothing served after the old Master left\n" << load->errors();
    load->stop();
    EXPECT_EQ(0, load->refused()) << load->errors();
    EXPECT_GT(load->ok(), before_gone);
    EXPECT_EQ(new_master, pid_in(pidfile)) << "the old Master's clean-up touched the pid file";
    int st = reaper.stop(new_master);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << server.output();
    EXPECT_FALSE(zt::file_exists(pidfile)) << "the new Master left its pid file";
    st = server.wait_exit(5000);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "old Master: " << st;
    *log = server.output();
    EXPECT_NE(std::string::npos, log->find("upgrade: new Master " + std::to_string(new_master) + " is ready"))
        << *log;
    EXPECT_EQ("", zt::sanitizer_report(*log));
}

TEST(ServerUpgrade, RefusesNoConnectionAndKeepsServing)
{
    Load* load = nullptr;
    std::string log;
    upgrade_under_load(3, 3, &load, &log);
    std::unique_ptr<Load> owner(load);
}

// The whole promise: not one request of either kind of client fails.
// Besides the upgrade it needs the old NetWorkers' graceful drain to
// answer every request they accepted or that arrives on a keep-alive
// connection while they stop (Connection: close on the next reply
// instead of closing a connection they take for idle).
TEST(ServerUpgrade, LosesNoRequestUnderLoad)
{
    Load* load = nullptr;
    std::string log;
    upgrade_under_load(3, 3, &load, &log);
    std::unique_ptr<Load> owner(load);
    ASSERT_NE(nullptr, load);
    EXPECT_EQ(0, load->failed()) << load->failed() << " of " << load->ok() + load->failed()
                                 << " requests failed, first:\n" << load->errors() << log;
}

// Replaces the program file at path by a shell script with `body`, as a
// package upgrade does: a new file renamed over the old one.
bool replace_program(const std::string& path, const std::string& body)
{
    std::string tmp = path + ".new";
    return zt::write_file(tmp, "#!/bin/sh\n" + body + "\n") && ::chmod(tmp.c_str(), 0755) == 0 &&
           ::rename(tmp.c_str(), path.c_str()) == 0;
}

TEST(ServerUpgrade, ABrokenNewBinaryLeavesTheOldServerServing)
{
    zt::TempDir dir;
    std::string pidfile = dir.path + "/httpd.pid";
    std::string program = dir.path + "/zan-httpd";
    ASSERT_TRUE(zt::write_file(program, zt::read_file(zt::tool("zan-httpd"))));
    ASSERT_EQ(0, ::chmod(program.c_str(), 0755));
    Subreaper reaper;
    zt::Proc server;
    int port = zt::start_server(&server, {program, "--host", "127.0.0.1", "--port", "0", "--worker-num", "2",
                                          "--net-worker-num", "1", "--pid-file", pidfile,
                                          "--upgrade-timeout", "1"});
    ASSERT_GT(port, 0) << server.output();
    pid_t old = server.pid();
    Load load(port, 2, 2);
    ASSERT_TRUE(served(load, 100)) << load.errors();

    // A new version that fails at once.
    ASSERT_TRUE(replace_program(program, "exit 1"));
    std::string out, q = "-p " + zt::shell_quote(pidfile);
    EXPECT_EQ(1, zanctl(q + " upgrade -w 30", &out)) << out;
    EXPECT_NE(std::string::npos, out.find("upgrade failed")) << out;
    EXPECT_TRUE(server.wait_for("exited with code 1 before it was ready; this Master keeps serving", 5000))
        << server.output();
    EXPECT_EQ(old, pid_in(pidfile));
    ASSERT_TRUE(served(load, 100)) << load.errors();

    // One that never gets ready: stopped after upgrade_timeout. A second
    // request meanwhile is ignored; its zanctl sees the first one fail.
    ASSERT_TRUE(replace_program(program, "exec sleep 60"));
    EXPECT_EQ(0, zanctl(q + " upgrade -w 0", &out)) << out;
    EXPECT_TRUE(zt::eventually([&] { return server.count("upgrade: started") == 2; }, 5000));
    EXPECT_EQ(1, zanctl(q + " upgrade -w 30", &out)) << out;
    EXPECT_NE(std::string::npos, server.output().find("upgrade: ignored: new Master ")) << server.output();
    std::string line;
    EXPECT_TRUE(server.wait_for("was not ready within 1 s (upgrade_timeout); this Master keeps serving", 5000,
                                &line))
        << server.output();
    pid_t stuck = static_cast<pid_t>(atol(line.c_str() + line.find("new Master ") + 11));
    EXPECT_GT(stuck, 0) << line;
    EXPECT_TRUE(zt::wait_gone(stuck, 5000)) << "the stuck new binary was not stopped";
    EXPECT_EQ(old, pid_in(pidfile));
    EXPECT_TRUE(zt::pid_alive(old));
    ASSERT_TRUE(served(load, 100)) << load.errors();
    load.stop();
    EXPECT_EQ(0, load.failed()) << load.errors();
    EXPECT_EQ("", zt::stop_and_check(&server));
}

TEST(ServerUpgrade, HandsTheServiceManagerOverToTheNewMaster)
{
    zt::TempDir dir;
    std::string pidfile = dir.path + "/httpd.pid";
    zt::NotifySink sink(true);
    ASSERT_TRUE(sink.ok());
    Subreaper reaper;
    zt::Proc server;
    int port = zt::start_server(&server, {"/usr/bin/env", "NOTIFY_SOCKET=" + sink.address(),
                                          "WATCHDOG_USEC=400000", zt::tool("zan-httpd"), "--host",
                                          "127.0.0.1", "--port", "0", "--worker-num", "1",
                                          "--net-worker-num", "1", "--pid-file", pidfile});
    ASSERT_GT(port, 0) << server.output();
    pid_t old = server.pid();
    zt::NotifyMessage m;
    ASSERT_TRUE(sink.wait_for("READY=1", &m, 5000));
    EXPECT_EQ(std::to_string(old), m.value("MAINPID"));

    std::string out;
    int rc = zanctl("-p " + zt::shell_quote(pidfile) + " upgrade -w 30", &out);
    pid_t fresh = pid_in(pidfile);
    if (fresh > 0 && fresh != old)
        reaper.adopt(fresh);
    ASSERT_EQ(0, rc) << out << server.output();
    ASSERT_GT(fresh, 0);
    // The old Master, still the main process, names the new one.
    std::vector<zt::NotifyMessage> skipped;
    ASSERT_TRUE(sink.wait_for("READY=1", &m, 5000, &skipped));
    EXPECT_EQ(old, m.pid) << m.text;
    EXPECT_EQ(std::to_string(fresh), m.value("MAINPID")) << m.text;
    EXPECT_NE(std::string::npos, m.value("STATUS").find("Serving on")) << m.text;
    for (const auto& s : skipped)
        EXPECT_TRUE(s.pid == old && s.value("MAINPID").empty()) << "before the hand-over: " << s.pid << " " << s.text;
    // From now on only the new Master speaks: no STOPPING=1 from the old.
    ASSERT_TRUE(zt::wait_gone(old, 15000)) << server.output();
    ASSERT_TRUE(sink.wait_for("WATCHDOG=1", &m, 2000)) << "the new Master does not ping";
    EXPECT_EQ(fresh, m.pid);
    ::kill(fresh, SIGTERM);
    skipped.clear();
    ASSERT_TRUE(sink.wait_for("STOPPING=1", &m, 5000, &skipped));
    EXPECT_EQ(fresh, m.pid);
    for (const auto& s : skipped)
        EXPECT_EQ(fresh, s.pid) << s.text;
    int st = reaper.stop(fresh);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// A daemonized server upgrades too: the new Master does not detach again
// (its parent waits for that very process), stays in the old Master's
// session, and takes over the pid file. The daemon, orphaned at once, is
// the test's child here.
TEST(ServerUpgrade, ADaemonUpgradesWithoutDetachingAgain)
{
    zt::TempDir dir;
    std::string pidfile = dir.path + "/httpd.pid", log = dir.path + "/httpd.log";
    int port = 0;
    {  // a free port: bind to port 0 and give it back
        zt::Sock probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        struct sockaddr_in a = zt::loopback_addr(0);
        socklen_t len = sizeof(a);
        ASSERT_EQ(0, ::bind(probe.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a)));
        ASSERT_EQ(0, ::getsockname(probe.get(), reinterpret_cast<struct sockaddr*>(&a), &len));
        port = ntohs(a.sin_port);
    }
    Subreaper reaper;
    zt::Proc launcher;
    ASSERT_TRUE(launcher.spawn({zt::tool("zan-httpd"), "--host", "127.0.0.1", "--port", std::to_string(port),
                                "--worker-num", "1", "--net-worker-num", "1", "--daemonize", "--pid-file",
                                pidfile, "--log-file", log}));
    ASSERT_NE(-1, launcher.wait_exit(5000));
    pid_t old = 0;
    ASSERT_TRUE(zt::eventually([&] { return (old = pid_in(pidfile)) > 0; }, 5000)) << "no pid file";
    reaper.adopt(old);
    ASSERT_NE(0, zt::wait_for_name(old, "zan-net-0", 0, 5000)) << zt::read_file(log);
    std::string out;
    int rc = zanctl("-p " + zt::shell_quote(pidfile) + " upgrade -w 30", &out);
    pid_t fresh = pid_in(pidfile);
    if (fresh > 0 && fresh != old)
        reaper.adopt(fresh);
    ASSERT_EQ(0, rc) << out << zt::read_file(log);
    ASSERT_GT(fresh, 0);
    EXPECT_NE(old, fresh);
    EXPECT_EQ(::getsid(old), ::getsid(fresh)) << "the new Master detached again";
    zt::HttpClient c(port);
    zt::HttpReply r;
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.request("GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r));
    EXPECT_EQ(200, r.status);
    EXPECT_TRUE(zt::wait_gone(old, 15000)) << zt::read_file(log);
    EXPECT_EQ(0, zanctl("-p " + zt::shell_quote(pidfile) + " stop -w 10", &out)) << out;
    EXPECT_FALSE(zt::file_exists(pidfile));
}

}  // namespace
