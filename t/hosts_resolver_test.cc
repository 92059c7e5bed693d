#include "zan/hosts_resolver.h"

#include <gtest/gtest.h>

#include <string>

#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/buffer.h"
#include "zan/event_loop.h"
#include "zan/socket.h"
#include "zan/tcp_client.h"

using zan::HostsResolver;

namespace {

const char kHosts[] =
    "# a hosts(5) file\n"
    "127.0.0.1\tlocalhost\n"
    "127.0.0.7   backend.test  Alias   # comment\n"
    "::1 v6only.test ip6-localhost\n"
    "not-an-address broken.test\n"
    "10.0.0.9 twice.test\n"
    "10.0.0.10 twice.test\n"
    "\n"
    "   # indented comment backend.test\n";

struct HostsFile {
    zt::TempDir dir;
    std::string path = dir.path + "/hosts";
    HostsFile() { EXPECT_TRUE(zt::write_file(path, kHosts)); }
};

std::string resolved(const HostsResolver& r, const std::string& host, std::string* err = nullptr)
{
    std::optional<zan::InetAddr> a = r.resolve(host, 80, err);
    return a ? a->to_string() : "";
}

}  // namespace

TEST(HostsResolver, NumericAddressesNeedNoFile)
{
    HostsResolver r("/nonexistent/hosts");
    EXPECT_EQ(resolved(r, "192.0.2.1"), "192.0.2.1:80");
    EXPECT_EQ(resolved(r, "::1"), "[::1]:80");
    EXPECT_EQ(resolved(r, "[2001:db8::5]"), "[2001:db8::5]:80");
}

TEST(HostsResolver, NamesFromTheHostsFile)
{
    HostsFile f;
    HostsResolver r(f.path);
    EXPECT_EQ(resolved(r, "backend.test"), "127.0.0.7:80");
    EXPECT_EQ(resolved(r, "BACKEND.Test."), "127.0.0.7:80");  // case, trailing dot
    EXPECT_EQ(resolved(r, "alias"), "127.0.0.7:80");
    EXPECT_EQ(resolved(r, "v6only.test"), "[::1]:80");
    EXPECT_EQ(resolved(r, "ip6-localhost"), "[::1]:80");
    EXPECT_EQ(resolved(r, "twice.test"), "10.0.0.9:80");  // the first one
    EXPECT_EQ(r.lookup("twice.test", 1).size(), 2u);
    EXPECT_TRUE(r.lookup("broken.test", 1).empty());  // bad address skipped
    EXPECT_TRUE(r.lookup("comment", 1).empty());
}

TEST(HostsResolver, NameThatNeedsDnsGetsAClearError)
{
    HostsFile f;
    HostsResolver r(f.path);
    std::string err;
    EXPECT_EQ(resolved(r, "db.example.com", &err), "");
    EXPECT_NE(err.find("\"db.example.com\" is not in " + f.path), std::string::npos) << err;
    EXPECT_NE(err.find("needs DNS"), std::string::npos) << err;
    EXPECT_NE(err.find("TaskWorker"), std::string::npos) << err;
    EXPECT_EQ(resolved(r, "bad name!", &err), "");
    EXPECT_NE(err.find("neither an IP address nor a valid host name"), std::string::npos) << err;
    HostsResolver missing(f.dir.path + "/none");
    EXPECT_EQ(resolved(missing, "backend.test", &err), "");
    EXPECT_NE(err.find("cannot be read"), std::string::npos) << err;
}

TEST(HostsResolver, ValidNames)
{
    EXPECT_TRUE(HostsResolver::valid_name("a"));
    EXPECT_TRUE(HostsResolver::valid_name("db-1.internal.example."));
    EXPECT_FALSE(HostsResolver::valid_name(""));
    EXPECT_FALSE(HostsResolver::valid_name("-a"));
    EXPECT_FALSE(HostsResolver::valid_name("a-.b"));
    EXPECT_FALSE(HostsResolver::valid_name("a..b"));
    EXPECT_FALSE(HostsResolver::valid_name("a_b"));
    EXPECT_FALSE(HostsResolver::valid_name(std::string(64, 'x')));
}

// TcpClient::connect(host, port) goes through its resolver: a name from
// the (injected) hosts file reaches a listener of the test.
TEST(HostsResolver, TcpClientConnectsByHostsName)
{
    HostsFile f;
    zan::InetAddr any = zan::InetAddr::parse("127.0.0.7", 0).value();
    std::string e;
    zan::Fd lfd = zan::listen_tcp(any, 16, false, &e);
    ASSERT_TRUE(lfd.valid()) << e;
    uint16_t port = zan::local_addr(lfd.get()).port();
    zan::EventLoop loop;
    zan::TcpClient c(loop);
    c.set_resolver(HostsResolver(f.path));
    bool connected = false;
    c.on_connect([&](zan::TcpClient&) { connected = true; });
    ASSERT_TRUE(c.connect("backend.test", port)) << c.error();
    EXPECT_EQ(c.peer().to_string(), "127.0.0.7:" + std::to_string(port));
    long long end = zt::now_ms() + zt::scaled(3000);
    while (!connected && zt::now_ms() < end)
        loop.run_once(20);
    EXPECT_TRUE(connected);

    zan::TcpClient d(loop);
    d.set_resolver(HostsResolver(f.path));
    errno = 0;
    EXPECT_FALSE(d.connect("db.example.com", port));
    EXPECT_NE(d.error().find("needs DNS"), std::string::npos) << d.error();
    EXPECT_FALSE(d.connecting());
}
