// Lifecycle tests of the process model through zan-echod: max_request and
// task_max_request recycling (nothing lost), SIGUSR1 reload under load
// (no failed request, every Worker and TaskWorker replaced), SIGUSR2
// (TaskWorkers only) and log reopening on SIGRTMIN. Every wait has a
// deadline; the zt::ServerTest fixture stops the server even when an
// assertion fails.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "t/fork_helpers.h"
#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/sys.h"
#include "zan/detail/task_worker.h"
#include "zan/tcp_server.h"

namespace {

using zt::LineReader;
using zt::Proc;
using zt::Sock;

// One zan-echod per test (zt::ServerTest), plus views of its process tree.
class ServerLifecycle : public zt::ServerTest {
protected:
    // name -> pid of every process of the server tree.
    std::map<std::string, pid_t> tree()
    {
        std::map<std::string, pid_t> m;
        for (const auto& np : zt::named_descendants(server_.pid()))
            m[np.first] = np.second;
        return m;
    }
    // Waits until `name` runs under a pid other than `old` and `old` is gone.
    pid_t wait_replaced(const std::string& name, pid_t old, int timeout_ms)
    {
        long long deadline = zt::now_ms() + zt::scaled(timeout_ms);
        pid_t fresh = wait_for_name(name, old, timeout_ms);
        if (fresh <= 0)
            return 0;
        if (!zt::wait_gone(old, static_cast<int>(std::max(0LL, deadline - zt::now_ms()))))
            return 0;
        return fresh;
    }
    // The start of the server's output, for failure messages.
    std::string output_head() { return server_.output().substr(0, 4000); }
};

// max_request 50 with 2 Workers: 3000 requests (6 connections, pipelined
// batches of 10) make each Worker recycle about 30 times. Every request is
// answered, in order, and the Workers end up with new pids.
TEST_F(ServerLifecycle, MaxRequestRecyclesWithoutLoss)
{
    // One NetWorker: it homes its connections on both Workers in turn.
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "0",
                             "--max-request", "50"}));
    pid_t w0 = find_by_name("zan-worker-0");
    pid_t w1 = find_by_name("zan-worker-1");
    ASSERT_GT(w0, 0);
    ASSERT_GT(w1, 0);

    const int kConns = 6, kRounds = 50, kBatch = 10;
    std::vector<Sock> socks;
    std::vector<LineReader> readers;
    for (int i = 0; i < kConns; i++) {
        socks.emplace_back(connect());
        ASSERT_TRUE(socks.back().ok());
    }
    for (auto& s : socks)
        readers.emplace_back(s.get());
    int answered = 0, wrong = 0;
    for (int r = 0; r < kRounds; r++) {
        std::vector<std::vector<std::string>> sent(kConns);
        for (int i = 0; i < kConns; i++) {
            std::string out;
            for (int j = 0; j < kBatch; j++) {
                sent[static_cast<size_t>(i)].push_back("c" + std::to_string(i) + " r" + std::to_string(r) +
                                                       " m" + std::to_string(j));
                out += sent[static_cast<size_t>(i)].back() + "\n";
            }
            ASSERT_TRUE(zt::send_str(socks[static_cast<size_t>(i)].get(), out));
        }
        for (int i = 0; i < kConns; i++) {
            for (int j = 0; j < kBatch; j++) {
                std::string line;
                ASSERT_TRUE(readers[static_cast<size_t>(i)].next(&line, 10000))
                    << "connection " << i << " round " << r << ": reply " << j << " lost (" << answered
                    << " answered so far)\n"
                    << output_head();
                answered++;
                if (line != sent[static_cast<size_t>(i)][static_cast<size_t>(j)]) {
                    if (wrong++ < 5)
                        ADD_FAILURE() << "connection " << i << " round " << r << ": got '" << line
                                      << "', want '" << sent[static_cast<size_t>(i)][static_cast<size_t>(j)] << "'";
                }
            }
        }
    }
    EXPECT_EQ(answered, kConns * kRounds * kBatch);
    EXPECT_EQ(wrong, 0) << "replies out of order or altered";
    // (A successor is named once it has started: wait for the name.)
    EXPECT_GT(wait_for_name("zan-worker-0", w0), 0);
    EXPECT_GT(wait_for_name("zan-worker-1", w1), 0);
    // About 3000 / 50 = 60 recycles; each is a clean exit, not a crash.
    EXPECT_GE(server_.count("exited with code 0"), 40) << output_head();
    EXPECT_EQ(server_.count("killed by signal"), 0) << output_head();
    Sock s = connect();
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(zt::request(s.get(), "after"), "after");
    EXPECT_EQ(stop_and_check(), "");
}

