// Integration tests of the process model through zan-echod, the demo
// server: the process tree and its names, echo over many connections,
// tasks, stats, user processes, dispatch modes, the pid file and a
// graceful SIGTERM. Every test starts the real build/tools/zan-echod on
// 127.0.0.1 with --port 0 and talks to it over loopback sockets; every
// wait has a deadline, and the zt::ServerTest fixture cleans up processes
// and SysV queues even when an assertion fails.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/sys.h"

namespace {

using zt::LineReader;
using zt::Proc;
using zt::Sock;
using ServerBasic = zt::ServerTest;

// Sends all lines in one write and reads back as many reply lines.
std::vector<std::string> pipeline(int fd, const std::vector<std::string>& lines, int timeout_ms = 10000)
{
    std::string out;
    for (const auto& l : lines)
        out += l + "\n";
    std::vector<std::string> replies;
    if (!zt::send_str(fd, out))
        return replies;
    LineReader r(fd);
    long long deadline = zt::now_ms() + zt::scaled(timeout_ms);
    std::string line;
    while (replies.size() < lines.size() &&
           r.next(&line, static_cast<int>(std::max(1LL, deadline - zt::now_ms()))))
        replies.push_back(line);
    return replies;
}

std::vector<std::string> numbered(const std::string& prefix, int n)
{
    std::vector<std::string> v;
    for (int i = 0; i < n; i++)
        v.push_back(prefix + std::to_string(i));
    return v;
}

// Polls "stats" until field `key` reaches `want`; returns the last value.
// (Counters are updated after the reply is sent, so a client may see the
// reply before the count.)
long long wait_stat(int fd, const std::string& key, long long want, int timeout_ms = 5000)
{
    long long deadline = zt::now_ms() + zt::scaled(timeout_ms), v = -1;
    for (;;) {
        v = zt::stat_of(fd, key);
        if (v >= want || zt::now_ms() >= deadline)
            return v;
        ::usleep(10000);  // polling a counter: the server has no event for it
    }
}

void set_send_timeout(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

TEST_F(ServerBasic, ProcessTreeAndNames)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "2", "--task-worker-num", "2",
                             "--user-process-num", "2"}));
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(zt::request(c.get(), "hello"), "hello");
    EXPECT_EQ(zt::request(c.get(), "task t"), "task-done t");
    queues_.capture(server_.pid());

    EXPECT_EQ(zt::comm_of(server_.pid()), "zan-master");
    std::multiset<std::string> names;
    for (pid_t c : zt::children_of(server_.pid()))
        names.insert(zt::comm_of(c));
    std::multiset<std::string> want{"zan-worker-0", "zan-worker-1", "zan-task-0", "zan-task-1",
                                    "zan-user-0",   "zan-user-1",   "zan-net-0",  "zan-net-1"};
    EXPECT_EQ(names, want);
    // Every process is a direct child of the Master: no grandchildren.
    EXPECT_EQ(zt::descendants_of(server_.pid()).size(), want.size());
    // One task queue for the TaskWorkers.
    EXPECT_EQ(queues_.ours().size(), 1u);
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, EchoAcrossManyConnections)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "2", "--task-worker-num", "0"}));

    const int kConns = 64;
    std::vector<Sock> socks;
    for (int i = 0; i < kConns; i++) {
        socks.emplace_back(connect());
        ASSERT_TRUE(socks.back().ok()) << "connection " << i;
    }
    // Interleaved: every connection has a request in flight at once.
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < kConns; i++)
            ASSERT_TRUE(zt::send_str(socks[static_cast<size_t>(i)].get(),
                                     "c" + std::to_string(i) + "-r" + std::to_string(round) + "\n"));
        for (int i = 0; i < kConns; i++) {
            std::string line;
            ASSERT_TRUE(zt::read_line(socks[static_cast<size_t>(i)].get(), &line))
                << "connection " << i << " round " << round;
            EXPECT_EQ(line, "c" + std::to_string(i) + "-r" + std::to_string(round));
        }
    }
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, EchoPipelinedLinesInOrder)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "0"}));
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    std::vector<std::string> lines = numbered("pipelined line ", 2000);
    // A CRLF line is echoed as received, CR included.
    lines.push_back("crlf\r");
    std::vector<std::string> replies = pipeline(c.get(), lines);
    EXPECT_EQ(replies, lines);
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, EchoLargeLine)
{
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "0"}));
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    set_send_timeout(c.get(), 10000);

    std::string big(512 * 1024, 'x');
    for (size_t i = 0; i < big.size(); i++)
        big[i] = static_cast<char>('a' + (i * 7 + i / 977) % 26);
    // The big line, then a small one in the same write.
    ASSERT_TRUE(zt::send_str(c.get(), big + "\nafter\n"));
    LineReader r(c.get());
    std::string line;
    ASSERT_TRUE(r.next(&line, 15000));
    EXPECT_EQ(line.size(), big.size());
    EXPECT_TRUE(line == big) << "512 KiB line came back altered";
    ASSERT_TRUE(r.next(&line, 5000));
    EXPECT_EQ(line, "after");
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, OversizedLineClosesOnlyThatConnection)
{
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "0"}));
    Sock other = connect();
    ASSERT_TRUE(other.ok());
    ASSERT_EQ(zt::request(other.get(), "before"), "before");

    // zan-echod sets package_max_length to 1 MiB: 1.5 MiB without a newline
    // is a framing error and the connection is closed.
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    set_send_timeout(c.get(), 5000);
    std::string junk(1536 * 1024, 'j');
    zt::send_str(c.get(), junk);  // may fail part-way once the server closes
    EXPECT_TRUE(zt::wait_closed(c.get(), 5000)) << "oversized message did not close the connection";
    EXPECT_EQ(zt::request(other.get(), "still here"), "still here");
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, TaskRoundTrip)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "2"}));

    Sock c = connect();
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(zt::request(c.get(), "task hello"), "task-done hello");

    // Several connections with pipelined tasks; two TaskWorkers may finish
    // them in any order, so compare as sets.
    std::vector<Sock> socks;
    for (int i = 0; i < 3; i++) {
        socks.emplace_back(connect());
        ASSERT_TRUE(socks.back().ok());
    }
    for (size_t i = 0; i < socks.size(); i++) {
        std::vector<std::string> tasks, want;
        for (int j = 0; j < 20; j++) {
            std::string t = "t-" + std::to_string(i) + "-" + std::to_string(j);
            tasks.push_back("task " + t);
            want.push_back("task-done " + t);
        }
        std::vector<std::string> got = pipeline(socks[i].get(), tasks);
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
        EXPECT_EQ(got, want) << "connection " << i;
    }

    EXPECT_EQ(wait_stat(c.get(), "task_count", 61), 61);

    // A payload larger than one SysV message (msgmax is 8 KiB by default)
    // and than one channel record (64 KiB), on a fresh connection.
    Sock d = connect();
    ASSERT_TRUE(d.ok());
    std::string big(300 * 1024, 'T');
    for (size_t i = 0; i < big.size(); i++)
        big[i] = static_cast<char>('A' + i % 23);
    std::vector<std::string> got = pipeline(d.get(), {"task " + big});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].size(), big.size() + 10);
    EXPECT_TRUE(got[0] == "task-done " + big)
        << "300 KiB task came back altered; starts with: " << got[0].substr(0, 40);
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, StatsReportsCounters)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "2", "--task-worker-num", "1"}));

    std::vector<Sock> socks;
    for (int i = 0; i < 3; i++) {
        socks.emplace_back(connect());
        ASSERT_TRUE(socks.back().ok());
        // A reply proves the connection was accepted.
        ASSERT_EQ(zt::request(socks.back().get(), "ping"), "ping");
    }
    std::string js = zt::request(socks[0].get(), "stats");
    ASSERT_EQ(js.front(), '{') << js;
    ASSERT_EQ(js.back(), '}') << js;
    EXPECT_EQ(zt::json_int(js, "connection_num"), 3) << js;
    EXPECT_EQ(zt::json_int(js, "accept_count"), 3) << js;
    EXPECT_EQ(zt::json_int(js, "close_count"), 0) << js;
    EXPECT_GE(zt::json_int(js, "request_count"), 3) << js;
    EXPECT_LE(zt::json_int(js, "request_count"), 4) << js;
    EXPECT_EQ(zt::json_int(js, "worker_num"), 2) << js;
    EXPECT_EQ(zt::json_int(js, "task_worker_num"), 1) << js;
    EXPECT_EQ(zt::json_int(js, "worker_respawn_count"), 0) << js;
    EXPECT_EQ(zt::json_int(js, "task_count"), 0) << js;

    EXPECT_EQ(zt::request(socks[1].get(), "task x"), "task-done x");
    EXPECT_EQ(wait_stat(socks[0].get(), "task_count", 1), 1);

    // Closing a client is counted once the NetWorker has seen the EOF.
    socks[2].reset();
    long long deadline = zt::now_ms() + zt::scaled(5000);
    long long conns = -1, closes = -1;
    while (zt::now_ms() < deadline) {
        js = zt::request(socks[0].get(), "stats");
        conns = zt::json_int(js, "connection_num");
        closes = zt::json_int(js, "close_count");
        if (conns == 2 && closes == 1)
            break;
        ::usleep(10000);  // polling a counter: the server has no event for it
    }
    EXPECT_EQ(conns, 2) << js;
    EXPECT_EQ(closes, 1) << js;
    EXPECT_GE(zt::json_int(js, "request_count"), 6) << js;
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, UserProcessesAllStarted)
{
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "0",
                             "--user-process-num", "3"}));
    for (int i = 0; i < 3; i++) {
        std::string name = "zan-user-" + std::to_string(i);
        pid_t u = find_by_name(name);
        EXPECT_GT(u, 0) << name << " is missing";
        if (u > 0) {
            std::vector<pid_t> kids = zt::children_of(server_.pid());
            EXPECT_NE(std::find(kids.begin(), kids.end(), u), kids.end()) << name;
        }
    }
    EXPECT_EQ(find_by_name("zan-user-3"), 0);
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(zt::stat_of(c.get(), "user_worker_num"), 3);
    EXPECT_EQ(stop_and_check(), "");
}

