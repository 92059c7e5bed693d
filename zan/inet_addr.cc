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

std::string InetAddr::ip() const
{
    char buf[INET6_ADDRSTRLEN] = "";
    if (family() == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const struct sockaddr_in6*>(&ss_)->sin6_addr, buf,
                    sizeof(buf));
    else
        ::inet_ntop(AF_INET, &reinterpret_cast<const struct sockaddr_in*>(&ss_)->sin_addr, buf,
                    sizeof(buf));
    return buf;
}

std::string InetAddr::to_string() const
{
    if (family() == AF_INET6)
        return "[" + ip() + "]:" + std::to_string(port());
    return ip() + ":" + std::to_string(port());
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