// task_max_request 5 with one TaskWorker: 40 tasks all complete while the
// TaskWorker is replaced about 8 times.
TEST_F(ServerLifecycle, TaskMaxRequestRecycles)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "1",
                             "--task-max-request", "5"}));
    pid_t t0 = find_by_name("zan-task-0");
    ASSERT_GT(t0, 0);

    std::vector<Sock> socks;
    for (int i = 0; i < 4; i++) {
        socks.emplace_back(connect());
        ASSERT_TRUE(socks.back().ok());
    }
    // Sequential tasks first, then pipelined ones from every connection.
    for (int i = 0; i < 8; i++)
        EXPECT_EQ(zt::request(socks[0].get(), "task seq" + std::to_string(i), 10000),
                  "task-done seq" + std::to_string(i));
    std::vector<std::vector<std::string>> want(socks.size());
    for (size_t i = 0; i < socks.size(); i++) {
        std::string out;
        for (int j = 0; j < 8; j++) {
            std::string t = "p" + std::to_string(i) + "-" + std::to_string(j);
            out += "task " + t + "\n";
            want[i].push_back("task-done " + t);
        }
        ASSERT_TRUE(zt::send_str(socks[i].get(), out));
    }
    for (size_t i = 0; i < socks.size(); i++) {
        LineReader r(socks[i].get());
        std::vector<std::string> got;
        std::string line;
        while (got.size() < want[i].size() && r.next(&line, 10000))
            got.push_back(line);
        std::sort(got.begin(), got.end());
        std::sort(want[i].begin(), want[i].end());
        EXPECT_EQ(got, want[i]) << "connection " << i << "\n" << output_head();
    }
    EXPECT_GT(wait_for_name("zan-task-0", t0), 0);
    EXPECT_GE(server_.count("zan-task-0 (pid"), 7) << output_head();
    EXPECT_EQ(server_.count("killed by signal"), 0) << output_head();
    EXPECT_EQ(stop_and_check(), "");
}

// A client of the reload test: sequential requests on a persistent
// connection (every 5th a task), or one request per new connection.
struct Load {
    std::atomic<int> ok{0};
    std::atomic<int> failed{0};
    std::mutex mu;
    std::vector<std::string> errors;

    void fail(const std::string& what)
    {
        failed++;
        std::lock_guard<std::mutex> g(mu);
        if (errors.size() < 10)
            errors.push_back(what);
    }
};

void persistent_client(int port, int id, Load* load, std::atomic<bool>* stop)
{
    Sock s(zt::connect_local(port, 5000));
    if (!s.ok()) {
        load->fail("client " + std::to_string(id) + ": connect failed");
        return;
    }
    for (int n = 0; !stop->load(); n++) {
        bool task = n % 5 == 4;
        std::string text = "p" + std::to_string(id) + "-" + std::to_string(n);
        std::string want = task ? "task-done " + text : text;
        std::string got = zt::request(s.get(), task ? "task " + text : text, 5000);
        if (got == want) {
            load->ok++;
            continue;
        }
        load->fail("client " + std::to_string(id) + ": sent '" + text + "', got '" + got + "'");
        s.reset(zt::connect_local(port, 5000));
        if (!s.ok())
            return;
    }
}