// Mode 1: every message goes to the next Worker in turn; a connection's
// replies may come back out of order, but none is lost.
TEST_F(ServerBasic, DispatchMode1RoundRobin)
{
    ASSERT_TRUE(start_echod({"--worker-num", "4", "--net-worker-num", "1", "--task-worker-num", "0",
                             "--dispatch-mode", "1"}));
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    std::map<int, int> hits;
    for (int i = 0; i < 20; i++) {
        int w = zt::whoami(c.get());
        ASSERT_GE(w, 0);
        hits[w]++;
    }
    EXPECT_EQ(hits.size(), 4u);
    for (const auto& kv : hits)
        EXPECT_EQ(kv.second, 5) << "worker " << kv.first;

    std::vector<std::string> lines = numbered("rr-", 400);
    std::vector<std::string> got = pipeline(c.get(), lines);
    std::sort(got.begin(), got.end());
    std::sort(lines.begin(), lines.end());
    EXPECT_EQ(got, lines);
    EXPECT_EQ(stop_and_check(), "");
}

// Mode 2 (default): all messages of a connection go to one Worker, in order.
TEST_F(ServerBasic, DispatchMode2ByConnection)
{
    ASSERT_TRUE(start_echod({"--worker-num", "4", "--net-worker-num", "2", "--task-worker-num", "0",
                             "--dispatch-mode", "2"}));
    std::set<int> used;
    std::vector<Sock> socks;
    for (int i = 0; i < 8; i++) {
        socks.emplace_back(connect());
        ASSERT_TRUE(socks.back().ok());
    }
    for (auto& s : socks) {
        int first = zt::whoami(s.get());
        ASSERT_GE(first, 0);
        used.insert(first);
        for (int j = 0; j < 9; j++)
            EXPECT_EQ(zt::whoami(s.get()), first);
    }
    EXPECT_GE(used.size(), 2u) << "8 connections all went to one of 4 Workers";

    std::vector<std::string> lines = numbered("bc-", 1000);
    EXPECT_EQ(pipeline(socks[0].get(), lines), lines);
    EXPECT_EQ(stop_and_check(), "");
}

