// SdNotify: the sender side of systemd's readiness protocol (sd_notify(3))
// without libsystemd. One datagram of newline-separated "VAR=value" lines
// goes to the AF_UNIX datagram socket named by an address: a path, or an
// abstract name written with a leading '@'. Owns one unbound datagram
// socket (close-on-exec, non-blocking, made on the first send), so a
// receiver that does not read never blocks the sender. Used by the Master
// only; not shared across fork.
#ifndef ZAN_DETAIL_SD_NOTIFY_H
#define ZAN_DETAIL_SD_NOTIFY_H

#include <sys/types.h>

#include <string>
#include <string_view>

#include "zan/fd.h"

namespace zan {

class SdNotify {
public:
    // Sends to `address` ("/run/x.sock" or "@name"); empty: sends nothing.
    explicit SdNotify(std::string address = std::string()) : address_(std::move(address)) {}
    // The address in environment variable `var` (NOTIFY_SOCKET); the
    // variable is left in place.
    static SdNotify from_env(const char* var = "NOTIFY_SOCKET");

    bool enabled() const { return !address_.empty(); }
    const std::string& address() const { return address_; }
    // Sends `state` as one datagram. False with errno (EAGAIN when the
    // receiver's queue is full, ECONNREFUSED when nobody listens,
    // EINVAL for an address that does not fit a sockaddr_un); true and
    // nothing sent when disabled.
    bool send(std::string_view state);

    // Half of WATCHDOG_USEC in microseconds when systemd's watchdog is on
    // for process `self` (WATCHDOG_PID unset or equal to it), else 0.
    static long long watchdog_ping_us(pid_t self);

private:
    std::string address_;
    Fd fd_;
};

}  // namespace zan

#endif