// Pipelined batches of 8 lines: dispatch mode 2 keeps a connection's
// replies in order, also while its Worker is being replaced.
void pipelined_client(int port, int id, Load* load, std::atomic<bool>* stop)
{
    Sock s(zt::connect_local(port, 5000));
    if (!s.ok()) {
        load->fail("pipelined client " + std::to_string(id) + ": connect failed");
        return;
    }
    LineReader r(s.get());
    for (int n = 0; !stop->load(); n++) {
        std::string out;
        std::vector<std::string> want;
        for (int j = 0; j < 8; j++) {
            want.push_back("b" + std::to_string(id) + "-" + std::to_string(n) + "-" + std::to_string(j));
            out += want.back() + "\n";
        }
        if (!zt::send_str(s.get(), out)) {
            load->fail("pipelined client: send failed");
            return;
        }
        for (const auto& w : want) {
            std::string line;
            if (!r.next(&line, 5000)) {
                load->fail("pipelined client: no reply to '" + w + "'");
                return;
            }
            if (line != w) {
                load->fail("pipelined client: want '" + w + "', got '" + line + "'");
                return;
            }
            load->ok++;
        }
    }
}

void short_client(int port, Load* load, std::atomic<bool>* stop)
{
    for (int n = 0; !stop->load(); n++) {
        // One attempt: a refused connection counts as a failure.
        Sock s(zt::connect_local(port, 0));
        std::string text = "s-" + std::to_string(n);
        if (!s.ok()) {
            load->fail("short client: connect refused");
            continue;
        }
        std::string got = zt::request(s.get(), text, 5000);
        if (got == text)
            load->ok++;
        else
            load->fail("short client: sent '" + text + "', got '" + got + "'");
    }
}

bool wait_progress(const Load& load, int more, int timeout_ms)
{
    int target = load.ok.load() + more;
    long long deadline = zt::now_ms() + zt::scaled(timeout_ms);
    while (load.ok.load() < target) {
        if (zt::now_ms() >= deadline || load.failed.load() > 0)
            return false;
        ::usleep(1000);  // polling a counter of the client threads
    }
    return true;
}

TEST_F(ServerLifecycle, ReloadUnderLoadLosesNothing)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "2", "--task-worker-num", "2"}));
    std::map<std::string, pid_t> before = tree();
    ASSERT_EQ(before.size(), 6u);

    Load load;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    zt::JoinGuard join(stop, threads);
    for (int i = 0; i < 3; i++)
        threads.emplace_back(persistent_client, port_, i, &load, &stop);
    for (int i = 0; i < 2; i++)
        threads.emplace_back(pipelined_client, port_, i, &load, &stop);
    threads.emplace_back(short_client, port_, &load, &stop);
    ASSERT_TRUE(wait_progress(load, 200, 10000)) << "no load before the reload";

    // Three reloads in a row, each completed (every Worker and TaskWorker
    // replaced, the old process gone) with the load running throughout.
    std::map<std::string, pid_t> cur = before;
    for (int round = 0; round < 3; round++) {
        server_.signal(SIGUSR1);
        for (const char* name : {"zan-worker-0", "zan-worker-1", "zan-task-0", "zan-task-1"}) {
            pid_t f = wait_replaced(name, cur[name], 15000);
            ASSERT_GT(f, 0) << "reload " << round << ": " << name << " was not replaced\n"
                            << output_head();
            cur[name] = f;
        }
        EXPECT_TRUE(wait_progress(load, 200, 10000)) << "no progress after reload " << round;
    }
    stop = true;
    for (auto& t : threads)
        t.join();

    EXPECT_EQ(load.failed.load(), 0) << [&] {
        std::string all;
        for (const auto& e : load.errors)
            all += e + "\n";
        return all + output_head();
    }();
    EXPECT_GT(load.ok.load(), 400);
    // NetWorkers are not reloaded: their clients never noticed.
    EXPECT_EQ(find_by_name("zan-net-0"), before["zan-net-0"]);
    EXPECT_EQ(find_by_name("zan-net-1"), before["zan-net-1"]);
    EXPECT_TRUE(server_.wait_for("reloading Workers and TaskWorkers", 1000));
    EXPECT_EQ(server_.count("killed by signal"), 0) << output_head();
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerLifecycle, Usr2ReloadsOnlyTaskWorkers)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "2",
                             "--user-process-num", "1"}));
    std::map<std::string, pid_t> before = tree();
    ASSERT_EQ(before.size(), 6u);
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(zt::request(c.get(), "task a"), "task-done a");

    server_.signal(SIGUSR2);
    for (const char* name : {"zan-task-0", "zan-task-1"})
        EXPECT_GT(wait_replaced(name, before[name], 15000), 0)
            << name << " was not replaced\n" << server_.output();
    EXPECT_TRUE(server_.wait_for("reloading TaskWorkers", 1000));
    std::map<std::string, pid_t> after = tree();
    EXPECT_EQ(after.size(), before.size());
    for (const char* name : {"zan-worker-0", "zan-worker-1", "zan-net-0", "zan-user-0"})
        EXPECT_EQ(after[name], before[name]) << name << " was restarted by SIGUSR2";
    EXPECT_EQ(zt::request(c.get(), "task b"), "task-done b");
    EXPECT_EQ(zt::request(c.get(), "echo"), "echo");
    EXPECT_EQ(stop_and_check(), "");
}

