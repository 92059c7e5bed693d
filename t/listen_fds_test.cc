// Unit tests of ListenFds, the reader of passed listening sockets
// (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES): only sockets meant for this
// process count, each must be a listening IPv4/IPv6 stream socket, names
// are kept when their count is right, take() matches by address (any
// port for port 0) and hands each socket out once. The sockets are put
// at a free run of high descriptors, since 3.. belong to the test
// binary; take_from_env() must clear the variables.
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "zan/inet_addr.h"
#include "zan/detail/listen_fds.h"
#include "zan/socket.h"

namespace {

const int kBase = 900;  // the "fd 3" of these tests

// Puts `fds` at kBase, kBase+1, ... (closing the originals).
void place(std::vector<int> fds)
{
    for (size_t i = 0; i < fds.size(); i++) {
        ASSERT_GE(::dup2(fds[i], kBase + static_cast<int>(i)), 0);
        ::close(fds[i]);
    }
}

int listener(const char* host, int* port)
{
    zan::InetAddr a = zan::InetAddr::parse(host, 0).value();
    std::string err;
    zan::Fd fd = zan::listen_tcp(a, 16, false, &err);
    EXPECT_TRUE(fd.valid()) << err;
    *port = zan::local_addr(fd.get()).port();
    return fd.release();
}

zan::InetAddr addr(const char* host, int port)
{
    zan::InetAddr a = zan::InetAddr::parse(host, static_cast<uint16_t>(port)).value();
    return a;
}

std::string me() { return std::to_string(::getpid()); }

TEST(ListenFds, TakesPassedListenersByAddressOnce)
{
    int p1 = 0, p2 = 0;
    place({listener("127.0.0.1", &p1), listener("127.0.0.1", &p2)});
    zan::ListenFds lf;
    std::string err;
    ASSERT_TRUE(lf.parse(me().c_str(), "2", "web:admin", kBase, ::getpid(), &err)) << err;
    EXPECT_TRUE(lf.active());
    EXPECT_EQ(2u, lf.count());
    std::string name;
    zan::InetAddr bound;
    zan::Fd b = lf.take(addr("127.0.0.1", p2), &name, &bound);
    ASSERT_TRUE(b.valid());
    EXPECT_EQ(kBase + 1, b.get());
    EXPECT_EQ("admin", name);
    EXPECT_EQ(p2, bound.port());
    EXPECT_TRUE(fcntl(b.get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(fcntl(b.get(), F_GETFL) & O_NONBLOCK);
    EXPECT_FALSE(lf.take(addr("127.0.0.1", p2), &name, &bound).valid()) << "taken twice";
    EXPECT_FALSE(lf.take(addr("0.0.0.0", p1), &name, &bound).valid()) << "another address";
    EXPECT_NE(std::string::npos, lf.untaken().find("'web'")) << lf.untaken();
    // Port 0: the passed socket of that address, whatever its port.
    zan::Fd a = lf.take(addr("127.0.0.1", 0), &name, &bound);
    ASSERT_TRUE(a.valid());
    EXPECT_EQ(p1, bound.port());
    EXPECT_EQ("web", name);
    EXPECT_EQ("", lf.untaken());
}

TEST(ListenFds, IgnoresSocketsPassedToAnotherProcess)
{
    zan::ListenFds lf;
    std::string err;
    ASSERT_TRUE(lf.parse(std::to_string(::getpid() + 1).c_str(), "1", nullptr, kBase, ::getpid(), &err));
    EXPECT_FALSE(lf.active());
    EXPECT_EQ(0u, lf.count());
}

TEST(ListenFds, RefusesWhatIsNoListeningTcpSocket)
{
    zan::ListenFds lf;
    std::string err;
    // A connected-less stream socket that does not listen.
    place({::socket(AF_INET, SOCK_STREAM, 0)});
    EXPECT_FALSE(lf.parse(me().c_str(), "1", nullptr, kBase, ::getpid(), &err));
    EXPECT_NE(std::string::npos, err.find("not a listening stream socket")) << err;
    ::close(kBase);
    place({::socket(AF_INET, SOCK_DGRAM, 0)});
    EXPECT_FALSE(lf.parse(me().c_str(), "1", nullptr, kBase, ::getpid(), &err));
    EXPECT_NE(std::string::npos, err.find("not a listening stream socket")) << err;
    ::close(kBase);
    int p[2];
    ASSERT_EQ(0, ::pipe(p));
    place({p[0]});
    ::close(p[1]);
    EXPECT_FALSE(lf.parse(me().c_str(), "1", nullptr, kBase, ::getpid(), &err));
    EXPECT_NE(std::string::npos, err.find("is not a socket")) << err;
    ::close(kBase);
    EXPECT_FALSE(lf.parse(me().c_str(), "1", nullptr, kBase, ::getpid(), &err));
    EXPECT_NE(std::string::npos, err.find("fd 900")) << err;
    for (const char* bad : {"x", "-1", ""}) {
        EXPECT_FALSE(lf.parse(me().c_str(), bad, nullptr, kBase, ::getpid(), &err)) << bad;
        EXPECT_FALSE(lf.parse(bad, "1", nullptr, kBase, ::getpid(), &err)) << bad;
    }
}

TEST(ListenFds, NamesOfTheWrongCountAreDropped)
{
    int port = 0;
    place({listener("127.0.0.1", &port)});
    zan::ListenFds lf;
    std::string err;
    ASSERT_TRUE(lf.parse(me().c_str(), "1", "a:b", kBase, ::getpid(), &err)) << err;
    std::string name = "x";
    zan::InetAddr bound;
    EXPECT_TRUE(lf.take(addr("127.0.0.1", port), &name, &bound).valid());
    EXPECT_EQ("", name);
}

TEST(ListenFds, TakeFromEnvClearsTheVariables)
{
    ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    ::setenv("LISTEN_FDNAMES", "x", 1);
    zan::ListenFds lf;
    std::string err;
    EXPECT_TRUE(lf.take_from_env(&err)) << err;
    EXPECT_FALSE(lf.active());
    EXPECT_EQ(nullptr, ::getenv("LISTEN_PID"));
    EXPECT_EQ(nullptr, ::getenv("LISTEN_FDS"));
    EXPECT_EQ(nullptr, ::getenv("LISTEN_FDNAMES"));
    // LISTEN_FDS without LISTEN_PID passes nothing (sd_listen_fds(3)).
    ::setenv("LISTEN_FDS", "1", 1);
    EXPECT_TRUE(lf.take_from_env(&err)) << err;
    EXPECT_FALSE(lf.active());
    EXPECT_EQ(nullptr, ::getenv("LISTEN_FDS"));
}

}  // namespace