// Mode 3: idle Worker first. Worker 0 is stopped (SIGSTOP) with one
// message parked on it; every later message must go to the idle Worker 1
// instead of queueing behind it.
TEST_F(ServerBasic, DispatchMode3IdleWorkerFirst)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "0",
                             "--dispatch-mode", "3"}));
    Sock a(connect()), b(connect());
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(zt::request(a.get(), "a"), "a");
    ASSERT_EQ(zt::request(b.get(), "b"), "b");

    // With both idle, sequential messages are spread over both Workers.
    std::set<int> seen;
    for (int i = 0; i < 10; i++)
        seen.insert(zt::whoami(b.get()));
    EXPECT_EQ(seen, (std::set<int>{0, 1}));

    pid_t w0 = find_by_name("zan-worker-0");
    ASSERT_GT(w0, 0);
    ASSERT_TRUE(freeze(w0));
    // Park a message on Worker 0: a reply can only come from Worker 1, so
    // ask until one stays unanswered.
    bool parked = false;
    for (int i = 0; i < 6 && !parked; i++) {
        ASSERT_TRUE(zt::send_str(a.get(), "whoami\n"));
        std::string line;
        if (!zt::read_line(a.get(), &line, 1500))
            parked = true;
        else
            EXPECT_EQ(line.rfind("worker 1 ", 0), 0u) << line;
    }
    ASSERT_TRUE(parked) << "no message was dispatched to the stopped Worker 0";

    // Worker 0 has a backlog: everything now goes to Worker 1.
    int to_w1 = 0;
    for (int i = 0; i < 20; i++) {
        int w = zt::whoami(b.get(), nullptr, 5000);
        if (w < 0)
            break;  // parked behind the stopped Worker: mode 3 failed
        EXPECT_EQ(w, 1);
        to_w1 += w == 1;
    }
    EXPECT_EQ(to_w1, 20) << "a message queued behind the busy Worker";

    ASSERT_EQ(::kill(w0, SIGCONT), 0);
    std::string line;
    ASSERT_TRUE(zt::read_line(a.get(), &line, 5000));
    EXPECT_EQ(line.rfind("worker 0 ", 0), 0u) << "the parked message: " << line;
    EXPECT_EQ(stop_and_check(), "");
}