// --log-file F; F is renamed away; SIGRTMIN makes the Master (and through
// it the children) open a new F, where the next lines go.
TEST_F(ServerLifecycle, LogReopenOnSigrtmin)
{
    zt::TempDir dir;
    ASSERT_FALSE(dir.path.empty());
    std::string log = dir.path + "/zan.log";
    std::string old = dir.path + "/zan.log.1";
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "1",
                             "--log-file", log}));
    ASSERT_TRUE(zt::file_exists(log));
    ASSERT_EQ(::rename(log.c_str(), old.c_str()), 0);

    server_.signal(SIGRTMIN);
    long long deadline = zt::now_ms() + zt::scaled(5000);
    while (!zt::file_exists(log) && zt::now_ms() < deadline)
        ::usleep(2000);  // polling the file system: no event for "file created"
    ASSERT_TRUE(zt::file_exists(log)) << "SIGRTMIN did not reopen the log file";

    // A Master line.
    server_.signal(SIGUSR2);
    deadline = zt::now_ms() + zt::scaled(5000);
    while (zt::read_file(log).find("reloading TaskWorkers") == std::string::npos && zt::now_ms() < deadline)
        ::usleep(5000);  // polling the log file
    EXPECT_NE(zt::read_file(log).find("reloading TaskWorkers"), std::string::npos)
        << "new log:\n" << zt::read_file(log) << "old log:\n" << zt::read_file(old);
    EXPECT_EQ(zt::read_file(old).find("reloading TaskWorkers"), std::string::npos);

    // A NetWorker line: an oversized message is logged by net-0 when it
    // closes the connection. The NetWorker reopens when it handles the
    // signal the Master forwarded, which no client can observe; retry.
    bool found = false;
    deadline = zt::now_ms() + zt::scaled(5000);
    std::string junk(1100 * 1024, 'j');
    while (!found && zt::now_ms() < deadline) {
        Sock c = connect();
        ASSERT_TRUE(c.ok());
        zt::send_str(c.get(), junk);
        zt::wait_closed(c.get(), 2000);
        long long until = zt::now_ms() + zt::scaled(500);
        while (!found && zt::now_ms() < until) {
            found = zt::read_file(log).find(" net-0: ") != std::string::npos;
            if (!found)
                ::usleep(5000);  // polling the log file
        }
    }
    EXPECT_TRUE(found) << "no NetWorker line in the reopened log\nnew log:\n"
                       << zt::read_file(log) << "old log:\n" << zt::read_file(old);
    EXPECT_EQ(stop_and_check(), "");
}

}  // namespace

