#include "zan/detail/sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace zan {

SdNotify SdNotify::from_env(const char* var)
{
    const char* v = ::getenv(var);
    return SdNotify(v ? v : "");
}

bool SdNotify::send(std::string_view state)
{
    if (address_.empty())
        return true;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    // A path needs room for its NUL; an abstract name has none (its first
    // byte, '@' in the variable, is NUL in the address).
    bool abstract = address_[0] == '@';
    if ((address_[0] != '/' && !abstract) || address_.size() >= sizeof(sa.sun_path) + abstract) {
        errno = EINVAL;
        return false;
    }
    memcpy(sa.sun_path, address_.data(), address_.size());
    if (abstract)
        sa.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + address_.size() +
                                           (abstract ? 0 : 1));
    if (!fd_) {
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd_)
            return false;
    }
    ssize_t n;
    do
        n = ::sendto(fd_.get(), state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<struct sockaddr*>(&sa), len);
    while (n < 0 && errno == EINTR);
    return n >= 0;
}

long long SdNotify::watchdog_ping_us(pid_t self)
{
    const char* usec = ::getenv("WATCHDOG_USEC");
    if (!usec || !*usec)
        return 0;
    const char* wpid = ::getenv("WATCHDOG_PID");
    if (wpid && *wpid) {
        char* end = nullptr;
        long p = strtol(wpid, &end, 10);
        if (*end != '\0' || p != static_cast<long>(self))
            return 0;
    }
    char* end = nullptr;
    errno = 0;
    long long us = strtoll(usec, &end, 10);
    if (errno != 0 || *end != '\0' || us <= 0)
        return 0;
    return us / 2 > 0 ? us / 2 : 1;
}

}  // namespace zan
