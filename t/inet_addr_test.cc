// InetAddr's text forms: the IPv4 formatting written by hand, checked
// against inet_ntop(3) on addresses whose numbers have one, two and three
// digits, and the port and brackets of to_string().
#include "zan/inet_addr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

using zan::InetAddr;

namespace {

std::string ntop4(uint32_t host_order)
{
    struct in_addr a;
    a.s_addr = htonl(host_order);
    char buf[INET_ADDRSTRLEN];
    return ::inet_ntop(AF_INET, &a, buf, sizeof buf);
}

InetAddr v4(uint32_t host_order, uint16_t port)
{
    struct sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(host_order);
    return InetAddr::from_sockaddr(reinterpret_cast<const struct sockaddr*>(&sin), sizeof sin);
}

}  // namespace

TEST(InetAddr, Ipv4TextMatchesInetNtop)
{
    const unsigned bytes[] = {0, 1, 9, 10, 11, 99, 100, 101, 109, 110, 199, 200, 250, 255};
    for (unsigned a : bytes)
        for (unsigned b : bytes) {
            uint32_t ip = (a << 24) | (b << 16) | ((a ^ b) & 0xff) << 8 | ((255 - a) & 0xff);
            EXPECT_EQ(v4(ip, 0).ip(), ntop4(ip));
        }
    // Every value of one byte, in each position.
    for (unsigned v = 0; v < 256; v++)
        for (int shift = 0; shift < 32; shift += 8)
            ASSERT_EQ(v4(v << shift, 0).ip(), ntop4(v << shift)) << v << " << " << shift;
}

TEST(InetAddr, ToStringPrintsThePort)
{
    EXPECT_EQ(v4(0x7f000001, 0).to_string(), "127.0.0.1:0");
    EXPECT_EQ(v4(0x7f000001, 8).to_string(), "127.0.0.1:8");
    EXPECT_EQ(v4(0x7f000001, 80).to_string(), "127.0.0.1:80");
    EXPECT_EQ(v4(0xffffffff, 65535).to_string(), "255.255.255.255:65535");
    EXPECT_EQ(v4(0, 10000).to_string(), "0.0.0.0:10000");
    std::optional<InetAddr> p = InetAddr::parse("10.200.3.45", 18180);
    ASSERT_TRUE(p);
    InetAddr a = *p;
    EXPECT_EQ(a.ip(), "10.200.3.45");
    EXPECT_EQ(a.to_string(), "10.200.3.45:18180");
}

TEST(InetAddr, Ipv6TextIsBracketed)
{
    std::optional<InetAddr> a = InetAddr::parse("[::1]", 443);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->ip(), "::1");
    EXPECT_EQ(a->to_string(), "[::1]:443");
    a = InetAddr::parse("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->to_string(), "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    a = InetAddr::parse("::ffff:1.2.3.4", 1);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->to_string(), "[::ffff:1.2.3.4]:1");
}