namespace {

// Real and effective uid/gid of pid from /proc/pid/status ("Uid: r e s f").
bool ids_of(pid_t pid, unsigned* uid, unsigned* gid)
{
    std::string st = zt::read_file("/proc/" + std::to_string(pid) + "/status");
    size_t u = st.find("\nUid:"), g = st.find("\nGid:");
    if (u == std::string::npos || g == std::string::npos)
        return false;
    unsigned r, e;
    if (sscanf(st.c_str() + u + 5, "%u %u", &r, &e) != 2 || r != e)
        return false;
    *uid = r;
    if (sscanf(st.c_str() + g + 5, "%u %u", &r, &e) != 2 || r != e)
        return false;
    *gid = r;
    return true;
}

}  // namespace

// user/group are applied in every child for real, while the Master keeps
// its own ids (it must still remove the queue and reap); the server works.
TEST_F(ServerLifecycle, UserAndGroupAppliedInChildren)
{
    if (::geteuid() != 0)
        GTEST_SKIP() << "switching users needs root";
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "1",
                             "--user-process-num", "1", "--user", "65534", "--group", "65534"}));
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(zt::request(c.get(), "task as-nobody"), "task-done as-nobody");
    EXPECT_EQ(zt::request(c.get(), "hello"), "hello");
    unsigned uid = 1, gid = 1;
    ASSERT_TRUE(ids_of(server_.pid(), &uid, &gid));
    EXPECT_EQ(uid, 0u) << "the Master must keep its ids";
    auto kids = zt::named_descendants(server_.pid());
    ASSERT_EQ(kids.size(), 4u);
    for (const auto& k : kids) {
        ASSERT_TRUE(ids_of(k.second, &uid, &gid)) << k.first;
        EXPECT_EQ(uid, 65534u) << k.first;
        EXPECT_EQ(gid, 65534u) << k.first;
    }
    EXPECT_EQ(stop_and_check(), "");
}

// One Worker and one NetWorker, quiet logs: the library servers below.
static zan::ServerConfig one_of_each()
{
    zan::ServerConfig cfg;
    cfg.worker_num = 1;
    cfg.net_worker_num = 1;
    cfg.log_level = zan::Level::warn;
    return cfg;
}

// Changing uid/gid clears a process's parent-death signal, so it must be
// set after the change: a UserWorker blocked in its callback for good has
// no other way to learn that the Master died. The Master here is a forked
// child of the test running a library server as uid/gid 65534.
TEST(ServerLifecycleLib, BlockedUserWorkerDiesWithTheMasterAfterAUserChange)
{
    if (::geteuid() != 0)
        GTEST_SKIP() << "switching users needs root";
    zt::Gate report;
    zt::Child master;
    ASSERT_TRUE(master.start([&] {
        zan::ServerConfig cfg = one_of_each();
        cfg.user = "65534";
        cfg.group = "65534";
        zan::TcpServer srv("127.0.0.1", 0, cfg);
        srv.add_process([&report](zan::TcpServer&) {
            if (!report.put(::getpid()))
                _exit(3);
            for (;;)
                ::pause();  // never returns to zan's loop
        });
        return srv.start();
    }));
    int32_t user = 0;
    ASSERT_TRUE(report.get(&user, 10000)) << "the UserWorker did not start";
    zt::PidGuard guard;
    guard.add(zt::descendants_of(master.pid()));
    guard.add(user);

    ASSERT_EQ(::kill(master.pid(), SIGKILL), 0);
    EXPECT_NE(master.wait(5000), -1);
    EXPECT_TRUE(zt::wait_gone(user, 3000)) << "the UserWorker outlived its Master";
}

