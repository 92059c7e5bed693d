// Integration tests of zan-httpd under systemd's protocols, without
// systemd: a fake NOTIFY_SOCKET (NotifySink, a path and an abstract
// name) must see READY=1 with MAINPID=, RELOADING=1 with MONOTONIC_USEC=
// and READY=1 again around a reload, and STOPPING=1, in that order and
// all from the Master; WATCHDOG=1 every half WATCHDOG_USEC, and none for
// another process's watchdog. Debian's systemd-socket-activate passes a
// listening socket the server must serve on, answering a connection made
// before it started; passed sockets that do not match the configured
// listener are a start-up error. Servers run under zt::Proc (started
// through env(1) or systemd-socket-activate, which exec, so the pid is
// the Master's) and are stopped at scope exit.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/http_client.h"
#include "t/net_helpers.h"
#include "t/notify_sink.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/sys.h"

namespace {

const char* kActivate = "/usr/bin/systemd-socket-activate";

std::vector<std::string> httpd_with_env(const std::vector<std::string>& env)
{
    std::vector<std::string> argv{"/usr/bin/env"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(zt::tool("zan-httpd"));
    for (const char* a : {"--host", "127.0.0.1", "--port", "0", "--worker-num", "2", "--net-worker-num", "1"})
        argv.push_back(a);
    return argv;
}

// A port nothing listens on now (bound and released).
int free_port()
{
    zt::Sock s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = zt::loopback_addr(0);
    socklen_t len = sizeof(a);
    if (::bind(s.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) < 0 ||
        ::getsockname(s.get(), reinterpret_cast<struct sockaddr*>(&a), &len) < 0)
        return 0;
    return ntohs(a.sin_port);
}

std::string get(int port)
{
    zt::HttpClient c(port);
    zt::HttpReply r;
    if (!c.ok() || !c.request("GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r))
        return "(no reply)";
    return std::to_string(r.status) + " " + r.body;
}

void notifies_in_order(bool abstract)
{
    zt::NotifySink sink(abstract);
    ASSERT_TRUE(sink.ok()) << strerror(errno);
    zt::Proc server;
    int port = zt::start_server(&server, httpd_with_env({"NOTIFY_SOCKET=" + sink.address()}));
    ASSERT_GT(port, 0) << server.output();
    pid_t master = server.pid();

    std::vector<zt::NotifyMessage> before;
    zt::NotifyMessage m;
    ASSERT_TRUE(sink.wait_for("READY=1", &m, 5000, &before)) << server.output();
    EXPECT_EQ(master, m.pid);
    EXPECT_EQ(std::to_string(master), m.value("MAINPID"));
    EXPECT_NE(std::string::npos, m.value("STATUS").find("Serving on 127.0.0.1:" + std::to_string(port)))
        << m.text;
    for (const auto& b : before)
        EXPECT_EQ("", b.value("READY") + b.value("RELOADING") + b.value("STOPPING")) << b.text;
    EXPECT_EQ("200 hello\n", get(port));

    long long t0 = zan::monotonic_us();
    server.signal(SIGUSR1);
    ASSERT_TRUE(sink.next(&m, 5000));
    long long t1 = zan::monotonic_us();
    EXPECT_TRUE(m.has("RELOADING=1")) << m.text;
    EXPECT_EQ(master, m.pid);
    long long mono = atoll(m.value("MONOTONIC_USEC").c_str());
    EXPECT_GE(mono, t0) << m.text;
    EXPECT_LE(mono, t1) << m.text;
    ASSERT_TRUE(sink.next(&m, 5000));
    EXPECT_TRUE(m.has("READY=1")) << "after RELOADING=1 came: " << m.text;
    EXPECT_EQ("200 hello\n", get(port));

    server.signal(SIGTERM);
    ASSERT_TRUE(sink.next(&m, 5000));
    EXPECT_TRUE(m.has("STOPPING=1")) << m.text;
    EXPECT_EQ(master, m.pid);
    int st = server.wait_exit(10000);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << server.output();
    // Nothing after STOPPING=1.
    EXPECT_FALSE(sink.next(&m, 100)) << m.text;
}

TEST(ServerSystemd, NotifiesReadyReloadAndStopInOrderOnAPath) { notifies_in_order(false); }

TEST(ServerSystemd, NotifiesReadyReloadAndStopInOrderOnAnAbstractName) { notifies_in_order(true); }

TEST(ServerSystemd, PingsTheWatchdogEveryHalfInterval)
{
    zt::NotifySink sink(true);
    ASSERT_TRUE(sink.ok());
    zt::Proc server;
    int port = zt::start_server(&server, httpd_with_env({"NOTIFY_SOCKET=" + sink.address(),
                                                         "WATCHDOG_USEC=200000"}));
    ASSERT_GT(port, 0) << server.output();
    zt::NotifyMessage m;
    ASSERT_TRUE(sink.wait_for("READY=1", &m, 5000));
    long long start = zt::now_ms();
    int pings = 0;
    while (zt::now_ms() - start < 1000 && sink.wait_for("WATCHDOG=1", &m, 1000)) {
        EXPECT_EQ(server.pid(), m.pid);
        pings++;
    }
    // One every 100 ms: about 10 in a second; a loaded machine may lose a
    // few, a wrong interval (the whole 200 ms, or none) shows.
    EXPECT_GE(pings, 6);
    EXPECT_LE(pings, 12);
    EXPECT_EQ("", zt::stop_and_check(&server));
}

TEST(ServerSystemd, LeavesAnotherProcesssWatchdogAlone)
{
    zt::NotifySink sink(false);
    ASSERT_TRUE(sink.ok());
    zt::Proc server;
    int port = zt::start_server(&server, httpd_with_env({"NOTIFY_SOCKET=" + sink.address(),
                                                         "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"}));
    ASSERT_GT(port, 0) << server.output();
    zt::NotifyMessage m;
    ASSERT_TRUE(sink.wait_for("READY=1", &m, 5000));
    EXPECT_FALSE(sink.wait_for("WATCHDOG=1", &m, 500)) << "pinged for pid 1";
    EXPECT_EQ("", zt::stop_and_check(&server));
}

// systemd-socket-activate binds and listens, and on the first connection
// runs a shell that waits at a gate (a FIFO) before it execs zan-httpd:
// the test connects and sends its request while no server process
// exists yet.
TEST(ServerSystemd, ServesOnASocketFromSystemdSocketActivate)
{
    ASSERT_EQ(0, ::access(kActivate, X_OK)) << kActivate << " is missing (package systemd)";
    zt::TempDir dir;
    std::string gate = dir.path + "/gate";
    ASSERT_EQ(0, ::mkfifo(gate.c_str(), 0600));
    int port = free_port();
    ASSERT_GT(port, 0);
    std::string p = std::to_string(port);
    zt::Proc server;
    ASSERT_TRUE(server.spawn({kActivate, "-l", "127.0.0.1:" + p, "--fdname=web", "/bin/sh", "-c",
                              "read _ < " + zt::shell_quote(gate) + " && exec \"$0\" \"$@\"",
                              zt::tool("zan-httpd"), "--host", "127.0.0.1", "--port", p, "--worker-num",
                              "1", "--net-worker-num", "1"}));
    zt::Sock early(zt::connect_local(port, 5000));
    ASSERT_TRUE(early.ok()) << server.output();
    ASSERT_TRUE(zt::send_str(early.get(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    EXPECT_EQ(0, server.count("listening on")) << "the server started before the gate opened";

    // Open the gate: the FIFO has a reader once the shell runs.
    zan::Fd w;
    long long deadline = zt::now_ms() + zt::scaled(5000);
    while (!w && zt::now_ms() < deadline) {
        w.reset(::open(gate.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        if (!w)
            ::usleep(2000);  // ENXIO: the shell has not opened it yet
    }
    ASSERT_TRUE(w.valid()) << strerror(errno) << server.output();
    ASSERT_EQ(1, ::write(w.get(), "\n", 1));
    w.reset();

    zt::HttpReader rd(early.get());
    zt::HttpReply r;
    ASSERT_TRUE(rd.next(&r, false, 10000)) << server.output();
    EXPECT_EQ(200, r.status);
    EXPECT_EQ("hello\n", r.body);
    EXPECT_TRUE(server.wait_for("listening on passed socket 127.0.0.1:" + p + " web", 5000)) << server.output();
    for (int i = 0; i < 3; i++)
        EXPECT_EQ("200 hello\n", get(port));
    early.reset();
    EXPECT_EQ("", zt::stop_and_check(&server));
}

// Runs zan-httpd under systemd-socket-activate with `sockets` (its
// options) and `port` configured; returns its exit status, output in
// *out. systemd-socket-activate runs the program when the first
// connection (a datagram with --datagram) comes to `trigger`.
int activate_and_fail(const std::vector<std::string>& sockets, int port, int trigger, std::string* out)
{
    std::vector<std::string> argv{kActivate};
    argv.insert(argv.end(), sockets.begin(), sockets.end());
    for (const std::string& a : {zt::tool("zan-httpd"), std::string("--host"), std::string("127.0.0.1"),
                                 std::string("--port"), std::to_string(port), std::string("--worker-num"),
                                 std::string("1"), std::string("--net-worker-num"), std::string("1")})
        argv.push_back(a);
    zt::Proc server;
    if (!server.spawn(argv) || !server.wait_for("Listening on", 5000))
        return -1;
    bool datagram = sockets[0] == "--datagram";
    zt::Sock s(::socket(AF_INET, (datagram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = zt::loopback_addr(trigger);
    if (datagram)
        ::sendto(s.get(), "x", 1, 0, reinterpret_cast<struct sockaddr*>(&a), sizeof(a));
    else
        ::connect(s.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a));
    int st = server.wait_exit(10000);
    *out = server.output();
    return st;
}

TEST(ServerSystemd, RefusesPassedSocketsThatDoNotMatch)
{
    ASSERT_EQ(0, ::access(kActivate, X_OK)) << kActivate << " is missing (package systemd)";
    int a = free_port(), b = free_port();
    ASSERT_TRUE(a > 0 && b > 0 && a != b);
    std::string sa = "127.0.0.1:" + std::to_string(a), sb = "127.0.0.1:" + std::to_string(b);
    std::string out;

    // Configured for b, passed a.
    int st = activate_and_fail({"-l", sa}, b, a, &out);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st << out;
    EXPECT_NE(std::string::npos, out.find("no passed socket is bound to " + sb + " (passed: fd 3 (" + sa))
        << out;

    // Two passed, one configured.
    st = activate_and_fail({"-l", sa, "-l", sb}, a, a, &out);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st << out;
    EXPECT_NE(std::string::npos, out.find("passed sockets that match no listen(): fd 4 (" + sb)) << out;

    // A datagram socket is no listener.
    st = activate_and_fail({"--datagram", "-l", sa}, a, a, &out);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st << out;
    EXPECT_NE(std::string::npos, out.find("fd 3 is not a listening stream socket")) << out;
    EXPECT_EQ(std::string::npos, out.find("listening on 127.0.0.1")) << out;
}

}  // namespace
