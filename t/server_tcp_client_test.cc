// TcpClient against a real zan server (zan-echod), and the example of
// zan_tcp_client(3) run in front of one: Workers that call a backend on
// their own loop.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "t/forked_server.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "zan/buffer.h"
#include "zan/event_loop.h"
#include "zan/socket.h"
#include "zan/tcp_client.h"

using ServerTcpClient = zt::ServerTest;

TEST_F(ServerTcpClient, EchoRoundTripsWithZanEchod)
{
    ASSERT_TRUE(start_echod({"--worker-num", "2"}));
    zan::EventLoop loop;
    zan::TcpClient c(loop);
    std::string got;
    int lines = 0;
    const int kLines = 200;
    c.on_connect([&](zan::TcpClient& cl) {
        for (int i = 0; i < kLines; ++i)
            cl.send("line " + std::to_string(i) + "\n");
    });
    c.on_data([&](zan::TcpClient&, zan::Buffer& in) {
        for (char ch : in.view())
            lines += ch == '\n';
        got += std::string(in.view());
        in.consume(in.readable());
    });
    ASSERT_TRUE(c.connect("127.0.0.1", static_cast<uint16_t>(port_)));
    long long end = zt::now_ms() + zt::scaled(5000);
    while (lines < kLines && zt::now_ms() < end)
        loop.run_once(20);
    ASSERT_EQ(lines, kLines);
    std::string want;
    for (int i = 0; i < kLines; ++i)
        want += "line " + std::to_string(i) + "\n";
    EXPECT_EQ(got, want);

    // "quit": the server closes, and the client hears of it.
    int close_err = -1;
    c.on_close([&](zan::TcpClient&, int err, const std::string&) { close_err = err; });
    c.send("quit\n");
    end = zt::now_ms() + zt::scaled(5000);
    while (close_err < 0 && zt::now_ms() < end)
        loop.run_once(20);
    EXPECT_EQ(close_err, 0);
    c.close();
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(ServerTcpClient, ExampleWorkersRelayThroughTheirLoop)
{
    ASSERT_TRUE(start_echod({"--worker-num", "1"}));
    zt::Proc front;
    int front_port = zt::start_server(
        &front, {zt::build_dir() + "/t/example_tcp_client", "127.0.0.1", std::to_string(port_), "0"});
    ASSERT_GT(front_port, 0) << front.output();
    {
        zt::Sock a(zt::connect_local(front_port)), b(zt::connect_local(front_port));
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_EQ(zt::request(a.get(), "hello"), "hello");
        EXPECT_EQ(zt::request(b.get(), "world"), "world");
        std::string who = zt::request(a.get(), "whoami");  // answered by the backend
        EXPECT_EQ(who.rfind("worker ", 0), 0u) << who;
        // Many in a row keep their order.
        std::string burst;
        for (int i = 0; i < 50; ++i)
            burst += "n" + std::to_string(i) + "\n";
        ASSERT_TRUE(zt::send_str(a.get(), burst));
        for (int i = 0; i < 50; ++i) {
            std::string line;
            ASSERT_TRUE(zt::read_line(a.get(), &line));
            EXPECT_EQ(line, "n" + std::to_string(i));
        }
    }
    // The backend goes away: the Workers answer for it.
    ASSERT_EQ(stop_and_check(), "");
    {
        zt::Sock a(zt::connect_local(front_port));
        ASSERT_TRUE(a.ok());
        EXPECT_EQ(zt::request(a.get(), "anyone"), "error backend unavailable");
    }
    EXPECT_EQ(zt::stop_and_check(&front), "");
}

// TcpServer::loop() in each role, and a UserWorker whose callback leaves
// only a TcpClient on its loop (no timer): the loop runs it.
TEST(ServerLoop, WorkerAndUserWorkerReachTheirLoop)
{
    // The UserWorker's client talks to this listener of the test.
    zan::InetAddr lo = zan::InetAddr::parse("127.0.0.1", 0).value();
    std::string err;
    zan::Fd lfd = zan::listen_tcp(lo, 4, false, &err);
    ASSERT_TRUE(lfd.valid()) << err;
    uint16_t backend = zan::local_addr(lfd.get()).port();
    int lfd_num = lfd.get();
    zan::ServerConfig cfg = zt::forked_server_config(1);
    cfg.task_worker_num = 1;
    zt::ForkedServer srv;
    ASSERT_TRUE(srv.start(cfg, [backend, lfd_num](zan::TcpServer& s, const zt::ForkedServer::Ends& e) {
        ::close(lfd_num);  // the test's, not the server's
        int rep = e.report;
        s.on_worker_start([rep](zan::TcpServer& s, int id) {
            zt::report(rep, std::string(s.role() == zan::Role::task_worker ? "task" : "worker") +
                                "-loop " + std::to_string(id) + (s.loop() ? " yes" : " no"));
        });
        s.on_receive([](zan::TcpServer& s, zan::SessionId id, std::string_view msg) { s.send(id, msg); });
        s.on_task([](zan::TcpServer&, zan::TaskId, int, std::string_view) { return std::nullopt; });
        s.add_process([rep, backend](zan::TcpServer& s) {
            zt::report(rep, "user-start");
            zan::EventLoop* loop = s.loop();
            if (!loop)
                return;
            // Lives as long as the process (which ends in _exit()).
            auto* c = new zan::TcpClient(*loop);
            c->on_connect([](zan::TcpClient& cl) { cl.send("ping\n"); });
            c->on_data([rep](zan::TcpClient&, zan::Buffer& in) {
                zt::report(rep, "user-got " + zt::line_of(in.view()));
                in.consume(in.readable());
            });
            c->on_close([rep](zan::TcpClient&, int, const std::string& why) {
                zt::report(rep, "user-closed " + why);
            });
            c->connect("127.0.0.1", backend);
        });
    }));
    std::string line;
    ASSERT_TRUE(srv.take("worker-loop 0", &line)) << srv.reports();
    EXPECT_EQ(line, "worker-loop 0 yes");
    ASSERT_TRUE(srv.take("task-loop", &line)) << srv.reports();
    EXPECT_EQ(line, "task-loop 1 no");
    ASSERT_TRUE(zt::wait_fd(lfd.get(), POLLIN, zt::scaled(5000))) << srv.reports();
    zt::Sock conn(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.ok());
    std::string ping;
    ASSERT_TRUE(zt::read_line(conn.get(), &ping));
    EXPECT_EQ(ping, "ping");
    ASSERT_TRUE(zt::send_str(conn.get(), "pong\n"));
    ASSERT_TRUE(srv.take("user-got", &line)) << srv.reports() << srv.log();
    EXPECT_EQ(line, "user-got pong");
    EXPECT_EQ(srv.count("user-start"), 1);  // its loop kept it alive
    EXPECT_EQ(srv.stop(zt::scaled(10000)), 0);
}