// Mode 4: by client IP. Loopback accepts any 127.x.y.z as a source.
TEST_F(ServerBasic, DispatchMode4ByClientIp)
{
    ASSERT_TRUE(start_echod({"--worker-num", "4", "--net-worker-num", "2", "--task-worker-num", "0",
                             "--dispatch-mode", "4"}));
    std::map<std::string, int> by_ip;
    std::set<int> used;
    for (int round = 0; round < 2; round++) {
        for (int i = 1; i <= 8; i++) {
            std::string ip = "127.0.0." + std::to_string(i);
            Sock s(zt::connect_from(port_, ip));
            ASSERT_TRUE(s.ok()) << ip;
            int w = zt::whoami(s.get());
            ASSERT_GE(w, 0) << ip;
            for (int j = 0; j < 3; j++)
                EXPECT_EQ(zt::whoami(s.get()), w) << ip;
            if (round == 0)
                by_ip[ip] = w;
            else
                EXPECT_EQ(by_ip[ip], w) << ip << " moved to another Worker";
            used.insert(w);
        }
    }
    EXPECT_GE(used.size(), 2u) << "8 client addresses all went to one of 4 Workers";

    Sock s(zt::connect_from(port_, "127.0.0.9"));
    ASSERT_TRUE(s.ok());
    std::vector<std::string> lines = numbered("ip-", 500);
    EXPECT_EQ(pipeline(s.get(), lines), lines);
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerBasic, PidFileWrittenAndRemoved)
{
    zt::TempDir dir;
    ASSERT_FALSE(dir.path.empty());
    std::string pid_file = dir.path + "/zan-echod.pid";
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "0",
                             "--pid-file", pid_file}));
    EXPECT_EQ(zt::read_file(pid_file), std::to_string(server_.pid()) + "\n");
    EXPECT_EQ(stop_and_check(), "");
    EXPECT_FALSE(zt::file_exists(pid_file));
}

