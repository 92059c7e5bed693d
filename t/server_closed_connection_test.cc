// What a connection leaves behind once its client has gone: a client
// that closes while the server still has megabytes of output for it
// costs nothing afterwards (descriptors, heap, counters) and the server
// keeps serving; a reply to a closed connection never reaches the
// connection that reuses its slot. The server is a TcpServer in a forked
// Master (t/forked_server.h).
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
#include <iostream>
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
#include "t/syscall_trap.h"
#include "t/test_env.h"
#include "zan/tcp_server.h"

namespace {

using zt::Sock;
using zt::report;
using zt::words;
using zt::line_of;
using zt::pattern;
using zt::status_kb;
using zt::server_side_state;
using zt::local_port;
using zt::reset_close;
using zt::eventually;
using zt::kSanitizedHeap;
using zt::forked_server_config;
using zt::ForkedServer;

// A client asks for 8 x 2 MiB and reads nothing (a 16 KiB receive
// buffer), then closes, which resets the connection with 12 MiB or more still queued in the
// NetWorker. Eight rounds. Each time on_close runs exactly once and the
// NetWorker lets go of the socket; afterwards its descriptor count is back
// where it was, its heap has not grown round after round (no output
// buffer kept), connection_num and close_count add up, the NetWorker is
// the same process and the server serves.
TEST(ServerClosedConnection, ClientClosingWithOutputPendingLeaksNothing)
{
    const size_t kPiece = 2 * 1024 * 1024;
    zan::ServerConfig cfg = forked_server_config(1);
    cfg.buffer_output_size = 32 * 1024 * 1024;
    ForkedServer srv;
    ASSERT_TRUE(srv.start(cfg, [kPiece](zan::TcpServer& s, const ForkedServer::Ends& e) {
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
        ASSERT_TRUE(zt::wait_fd(a.get(), POLLIN, zt::scaled(3000))) << "no output reached the client";
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

constexpr char kStale[] = "STALE reply for a closed connection\n";

// A reply to a closed connection is dropped by the connection's
// generation. One NetWorker and one Worker. The Worker keeps the session of the last
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
TEST(ServerClosedConnection, LateRepliesNeverReachTheConnectionThatReusesTheSlot)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(forked_server_config(1), [](zan::TcpServer& s, const ForkedServer::Ends& e) {
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
            s.run_every(5, [rep, trg, held, &s] {
                char c;
                while (::read(trg, &c, 1) == 1) {
                    bool ok = s.send(*held, kStale);
                    // Reported on the next pass, after this one's replies
                    // have gone to the NetWorker.
                    s.run_after(0, [rep, ok] { report(rep, std::string("fired ") + (ok ? "1" : "0")); });
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