// A library server run by a forked child of the test (its Master), on
// 127.0.0.1 with an ephemeral port that on_start reports through report().
// Once it has started, its descendants are guarded: SIGKILLed at scope
// exit should the test fail before stop().
class LibServer {
public:
    // Installs what `setup` sets on the server, starts it and waits up to
    // 10 s for its port; false if it did not come up.
    bool start(const zan::ServerConfig& cfg, const std::function<void(zan::TcpServer&)>& setup)
    {
        bool forked = master_.start([&] {
            zan::TcpServer srv("127.0.0.1", 0, cfg);
            srv.on_start([this](zan::TcpServer& s) {
                if (!report_.put(s.port()))
                    _exit(3);
            });
            setup(srv);
            return srv.start();
        });
        int32_t port = 0;
        if (!forked || !report_.get(&port, 10000))
            return false;
        port_ = port;
        guard_.add(zt::descendants_of(master_.pid()));
        return true;
    }
    // A value a callback sends with report().put(); false after timeout_ms.
    bool get(int32_t* v, int timeout_ms = 10000) { return report_.get(v, timeout_ms); }
    zt::Gate& report() { return report_; }
    int port() const { return port_; }
    pid_t pid() const { return master_.pid(); }
    // Graceful stop: SIGTERM, then the Master must exit within 10 s.
    bool stop() { return ::kill(master_.pid(), SIGTERM) == 0 && master_.wait(10000) != -1; }
    int wait(int timeout_ms) { return master_.wait(timeout_ms); }

private:
    zt::Gate report_;
    zt::Child master_;
    zt::PidGuard guard_;  // destroyed first: the children before the Master
    int port_ = 0;
};

static std::optional<std::string> echo_task(zan::TcpServer&, zan::TaskId, int, std::string_view d)
{
    return std::string(d);
}

// A Worker stuck in a callback reads no signalfd, so SIGTERM (which it
// takes that way) would stay pending for ever: the parent-death signal has
// a handler of its own, and the Worker leaves when its Master is killed.
TEST(ServerLifecycleLib, WorkerStuckInACallbackDiesWithTheMaster)
{
    LibServer srv;
    ASSERT_TRUE(srv.start(one_of_each(), [&srv](zan::TcpServer& s) {
        s.on_receive([&rep = srv.report()](zan::TcpServer&, zan::SessionId, std::string_view) {
            if (!rep.put(::getpid()))
                _exit(3);
            for (;;)
                ::usleep(100 * 1000);  // stuck: never returns to zan's loop
        });
    })) << "the server did not start";
    int32_t worker = 0;
    Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "stuck\n"));
    ASSERT_TRUE(srv.get(&worker, 5000)) << "on_receive did not run";

    ASSERT_EQ(::kill(srv.pid(), SIGKILL), 0);
    EXPECT_NE(srv.wait(5000), -1);
    EXPECT_TRUE(zt::wait_gone(worker, 3000)) << "the stuck Worker outlived its Master";
}

// task() and taskwait() refuse a destination that is no TaskWorker: one
// below -1 (which means "any") as well as one not below task_worker_num.
// A Worker of a library server tries each and reports a bit per outcome.
TEST(ServerLifecycleLib, TaskRefusesADestinationThatIsNoTaskWorker)
{
    zan::ServerConfig cfg = one_of_each();
    cfg.task_worker_num = 2;
    LibServer srv;
    ASSERT_TRUE(srv.start(cfg, [&srv](zan::TcpServer& s) {
        s.on_task(echo_task);
        s.on_receive([&rep = srv.report()](zan::TcpServer& s, zan::SessionId, std::string_view) {
            int32_t bits = 0;
            const int dsts[] = {-2, -100, 2, -1};  // only -1 names TaskWorkers
            for (int i = 0; i < 4; i++)
                if (s.task("x", dsts[i]) != 0)
                    bits |= 1 << i;
            if (s.taskwait("x", 1000, -2))
                bits |= 1 << 4;
            if (s.taskwait("x", 5000, -1) == std::optional<std::string>("x"))
                bits |= 1 << 5;
            if (!rep.put(bits))
                _exit(3);
        });
    })) << "the server did not start";
    int32_t bits = 0;
    {
        Sock c(zt::connect_local(srv.port()));
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(zt::send_str(c.get(), "go\n"));
        ASSERT_TRUE(srv.get(&bits)) << "on_receive did not report";
    }
    EXPECT_EQ((1 << 3) | (1 << 5), bits) << "bit i set: dst {-2, -100, 2, -1}[i] accepted; "
                                             "bit 4: taskwait to -2; bit 5: taskwait to -1";
    EXPECT_TRUE(srv.stop());
}

