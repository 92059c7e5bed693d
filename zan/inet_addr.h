// InetAddr: an IPv4 or IPv6 socket address (a value type). Parsing uses
// inet_pton(3) only (no name service), so -static builds stay clean;
// "localhost" is accepted as 127.0.0.1.
#ifndef ZAN_INET_ADDR_H
#define ZAN_INET_ADDR_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include <optional>
#include <string>

namespace zan {

class InetAddr {
public:
    InetAddr();
    // Parses a numeric IPv4/IPv6 address (IPv6 may be in brackets);
    // nullopt when host is neither.
    static std::optional<InetAddr> parse(const std::string& host, uint16_t port);
    static InetAddr from_sockaddr(const struct sockaddr* sa, socklen_t len);

    int family() const { return ss_.ss_family; }
    uint16_t port() const;
    void set_port(uint16_t port);
    std::string ip() const;
    std::string to_string() const;  // "1.2.3.4:80" or "[::1]:80"
    // 32-bit value of the address for dispatch by client IP: the IPv4
    // address, or the last 32 bits of an IPv6 address.
    uint32_t ip_hash() const;

    const struct sockaddr* sa() const { return reinterpret_cast<const struct sockaddr*>(&ss_); }
    struct sockaddr* sa() { return reinterpret_cast<struct sockaddr*>(&ss_); }
    socklen_t len() const { return len_; }

private:
    struct sockaddr_storage ss_;
    socklen_t len_;
};

}  // namespace zan

#endif
