// Unit tests for the socket module (zan/inet_addr.h, zan/socket.h):
// address parsing and printing, a listener on 127.0.0.1 with an ephemeral
// port, non-blocking connect and accept, and the accept queue as the
// kernel reports it.
#include "zan/socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/test_env.h"
#include "zan/inet_addr.h"

namespace {

using zan::Fd;
using zan::InetAddr;

// A listener on 127.0.0.1 with a port the kernel picks.
Fd listen_local(int backlog, InetAddr* bound)
{
    std::optional<InetAddr> a = InetAddr::parse("127.0.0.1", 0);
    if (!a)
        return Fd();
    std::string err;
    Fd fd = zan::listen_tcp(*a, backlog, false, &err);
    if (fd)
        *bound = zan::local_addr(fd.get());
    return fd;
}

}  // namespace

TEST(InetAddr, ParsesAndPrintsBothFamilies)
{
    std::optional<InetAddr> a = InetAddr::parse("127.0.0.1", 9501);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->family(), AF_INET);
    EXPECT_EQ(a->port(), 9501);
    EXPECT_EQ(a->to_string(), "127.0.0.1:9501");
    EXPECT_EQ(a->ip_hash(), 0x7f000001u);
    ASSERT_TRUE(a = InetAddr::parse("[::1]", 80));
    EXPECT_EQ(a->family(), AF_INET6);
    EXPECT_EQ(a->to_string(), "[::1]:80");
    EXPECT_EQ(a->ip_hash(), 1u);
    ASSERT_TRUE(a = InetAddr::parse("localhost", 1));
    EXPECT_EQ(a->ip(), "127.0.0.1");
    EXPECT_FALSE(InetAddr::parse("example.com", 1));  // no name service
    EXPECT_FALSE(InetAddr::parse("1.2.3", 1));
}

TEST(Socket, ListenConnectAccept)
{
    InetAddr bound;
    Fd lfd = listen_local(16, &bound);
    ASSERT_TRUE(lfd.valid());
    EXPECT_NE(bound.port(), 0);
    EXPECT_TRUE(::fcntl(lfd.get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(::fcntl(lfd.get(), F_GETFL) & O_NONBLOCK);

    InetAddr peer;
    errno = 0;
    EXPECT_EQ(zan::accept_conn(lfd.get(), &peer), -1);  // nothing queued yet
    EXPECT_EQ(errno, EAGAIN);

    int saved = 0;
    Fd c = zan::connect_tcp(bound, &saved);
    ASSERT_TRUE(c.valid()) << strerror(saved);
    ASSERT_TRUE(zt::wait_fd(c.get(), POLLOUT, zt::scaled(3000)));
    EXPECT_EQ(zan::socket_error(c.get()), 0);
    struct pollfd p = {lfd.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, zt::scaled(3000)), 1);
    Fd s(zan::accept_conn(lfd.get(), &peer));
    ASSERT_TRUE(s.valid()) << strerror(errno);
    EXPECT_TRUE(::fcntl(s.get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(::fcntl(s.get(), F_GETFL) & O_NONBLOCK);
    EXPECT_EQ(peer.to_string(), zan::local_addr(c.get()).to_string());
    EXPECT_EQ(zan::peer_addr(s.get()).to_string(), peer.to_string());
    EXPECT_EQ(zan::set_tcp_nodelay(s.get(), true), 0);
}

TEST(Socket, ConnectRefusedIsReported)
{
    InetAddr bound;
    int port;
    {
        Fd lfd = listen_local(1, &bound);  // a port that was free a moment ago
        ASSERT_TRUE(lfd.valid());
        port = bound.port();
    }
    int saved = 0;
    Fd c = zan::connect_tcp(bound, &saved);
    if (!c.valid()) {
        EXPECT_EQ(saved, ECONNREFUSED);
        return;
    }
    ASSERT_TRUE(zt::wait_fd(c.get(), POLLOUT, zt::scaled(3000)));
    EXPECT_EQ(zan::socket_error(c.get()), ECONNREFUSED) << "port " << port;
}

TEST(Socket, AcceptQueueCountsWaitingConnections)
{
    InetAddr bound;
    Fd lfd = listen_local(8, &bound);
    ASSERT_TRUE(lfd.valid());
    int limit = -1;
    EXPECT_EQ(zan::accept_queue(lfd.get(), &limit), 0);
    EXPECT_EQ(limit, 8);

    std::vector<Fd> clients;
    for (int i = 0; i < 3; i++) {
        int saved = 0;
        clients.push_back(zan::connect_tcp(bound, &saved));
        ASSERT_TRUE(clients.back().valid()) << strerror(saved);
        ASSERT_TRUE(zt::wait_fd(clients.back().get(), POLLOUT, zt::scaled(3000)));
    }
    // The handshakes finish in the kernel; the queue holds all three.
    int queued = 0;
    long long deadline = zt::now_ms() + zt::scaled(300);  // polled: no event for it
    while ((queued = zan::accept_queue(lfd.get(), nullptr)) < 3 && zt::now_ms() < deadline)
        zt::wait_fd(-1, 0, 1);
    EXPECT_EQ(queued, 3);
    Fd s(zan::accept_conn(lfd.get(), nullptr));
    ASSERT_TRUE(s.valid());
    EXPECT_EQ(zan::accept_queue(lfd.get(), nullptr), 2);

    // Not a listening socket: the kernel has no queue to report.
    errno = 0;
    EXPECT_EQ(zan::accept_queue(s.get(), nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    EXPECT_EQ(zan::accept_queue(p[0], nullptr), -1);
    ::close(p[0]);
    ::close(p[1]);
}

// A listener told to refuse new connections still hands out the ones the
// kernel completed before, with their bytes, while a new connection
// request goes unanswered (the client's SYN is dropped, not refused).
TEST(Socket, RefuseNewSynsKeepsTheAcceptQueue)
{
    InetAddr bound;
    Fd lfd = listen_local(8, &bound);
    ASSERT_TRUE(lfd.valid());
    int saved = 0;
    Fd early = zan::connect_tcp(bound, &saved);
    ASSERT_TRUE(early.valid()) << strerror(saved);
    ASSERT_TRUE(zt::wait_fd(early.get(), POLLOUT, zt::scaled(3000)));
    ASSERT_EQ(::send(early.get(), "a", 1, MSG_NOSIGNAL), 1);

    ASSERT_EQ(zan::refuse_new_syns(lfd.get()), 0) << strerror(errno);
    Fd late = zan::connect_tcp(bound, &saved);
    ASSERT_TRUE(late.valid()) << strerror(saved);
    // Not refused and not connected: its SYN was dropped (a quiet period,
    // not scaled: a SYN is answered in microseconds on loopback).
    EXPECT_FALSE(zt::wait_fd(late.get(), POLLOUT, 200));

    struct pollfd p = {lfd.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, zt::scaled(3000)), 1);
    Fd s(zan::accept_conn(lfd.get(), nullptr));
    ASSERT_TRUE(s.valid()) << strerror(errno);
    ASSERT_TRUE(zt::wait_fd(s.get(), POLLIN, zt::scaled(3000)));
    char c = 0;
    EXPECT_EQ(::recv(s.get(), &c, 1, 0), 1);
    EXPECT_EQ(c, 'a');
    errno = 0;
    EXPECT_EQ(zan::accept_conn(lfd.get(), nullptr), -1);
    EXPECT_EQ(errno, EAGAIN);
    // Not a socket: the call fails and says why.
    EXPECT_EQ(zan::refuse_new_syns(-1), -1);
    EXPECT_EQ(errno, EBADF);
}