// A task result whose id names a process that is not this Worker nor its
// running predecessor (here a task put on the queue by another program,
// with the test's own pid in the id, as the wire format allows) is
// dropped. It used to go back into the Worker's inbox whenever that pid
// was alive, and from there to the Worker again, for ever: a busy loop.
TEST(ServerLifecycleLib, ResultForAForeignProcessIsDroppedNotBounced)
{
    std::set<int> before = zt::sysv_queues();
    zan::ServerConfig cfg = one_of_each();
    cfg.task_worker_num = 1;
    LibServer srv;
    ASSERT_TRUE(srv.start(cfg, [&srv](zan::TcpServer& s) {
        s.on_task(echo_task);
        s.on_receive([&rep = srv.report()](zan::TcpServer& s, zan::SessionId, std::string_view) {
            // One TaskWorker: ours runs after the forged one.
            if (!rep.put(s.taskwait("y", 5000) == std::optional<std::string>("y") ? 1 : 0))
                _exit(3);
        });
    })) << "the server did not start";
    std::set<int> after = zt::sysv_queues();
    std::vector<int> fresh;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(fresh));
    // Other programs on the machine make queues too: the server's is the
    // one its TaskWorker sleeps in msgrcv() on.
    pid_t task = zt::find_by_name(srv.pid(), "zan-task-0");
    ASSERT_GT(task, 0);
    unsigned long waits_on = 0;
    ASSERT_TRUE(zt::wait_in_syscall(task, {SYS_msgrcv}, 5000, &waits_on)) << "the TaskWorker does not wait";
    fresh.erase(std::remove_if(fresh.begin(), fresh.end(),
                               [waits_on](int id) { return static_cast<unsigned long>(id) != waits_on; }),
                fresh.end());
    ASSERT_EQ(1u, fresh.size()) << "the server's task queue";
    zt::QueueGuard queues;
    queues.capture(srv.pid());

    struct {
        long mtype;
        char text[sizeof(zan::TaskHeader) + 1];
    } msg = {zan::kTaskTypeShared, {}};
    zan::TaskHeader h{};
    h.magic = zan::kTaskMagic;
    h.src_worker = 0;
    h.dst = -1;
    h.task_id = (static_cast<uint64_t>(::getpid()) & 0xffffff) << 24 | 1;  // Worker 0, our pid
    h.len = 1;
    memcpy(msg.text, &h, sizeof h);
    msg.text[sizeof h] = 'x';
    ASSERT_EQ(0, ::msgsnd(fresh[0], &msg, sizeof msg.text, IPC_NOWAIT)) << strerror(errno);

    int32_t ok = 0;
    Sock c(zt::connect_local(srv.port()));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "go\n"));
    ASSERT_TRUE(srv.get(&ok)) << "on_receive did not report";
    EXPECT_EQ(1, ok) << "taskwait() did not get its own result";
    pid_t worker = zt::find_by_name(srv.pid(), "zan-worker-0");
    ASSERT_GT(worker, 0);
    long t0 = zt::cpu_ms(worker);
    struct timespec ts = {0, 500 * 1000 * 1000};
    nanosleep(&ts, nullptr);  // a measuring window, not a synchronisation
    long used = zt::cpu_ms(worker) - t0;
    EXPECT_LT(used, 150) << "the Worker used " << used << " ms of CPU in 500 ms while idle";
    c.reset();
    EXPECT_TRUE(srv.stop());
}