TEST_F(ServerBasic, GracefulStopLeavesNothing)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "2", "--task-worker-num", "2",
                             "--user-process-num", "2"}));
    Sock idle = connect();
    ASSERT_TRUE(idle.ok());
    EXPECT_EQ(zt::request(idle.get(), "task t"), "task-done t");
    queues_.capture(server_.pid());
    ASSERT_EQ(queues_.ours().size(), 1u) << "the server's task queue was not found";
    std::vector<pid_t> kids = zt::descendants_of(server_.pid());
    EXPECT_EQ(kids.size(), 8u);
    guard_.add(kids);

    long long t0 = zt::now_ms();
    server_.signal(SIGTERM);
    int st = server_.wait_exit(15000);
    ASSERT_NE(st, -1) << "no exit within 15 s after SIGTERM";
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
    EXPECT_LT(zt::now_ms() - t0, zt::scaled(3000)) << "an idle server took long to stop";
    EXPECT_TRUE(zt::wait_closed(idle.get(), 2000)) << "idle client not disconnected";
    for (pid_t k : kids)
        EXPECT_FALSE(zt::pid_alive(k)) << "child " << k << " outlived the Master";
    EXPECT_TRUE(queues_.leftover().empty()) << "SysV task queue left behind";
    EXPECT_TRUE(zt::port_bindable(port_));
    std::string out = server_.output();
    EXPECT_EQ(out.find("SIGKILL"), std::string::npos) << "a child had to be killed:\n" << out;
    EXPECT_EQ(zt::sanitizer_report(out), "");
}

}  // namespace

// A bad option value is an error (exit 2, the option named on stderr),
// never a silent default such as port 0 for "--port abc".
// While the Worker's channel is over pipe_buffer_size (the Worker is
// frozen and one client flooded it), a client that connects and at once
// half-closes still gets its end of file once the Worker is back: its
// connect and its close-ack request are not dropped for want of room.
// Another client's line read before its end of file is answered first.
TEST_F(ServerBasic, HalfCloseWhileTheWorkersChannelIsFull)
{
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1", "--task-worker-num", "0",
                             "--pipe-buffer-size", "65536", "--log-level", "debug"}));
    pid_t worker = find_by_name("zan-worker-0");
    ASSERT_GT(worker, 0);
    ASSERT_TRUE(freeze(worker));

    Sock flood = connect();
    ASSERT_TRUE(flood.ok());
    std::string chunk;
    while (chunk.size() < 64 * 1024)
        chunk += std::string(1023, 'f') + "\n";
    size_t sent = 0;
    while (sent < (64u << 20)) {
        ssize_t n = ::send(flood.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EINTR)) << strerror(errno);
        if (errno == EAGAIN && !zt::wait_fd(flood.get(), POLLOUT, 300))
            break;  // the NetWorker stopped reading it: the channel is full
    }
    ASSERT_GT(sent, 1u << 20) << "the flood was not held up";

    Sock half = connect();
    ASSERT_TRUE(half.ok());
    ASSERT_EQ(::shutdown(half.get(), SHUT_WR), 0);
    ASSERT_TRUE(server_.wait_for("end of input", 5000));
    Sock line = connect();
    ASSERT_TRUE(line.ok());
    ASSERT_TRUE(zt::send_str(line.get(), "hello\n"));
    ASSERT_EQ(::shutdown(line.get(), SHUT_WR), 0);

    ASSERT_EQ(::kill(worker, SIGCONT), 0);
    EXPECT_TRUE(zt::wait_closed(half.get(), 10000)) << "the half-closed client never got its end of file";
    EXPECT_EQ(zt::read_all(line.get(), 10000), "hello\n");
    flood.reset();
    EXPECT_EQ(stop_and_check(), "");
}

