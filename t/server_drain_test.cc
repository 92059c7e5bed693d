// TcpServer::watch_output() and on_drained: a Worker that queued a large
// reply for a client that does not read learns when the NetWorker has
// written it out (not before), at once when the output is already down
// to the size asked for, and when the client goes away instead. The
// server is a TcpServer in a forked Master (t/forked_server.h).
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "t/forked_server.h"
#include "t/net_helpers.h"
#include "t/test_env.h"
#include "zan/tcp_server.h"

namespace {

using zt::ForkedServer;
using zt::Sock;

const size_t kBig = 32u << 20;

// "big": 32 MiB, then a watch for an empty output; "small": 10 bytes and
// a watch for at most 1 MiB. Reports "watching" and "drained".
void setup(zan::TcpServer& s, const ForkedServer::Ends& e)
{
    int rep = e.report;
    s.on_receive([rep](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
        std::string l = zt::line_of(msg);
        if (l == "big") {
            std::string mib(1u << 20, 'b');
            for (size_t n = 0; n < kBig; n += mib.size())
                if (!s.send(id, mib))
                    zt::report(rep, "refused");
            zt::report(rep, std::string("watching ") + (s.watch_output(id, 0) ? "1" : "0"));
        } else if (l == "small") {
            s.send(id, "0123456789");
            zt::report(rep, std::string("watching ") + (s.watch_output(id, 1u << 20) ? "1" : "0"));
        }
    });
    s.on_drained([rep](zan::TcpServer& s, zan::SessionId id) {
        zt::report(rep, "drained " + std::to_string(s.exists(id)));
    });
}

zan::ServerConfig config()
{
    zan::ServerConfig cfg = zt::forked_server_config(1);
    cfg.buffer_output_size = 64u << 20;
    return cfg;
}

// Reads n bytes (or fewer, at the deadline); returns how many came.
size_t read_n(int fd, size_t n, int timeout_ms)
{
    std::string buf(1u << 16, '\0');
    size_t got = 0;
    long long deadline = zt::now_ms() + zt::scaled(timeout_ms);
    while (got < n && zt::now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = ::read(fd, &buf[0], std::min(buf.size(), n - got));
        if (r <= 0)
            break;
        got += static_cast<size_t>(r);
    }
    return got;
}

TEST(ServerDrain, ToldOnlyOnceTheOutputIsWritten)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(config(), setup));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "big\n"));
    std::string line;
    ASSERT_TRUE(srv.take("watching", &line, zt::scaled(10000)));
    EXPECT_EQ("watching 1", line);
    EXPECT_EQ(0, srv.count("refused"));
    // Far more than the kernel's socket buffers hold is still queued in
    // the NetWorker: not drained.
    ASSERT_EQ(4u << 20, read_n(c.get(), 4u << 20, 10000));
    EXPECT_EQ(0, srv.count("drained"));
    ASSERT_EQ(kBig - (4u << 20), read_n(c.get(), kBig - (4u << 20), 20000));
    ASSERT_TRUE(srv.take("drained", &line, zt::scaled(5000)));
    EXPECT_EQ("drained 1", line);
}

TEST(ServerDrain, ToldAtOnceWhenAlreadyBelow)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(config(), setup));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "small\n"));
    std::string line;
    ASSERT_TRUE(srv.take("drained", &line, zt::scaled(5000)));
    EXPECT_EQ("drained 1", line);
}

TEST(ServerDrain, ToldWhenTheClientGoesAway)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(config(), setup));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "big\n"));
    std::string line;
    ASSERT_TRUE(srv.take("watching", &line, zt::scaled(10000)));
    EXPECT_EQ(0, srv.count("drained"));
    zt::reset_close(&c);
    ASSERT_TRUE(srv.take("drained", &line, zt::scaled(5000)));
    EXPECT_EQ("drained 0", line);
}

}  // namespace