// tasking_num counts tasks not yet finished: a result that comes after
// its taskwait() timed out still finishes its task (it stayed counted).
TEST(ServerLifecycleLib, LateResultOfATimedOutTaskwaitIsCounted)
{
    zan::ServerConfig cfg = one_of_each();
    cfg.task_worker_num = 1;
    LibServer srv;
    ASSERT_TRUE(srv.start(cfg, [&srv](zan::TcpServer& s) {
        s.on_task([](zan::TcpServer& t, zan::TaskId id, int w, std::string_view d) {
            ::usleep(200 * 1000);
            return echo_task(t, id, w, d);
        });
        s.on_receive([&rep = srv.report()](zan::TcpServer& s, zan::SessionId, std::string_view m) {
            int32_t v = 0;
            if (m.substr(0, 4) == "wait") {
                v = s.taskwait("x", 20) ? 1 : 0;
            } else {
                v = static_cast<int32_t>(s.stats().tasking_num);
            }
            if (!rep.put(v))
                _exit(3);
        });
    })) << "the server did not start";
    int32_t v = -1;
    {
        Sock c(zt::connect_local(srv.port()));
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(zt::send_str(c.get(), "wait\n"));
        ASSERT_TRUE(srv.get(&v));
        ASSERT_EQ(0, v) << "taskwait() should have timed out";
        long long deadline = zan::monotonic_ms() + 5000;
        do {  // the late result comes about 200 ms later
            ASSERT_TRUE(zt::send_str(c.get(), "count\n"));
            ASSERT_TRUE(srv.get(&v));
        } while (v != 0 && zan::monotonic_ms() < deadline && ::usleep(20 * 1000) == 0);
        EXPECT_EQ(0, v) << "tasking_num after the late result";
    }
    EXPECT_TRUE(srv.stop());
}

// --daemonize: the command returns at once with status 0, the Master runs
// on detached (its own session, not our child), writes the pid file,
// serves, and stops cleanly on SIGTERM, removing the pid file.
TEST_F(ServerLifecycle, DaemonizeDetachesAndServes)
{
    zt::TempDir dir;
    ASSERT_FALSE(dir.path.empty());
    std::string pidfile = dir.path + "/echod.pid";
    std::string log = dir.path + "/echod.log";
    int port = 0;
    {  // a free port: bind to port 0 and give it back
        Sock probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        struct sockaddr_in a = zt::loopback_addr(0);
        ASSERT_EQ(::bind(probe.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a)), 0);
        socklen_t len = sizeof(a);
        ASSERT_EQ(::getsockname(probe.get(), reinterpret_cast<struct sockaddr*>(&a), &len), 0);
        port = ntohs(a.sin_port);
    }
    Proc launcher;
    ASSERT_TRUE(launcher.spawn({zt::tool("zan-echod"), "--port", std::to_string(port), "--worker-num",
                                "1", "--net-worker-num", "1", "--task-worker-num", "1", "--daemonize",
                                "--pid-file", pidfile, "--log-file", log}));
    int st = launcher.wait_exit(5000);
    ASSERT_NE(st, -1) << "the launching process did not return";
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    // The daemon must not keep the launcher's stdout or stderr: a shell's
    // $(zan-echod --daemonize ...) would wait on that pipe for ever.
    EXPECT_TRUE(launcher.output_closed()) << "the daemon still holds the launcher's output pipe";

    long long deadline = zt::now_ms() + zt::scaled(5000);
    pid_t master = 0;
    while (zt::now_ms() < deadline && master <= 0) {
        master = static_cast<pid_t>(atol(zt::read_file(pidfile).c_str()));
        if (master <= 0)
            ::usleep(5000);  // polling the file system for the pid file
    }
    ASSERT_GT(master, 0) << "no pid file";
    zt::PidGuard guard;  // a daemon is no child of ours: kill it if we fail
    guard.add(master);
    pid_t kids_root = master;
    ASSERT_NE(zt::wait_for_name(kids_root, "zan-net-0", 0, 5000), 0) << zt::read_file(log);
    EXPECT_NE(::getsid(master), ::getsid(0)) << "the daemon kept our session";
    guard.add([&] {
        std::vector<pid_t> v;
        for (const auto& k : zt::named_descendants(master))
            v.push_back(k.second);
        return v;
    }());
    Sock c(zt::connect_local(port));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(zt::request(c.get(), "task detached"), "task-done detached");
    ASSERT_EQ(::kill(master, SIGTERM), 0);
    EXPECT_TRUE(zt::wait_gone(master, 10000));
    EXPECT_FALSE(zt::file_exists(pidfile)) << "pid file left behind";
}
