// A reload or a shutdown goes past a child that never finishes: Workers
// stuck in a callback are replaced after max_wait_time on a reload; on a
// shutdown a UserWorker that ignores SIGTERM, or a Worker stuck in
// on_receive, is SIGKILLed after max_wait_time and the Master still exits
// 0 with nothing of the server left. Each test runs its own TcpServer in
// a forked Master (t/forked_server.h).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "t/forked_server.h"
#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/test_env.h"
#include "zan/tcp_server.h"

namespace {

using zt::Sock;
using zt::report;
using zt::word_num;
using zt::line_of;
using zt::occurrences;
using zt::eventually;
using zt::block_forever;
using zt::forked_server_config;
using zt::ForkedServer;

// A reload replaces Workers stuck in on_receive, where no stop request
// reaches them (four of them here). SIGUSR1 forks a
// successor for each; once a successor is up, its predecessor is told to
// stop and is SIGKILLed max_wait_time (1 s) later. Every Worker is
// replaced within 3 s of the signal, not before max_wait_time; Workers
// start 2 x worker_num times in all; the clients of the stuck requests see
// their connection closed instead of hanging; the successors serve.
TEST(ServerForcedStop, ReloadReplacesStuckWorkersAfterMaxWaitTime)
{
    const int kWorkers = 4;
    ForkedServer srv;
    ASSERT_TRUE(srv.start(forked_server_config(kWorkers), [](zan::TcpServer& s, const ForkedServer::Ends& e) {
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
        EXPECT_TRUE(zt::wait_gone(p, static_cast<int>(std::max(0LL, t0 + zt::scaled(3000) - zt::now_ms()))))
            << "stuck Worker " << p << " still runs 3 s after SIGUSR1\n" << srv.log();
    long long took = zt::now_ms() - t0;
    EXPECT_GE(took, 900) << "a stuck Worker was killed before max_wait_time";
    EXPECT_LE(took, zt::scaled(3000));
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

// A UserWorker ignores SIGTERM and never returns from its callback. SIGTERM to the Master: the
// NetWorker drains at once (no clients), phase 2 asks every child to stop,
// and max_wait_time (1 s) later the UserWorker is SIGKILLed. The Master
// exits 0 about 1 s after the signal, and nothing of the server is left.
TEST(ServerForcedStop, ShutdownKillsAUserWorkerThatIgnoresSigterm)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(forked_server_config(1), [](zan::TcpServer& s, const ForkedServer::Ends& e) {
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
    EXPECT_LT(took, zt::scaled(3000)) << "shutdown took far longer than max_wait_time\n" << srv.log();
    std::string log = srv.log();
    std::string want = "zan-user-0 (pid " + std::to_string(user) + ") did not stop within max_wait_time: SIGKILL";
    EXPECT_NE(log.find(want), std::string::npos) << log;
    EXPECT_NE(log.find("shutdown complete"), std::string::npos) << log;
    for (pid_t p : tree)
        EXPECT_FALSE(zt::pid_alive(p)) << "process " << p << " outlived the Master";
}

// The same for a Worker: stuck in on_receive (SIGTERM blocked, as in
// every Worker) while its client waits. Phase 1 cannot drain that client, so the
// NetWorker is SIGKILLed after max_wait_time; phase 2 then SIGKILLs the
// Worker after another max_wait_time. The Master exits 0 after about
// 2 x max_wait_time, and no process is left.
TEST(ServerForcedStop, ShutdownKillsAWorkerStuckInACallback)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(forked_server_config(1), [](zan::TcpServer& s, const ForkedServer::Ends& e) {
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
    EXPECT_LT(took, zt::scaled(4000)) << "shutdown took far longer than 2 x max_wait_time\n" << srv.log();
    std::string log = srv.log();
    std::string want = "zan-worker-0 (pid " + std::to_string(worker) + ") did not stop within max_wait_time: SIGKILL";
    EXPECT_NE(log.find(want), std::string::npos) << log;
    for (pid_t p : tree)
        EXPECT_FALSE(zt::pid_alive(p)) << "process " << p << " outlived the Master";
    EXPECT_TRUE(zt::wait_closed(c.get(), 1000));
}

}  // namespace