// discard_timeout_request: a line whose client reset while
// the line waited for a frozen Worker never reaches on_receive and is not
// counted; without the option it is.
class ServerDiscard : public zt::ServerTest {
protected:
    void run(bool discard)
    {
        std::vector<std::string> args = {"--worker-num", "1", "--net-worker-num", "1",
                                         "--task-worker-num", "0", "--log-level", "debug"};
        if (discard)
            args.push_back("--discard-timeout-request");
        ASSERT_TRUE(start_echod(args));
        pid_t worker = find_by_name("zan-worker-0");
        ASSERT_GT(worker, 0);
        ASSERT_TRUE(freeze(worker));
        {
            Sock gone = connect();
            ASSERT_TRUE(gone.ok());
            ASSERT_TRUE(zt::send_str(gone.get(), "lost\n"));
            struct linger lg = {1, 0};  // close with a reset
            ASSERT_EQ(::setsockopt(gone.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
        }
        ASSERT_TRUE(server_.wait_for("closed: read error", 5000));
        ASSERT_EQ(::kill(worker, SIGCONT), 0);
        Sock c = connect();
        ASSERT_TRUE(c.ok());
        EXPECT_EQ(zt::request(c.get(), "hello"), "hello");
        EXPECT_EQ(zt::stat_of(c.get(), "request_count"), discard ? 1 : 2);
        EXPECT_EQ(server_.count("its message is discarded"), discard ? 1 : 0);
        EXPECT_EQ(stop_and_check(), "");
    }
};

TEST_F(ServerDiscard, DataOfAClosedConnectionIsDropped) { run(true); }
TEST_F(ServerDiscard, DataOfAClosedConnectionIsHandledByDefault) { run(false); }

// Drives `rounds` rounds of pipelined load through a server: on each of 8
// connections 64 lines in one write, then every echo read back.
static void pipelined_rounds(int port, int rounds)
{
    std::string lines;
    for (int i = 0; i < 64; i++)
        lines += "line " + std::to_string(i) + "\n";
    std::vector<Sock> conns;
    for (int c = 0; c < 8; c++) {
        conns.emplace_back(zt::connect_local(port));
        ASSERT_TRUE(conns.back().ok());
    }
    for (int r = 0; r < rounds; r++) {
        for (Sock& c : conns)
            ASSERT_TRUE(zt::send_str(c.get(), lines));
        for (Sock& c : conns) {
            for (int i = 0; i < 64; i++) {
                std::string got;
                ASSERT_TRUE(zt::read_line(c.get(), &got)) << "round " << r << " line " << i;
                ASSERT_EQ(got, "line " + std::to_string(i));
            }
        }
    }
}

// The cooperative wait runs: under pipelined load a NetWorker gives up the
// CPU for Worker replies (hop_yield_count grows), and with --hop-yield 0
// it never does. Whether a given pass yields depends on the scheduler, so
// the load goes on until a yield is counted (most runs: the first round).
TEST_F(ServerBasic, NetWorkersYieldForRepliesUnlessTold)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "0"}));
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    int rounds = 0;
    long long yields = 0;
    for (long long end = zt::now_ms() + zt::scaled(20000); yields == 0 && zt::now_ms() < end; rounds++) {
        pipelined_rounds(port_, 4);
        if (HasFatalFailure())
            return;
        yields = zt::stat_of(c.get(), "hop_yield_count");
    }
    EXPECT_GT(yields, 0) << "no yield in " << rounds * 4 << " rounds of load";
    EXPECT_EQ(stop_and_check(), "");

    zt::Proc p;
    int port = zt::start_echod(&p, {"--worker-num", "2", "--net-worker-num", "1", "--task-worker-num", "0",
                                    "--hop-yield", "0"});
    ASSERT_GT(port, 0) << p.output();
    pipelined_rounds(port, std::min(std::max(rounds * 4, 8), 64));
    Sock c0(zt::connect_local(port));
    ASSERT_TRUE(c0.ok());
    EXPECT_EQ(zt::stat_of(c0.get(), "hop_yield_count"), 0);
    EXPECT_EQ(zt::stop_and_check(&p), "");
}

