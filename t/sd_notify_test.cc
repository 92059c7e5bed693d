// Unit tests of SdNotify, the sender of systemd's notify protocol: one
// datagram per call to a path or an abstract ("@") address, nothing
// without an address, a clear error for an address that cannot be one,
// and the watchdog interval from WATCHDOG_USEC/WATCHDOG_PID. Each test
// binds its own receiving socket and restores the variables it sets.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/fd.h"
#include "zan/detail/sd_notify.h"

namespace {

// A datagram socket bound to `address` (a path, or "@name").
zan::Fd bind_dgram(const std::string& address)
{
    zan::Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, address.data(), address.size());
    bool abstract = address[0] == '@';
    if (abstract)
        sa.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + address.size() +
                                           (abstract ? 0 : 1));
    if (::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), len) < 0)
        return zan::Fd();
    return fd;
}

std::string receive(int fd)
{
    if (!zt::wait_fd(fd, POLLIN, zt::scaled(2000)))
        return "(nothing)";
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    return n < 0 ? "(error)" : std::string(buf, static_cast<size_t>(n));
}

// Sets or unsets a variable for the life of the object.
struct EnvVar {
    std::string name;
    std::string old;
    bool had;
    EnvVar(const char* n, const char* v) : name(n), had(::getenv(n) != nullptr)
    {
        if (had)
            old = ::getenv(n);
        if (v)
            ::setenv(n, v, 1);
        else
            ::unsetenv(n);
    }
    ~EnvVar()
    {
        if (had)
            ::setenv(name.c_str(), old.c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

TEST(SdNotify, SendsOneDatagramToAPath)
{
    zt::TempDir dir;
    std::string path = dir.path + "/notify";
    zan::Fd rx = bind_dgram(path);
    ASSERT_TRUE(rx.valid()) << strerror(errno);
    zan::SdNotify n(path);
    EXPECT_TRUE(n.enabled());
    ASSERT_TRUE(n.send("READY=1\nSTATUS=up")) << strerror(errno);
    ASSERT_TRUE(n.send("WATCHDOG=1")) << strerror(errno);
    EXPECT_EQ("READY=1\nSTATUS=up", receive(rx.get()));
    EXPECT_EQ("WATCHDOG=1", receive(rx.get()));
}

TEST(SdNotify, SendsToAnAbstractName)
{
    std::string name = "@zan-sd-notify-test-" + std::to_string(::getpid());
    zan::Fd rx = bind_dgram(name);
    ASSERT_TRUE(rx.valid()) << strerror(errno);
    EnvVar v("NOTIFY_SOCKET", name.c_str());
    zan::SdNotify n = zan::SdNotify::from_env();
    EXPECT_EQ(name, n.address());
    ASSERT_TRUE(n.send("STOPPING=1")) << strerror(errno);
    EXPECT_EQ("STOPPING=1", receive(rx.get()));
}

TEST(SdNotify, WithoutAnAddressSendsNothing)
{
    EnvVar v("NOTIFY_SOCKET", nullptr);
    zan::SdNotify n = zan::SdNotify::from_env();
    EXPECT_FALSE(n.enabled());
    EXPECT_TRUE(n.send("READY=1"));
}

TEST(SdNotify, RefusesAddressesThatAreNone)
{
    for (const std::string& a : {std::string("relative/path"), "/" + std::string(120, 'x')}) {
        zan::SdNotify n(a);
        errno = 0;
        EXPECT_FALSE(n.send("READY=1")) << a;
        EXPECT_EQ(EINVAL, errno) << a;
    }
    zt::TempDir dir;
    zan::SdNotify nobody(dir.path + "/nobody-listens");
    EXPECT_FALSE(nobody.send("READY=1"));
}

TEST(SdNotify, WatchdogIntervalIsHalfOfWatchdogUsecForUs)
{
    pid_t me = ::getpid();
    {
        EnvVar u("WATCHDOG_USEC", "2000000"), p("WATCHDOG_PID", nullptr);
        EXPECT_EQ(1000000, zan::SdNotify::watchdog_ping_us(me));
    }
    {
        EnvVar u("WATCHDOG_USEC", "300000"), p("WATCHDOG_PID", std::to_string(me).c_str());
        EXPECT_EQ(150000, zan::SdNotify::watchdog_ping_us(me));
    }
    {
        EnvVar u("WATCHDOG_USEC", "300000"), p("WATCHDOG_PID", std::to_string(me + 1).c_str());
        EXPECT_EQ(0, zan::SdNotify::watchdog_ping_us(me)) << "another process's watchdog";
    }
    for (const char* bad : {"", "0", "-5", "12x", "abc"}) {
        EnvVar u("WATCHDOG_USEC", bad), p("WATCHDOG_PID", nullptr);
        EXPECT_EQ(0, zan::SdNotify::watchdog_ping_us(me)) << "'" << bad << "'";
    }
    EnvVar u("WATCHDOG_USEC", nullptr);
    EXPECT_EQ(0, zan::SdNotify::watchdog_ping_us(me));
}

}  // namespace
