#include "zan/inet_addr.h"

#include <arpa/inet.h>
#include <string.h>

namespace zan {

InetAddr::InetAddr() : len_(sizeof(struct sockaddr_in))
{
    memset(&ss_, 0, sizeof(ss_));
    ss_.ss_family = AF_INET;
}

std::optional<InetAddr> InetAddr::parse(const std::string& host_in, uint16_t port)
{
    std::string host = host_in;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host == "localhost")
        host = "127.0.0.1";
    InetAddr a;
    auto* in4 = reinterpret_cast<struct sockaddr_in*>(&a.ss_);
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&a.ss_);
    if (::inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        a.len_ = sizeof(*in4);
    } else if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        a.len_ = sizeof(*in6);
    } else {
        return std::nullopt;
    }
    return a;
}

InetAddr InetAddr::from_sockaddr(const struct sockaddr* sa, socklen_t len)
{
    InetAddr a;
    if (len > sizeof(a.ss_))
        len = sizeof(a.ss_);
    memcpy(&a.ss_, sa, len);
    a.len_ = len;
    return a;
}

uint16_t InetAddr::port() const
{
    if (family() == AF_INET6)
        return ntohs(reinterpret_cast<const struct sockaddr_in6*>(&ss_)->sin6_port);
    return ntohs(reinterpret_cast<const struct sockaddr_in*>(&ss_)->sin_port);
}

void InetAddr::set_port(uint16_t port)
{
    if (family() == AF_INET6)
        reinterpret_cast<struct sockaddr_in6*>(&ss_)->sin6_port = htons(port);
    else
        reinterpret_cast<struct sockaddr_in*>(&ss_)->sin_port = htons(port);
}

// Writes an IPv4 address as four decimal numbers; returns the end. By
// hand: inet_ntop(3) goes through a generic formatter, and a client may
// print the address of every connection it makes.
static char* put_ipv4(char* p, const struct in_addr& a)
{
    const auto* b = reinterpret_cast<const unsigned char*>(&a.s_addr);
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (i)
            *p++ = '.';
        if (v >= 100) {
            *p++ = static_cast<char>('0' + v / 100);
            v %= 100;
            *p++ = static_cast<char>('0' + v / 10);
            v %= 10;
        } else if (v >= 10) {
            *p++ = static_cast<char>('0' + v / 10);
            v %= 10;
        }
        *p++ = static_cast<char>('0' + v);
    }
    return p;
}

// The address without the port into buf (INET6_ADDRSTRLEN bytes); returns
// its length.
static size_t put_ip(const struct sockaddr_storage& ss, char* buf)
{
    if (ss.ss_family == AF_INET6) {
        if (!::inet_ntop(AF_INET6, &reinterpret_cast<const struct sockaddr_in6*>(&ss)->sin6_addr, buf,
                         INET6_ADDRSTRLEN))
            return 0;
        return strlen(buf);
    }
    return static_cast<size_t>(put_ipv4(buf, reinterpret_cast<const struct sockaddr_in*>(&ss)->sin_addr) - buf);
}

std::string InetAddr::ip() const
{
    char buf[INET6_ADDRSTRLEN];
    return std::string(buf, put_ip(ss_, buf));
}

// Built in one buffer: "1.2.3.4:80" fits std::string's inline storage
// when short, so printing a peer allocates nothing.
std::string InetAddr::to_string() const
{
    char buf[INET6_ADDRSTRLEN + 8];  // "[" ip "]:" and five digits
    char* p = buf;
    bool v6 = family() == AF_INET6;
    if (v6)
        *p++ = '[';
    p += put_ip(ss_, p);
    if (v6)
        *p++ = ']';
    *p++ = ':';
    char digits[5];
    int n = 0;
    unsigned v = port();
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = digits[--n];
    return std::string(buf, static_cast<size_t>(p - buf));
}

uint32_t InetAddr::ip_hash() const
{
    uint32_t v;
    if (family() == AF_INET6) {
        const auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(&ss_);
        memcpy(&v, in6->sin6_addr.s6_addr + 12, 4);
    } else {
        v = reinterpret_cast<const struct sockaddr_in*>(&ss_)->sin_addr.s_addr;
    }
    return ntohl(v);
}

}  // namespace zan
