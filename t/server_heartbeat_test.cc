// Idle-connection checks (heartbeat_check_interval, heartbeat_idle_time):
// the defaults ServerConfig::validate() fills in; a library server whose
// idle and half-idle (a little sent, then silence) connections are closed
// within [idle time, idle time + interval + slack] with on_close in the
// Worker, while a busy connection is never closed; and zan-echod's flags.
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <string>

#include "t/forked_server.h"
#include "t/net_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "zan/server_config.h"

namespace {

using zt::ForkedServer;
using zt::Sock;

TEST(ServerConfig, HeartbeatDefaults)
{
    zan::ServerConfig a;
    EXPECT_EQ(a.validate(), "");
    EXPECT_EQ(a.heartbeat_check_interval, 0);  // off unless asked for
    EXPECT_EQ(a.heartbeat_idle_time, 0);
    zan::ServerConfig b;
    b.heartbeat_check_interval = 5;
    EXPECT_EQ(b.validate(), "");
    EXPECT_EQ(b.heartbeat_idle_time, 10);  // twice the interval, as in Swoole
    zan::ServerConfig c;
    c.heartbeat_idle_time = 7;
    EXPECT_EQ(c.validate(), "");
    EXPECT_EQ(c.heartbeat_check_interval, 3);
    zan::ServerConfig d;
    d.heartbeat_idle_time = 1;
    EXPECT_EQ(d.validate(), "");
    EXPECT_EQ(d.heartbeat_check_interval, 1);
    zan::ServerConfig e;
    e.heartbeat_check_interval = -1;
    EXPECT_NE(e.validate(), "");
    zan::ServerConfig f;
    f.heartbeat_idle_time = 2000000;
    EXPECT_NE(f.validate(), "");
}

// True (once) when the server has closed fd: EOF or a reset, no waiting.
bool closed_now(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1)
        return false;
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN);
}

TEST(ServerHeartbeat, IdleAndHalfIdleConnectionsCloseBusyOnesStay)
{
    const int kInterval = 1, kIdle = 2;  // seconds
    zan::ServerConfig cfg = zt::forked_server_config(1);
    cfg.heartbeat_check_interval = kInterval;
    cfg.heartbeat_idle_time = kIdle;
    ForkedServer srv;
    ASSERT_TRUE(srv.start(cfg, [](zan::TcpServer& s, const ForkedServer::Ends& e) {
        int rep = e.report;
        s.on_connect([rep](zan::TcpServer&, zan::SessionId id) { zt::report(rep, "connect " + std::to_string(id)); });
        s.on_close([rep](zan::TcpServer&, zan::SessionId id) { zt::report(rep, "close " + std::to_string(id)); });
        s.on_receive([](zan::TcpServer& s, zan::SessionId id, std::string_view msg) { s.send(id, msg); });
    }));
    std::string l;
    auto open = [&](Sock* s, std::string* sid) {
        *s = srv.connect();
        ASSERT_TRUE(s->ok());
        ASSERT_TRUE(srv.take("connect ", &l));
        *sid = zt::words(l)[1];
    };
    Sock idle, half, busy;
    std::string sid_idle, sid_half, sid_busy;
    long long t_idle = zt::now_ms();
    open(&idle, &sid_idle);
    open(&busy, &sid_busy);
    open(&half, &sid_half);
    ASSERT_EQ(zt::request(half.get(), "ping"), "ping");
    ASSERT_TRUE(zt::send_str(half.get(), "hal"));  // half a message, then silence
    long long t_half = zt::now_ms();

    // The busy client sends every 300 ms for twice the idle time, and
    // until the others are closed.
    const int upper = (kIdle + kInterval) * 1000 + 300;  // + a 300 ms turn of the loop
    long long closed_idle = 0, closed_half = 0;
    long long min_end = zt::now_ms() + 2 * kIdle * 1000;
    long long deadline = zt::now_ms() + zt::scaled(upper + 2000);
    int sent = 0;
    while (zt::now_ms() < deadline && (zt::now_ms() < min_end || !closed_idle || !closed_half)) {
        ASSERT_EQ(zt::request(busy.get(), "b" + std::to_string(sent)), "b" + std::to_string(sent))
            << "the busy connection was closed\n" << srv.log();
        sent++;
        if (!closed_idle && closed_now(idle.get()))
            closed_idle = zt::now_ms();
        if (!closed_half && closed_now(half.get()))
            closed_half = zt::now_ms();
        zt::wait_fd(-1, 0, 300);
    }
    ASSERT_NE(closed_idle, 0) << "the idle connection stayed open\n" << srv.log();
    ASSERT_NE(closed_half, 0) << "the half-idle connection stayed open\n" << srv.log();
    // Lower bounds are not scaled: closing early is wrong on any machine.
    EXPECT_GE(closed_idle - t_idle, kIdle * 1000);
    EXPECT_LE(closed_idle - t_idle, zt::scaled(upper + 500));
    EXPECT_GE(closed_half - t_half, kIdle * 1000);
    EXPECT_LE(closed_half - t_half, zt::scaled(upper + 500));
    EXPECT_TRUE(srv.take("close " + sid_idle, &l)) << "no on_close for the idle connection";
    EXPECT_TRUE(srv.take("close " + sid_half, &l)) << "no on_close for the half-idle connection";
    EXPECT_EQ(srv.count("close " + sid_busy), 0);
}

using EchodHeartbeat = zt::ServerTest;

TEST_F(EchodHeartbeat, FlagsCloseIdleConnections)
{
    ASSERT_TRUE(start_echod({"--worker-num", "1", "--net-worker-num", "1",
                             "--heartbeat-check-interval", "1", "--heartbeat-idle-time", "1"}));
    Sock idle = connect();
    ASSERT_TRUE(idle.ok());
    long long t0 = zt::now_ms();
    ASSERT_TRUE(zt::wait_closed(idle.get(), zt::scaled(4000))) << "idle connection not closed";
    EXPECT_GE(zt::now_ms() - t0, 1000);
    EXPECT_EQ(stop_and_check(), "");

    zt::Proc bad;
    ASSERT_TRUE(bad.spawn({zt::tool("zan-echod"), "--heartbeat-idle-time", "soon"}));
    int st = bad.wait_exit(zt::scaled(5000));
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << "status " << st;
}

}  // namespace