// NetWorkers ask for a short time slice, a re-forked one too; the other
// processes keep the kernel's.
TEST_F(ServerBasic, NetWorkersAskForAShortSlice)
{
    int dflt = zan::sched_slice_us(0);
    ASSERT_GE(dflt, 0) << strerror(errno);
    if (dflt == 0)
        GTEST_SKIP() << "the kernel reports no slice (before Linux 6.12)";
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "2", "--task-worker-num", "1"}));
    Sock c = connect();
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(zt::request(c.get(), "hello"), "hello");
    for (const auto& [name, pid] : zt::named_descendants(server_.pid()))
        EXPECT_EQ(zan::sched_slice_us(pid), name.rfind("zan-net-", 0) == 0 ? 100 : dflt) << name;
    EXPECT_NE(zan::sched_slice_us(server_.pid()), 100);
    pid_t net = find_by_name("zan-net-1");
    ASSERT_GT(net, 0);
    ASSERT_EQ(::kill(net, SIGKILL), 0);
    pid_t again = zt::wait_for_name(server_.pid(), "zan-net-1", net, 10000);
    ASSERT_GT(again, 0) << "zan-net-1 was not re-forked";
    // The name comes a few instructions before the slice, and the process
    // tells nobody outside when it has its slice: look until it is set.
    int slice = zan::sched_slice_us(again);
    for (long long end = zt::now_ms() + zt::scaled(5000); slice != 100 && zt::now_ms() < end;) {
        ::usleep(1000);
        slice = zan::sched_slice_us(again);
    }
    EXPECT_EQ(slice, 100);
    EXPECT_EQ(stop_and_check(), "");
}

// --net-worker-slice sets the slice; 0 leaves the kernel's.
TEST_F(ServerBasic, NetWorkerSliceIsAnOption)
{
    int dflt = zan::sched_slice_us(0);
    ASSERT_GE(dflt, 0) << strerror(errno);
    if (dflt == 0)
        GTEST_SKIP() << "the kernel reports no slice (before Linux 6.12)";
    const std::pair<const char*, int> cases[] = {{"2500", 2500}, {"0", dflt}};
    for (const auto& [opt, want] : cases) {
        zt::Proc p;
        ASSERT_GT(zt::start_echod(&p, {"--worker-num", "1", "--net-worker-num", "1",
                                       "--task-worker-num", "0", "--net-worker-slice", opt}),
                  0)
            << p.output();
        pid_t net = zt::find_by_name(p.pid(), "zan-net-0");
        ASSERT_GT(net, 0);
        EXPECT_EQ(zan::sched_slice_us(net), want) << opt;
        EXPECT_EQ(zt::stop_and_check(&p), "");
    }
}

TEST_F(ServerBasic, BadOptionValuesAreRefused)
{
    struct Case {
        const char* tool;
        std::vector<std::string> argv;
    };
    const Case cases[] = {
        {"zan-echod", {"--port", "abc"}},
        {"zan-echod", {"--port", "70000"}},
        {"zan-echod", {"--worker-num", "-1"}},
        {"zan-echod", {"--max-request", "10x"}},
        {"zan-echod", {"--dispatch-mode", ""}},
        {"zan-echod", {"--log-level", "loud"}},
        {"zan-httpd", {"--port", "9501abc"}},
        {"zan-httpd", {"--header-timeout", "5s"}},
        {"zan-httpd", {"--hop-yield", "-1"}},
        {"zan-httpd", {"--net-worker-slice", "-100"}},
        {"zan-echod", {"--net-worker-slice", "1ms"}},
        {"zan-httpd", {"--net-worker-num", "99999999999999999999"}},
        {"zan-echod", {"--port", " 0"}},  // strtol(3) alone took these two
        {"zan-httpd", {"--port", "+0"}},
    };
    for (const Case& c : cases) {
        Proc p;
        std::vector<std::string> argv{zt::tool(c.tool)};
        argv.insert(argv.end(), c.argv.begin(), c.argv.end());
        ASSERT_TRUE(p.spawn(argv));
        int st = p.wait_exit(10000);
        ASSERT_NE(st, -1) << c.tool << " " << c.argv[0] << " did not exit";
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << c.tool << " " << c.argv[0];
        EXPECT_NE(p.output().find("bad value for " + c.argv[0]), std::string::npos)
            << p.output();
    }
}
