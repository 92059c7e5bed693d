// HostsResolver: turns a host name into an address without the name
// service switch: a numeric IPv4 or IPv6 address (InetAddr::parse), or a
// name listed in a hosts(5) file (/etc/hosts unless told otherwise).
// There is no DNS and no getaddrinfo(3), so -static programs keep
// working; a name that only DNS knows gets an error that says so (resolve
// it in a TaskWorker, which may block, and pass the address on).
//
// A value holding the file's path; it owns nothing else and reads the file
// on each lookup of a non-numeric name (hosts files are small). Usable in
// any process; a copy survives fork like any value.
#ifndef ZAN_HOSTS_RESOLVER_H
#define ZAN_HOSTS_RESOLVER_H

#include <stdint.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zan/inet_addr.h"

namespace zan {

class HostsResolver {
public:
    static constexpr const char* kDefaultPath = "/etc/hosts";

    explicit HostsResolver(std::string path = kDefaultPath) : path_(std::move(path)) {}

    const std::string& path() const { return path_; }

    // The address of `host` with `port`: numeric, or the first address the
    // hosts file gives for the name (names compare case-insensitively).
    // Without one, nullopt and the reason in *error (if not null).
    std::optional<InetAddr> resolve(std::string_view host, uint16_t port,
                                    std::string* error = nullptr) const;
    // Every address the hosts file lists for `name`, in file order (empty
    // when the file cannot be read or does not name it).
    std::vector<InetAddr> lookup(std::string_view name, uint16_t port) const;

    // Whether `name` is a syntactically valid host name (RFC 1123 labels).
    static bool valid_name(std::string_view name);

private:
    std::string path_;
};

}  // namespace zan

#endif
