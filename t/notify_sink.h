// NotifySink: a fake service manager's notify socket for the tests of
// systemd readiness (NOTIFY_SOCKET). A datagram socket bound to a fresh
// path under a temporary directory, or to an abstract name ("@..."),
// with SO_PASSCRED so that every datagram names the process that sent
// it. Owns the socket and the directory; both go at scope exit.
#ifndef ZAN_T_NOTIFY_SINK_H
#define ZAN_T_NOTIFY_SINK_H

#include <sys/types.h>

#include <string>
#include <vector>

#include "t/tmp_helpers.h"
#include "zan/fd.h"

namespace zt {

struct NotifyMessage {
    pid_t pid = 0;     // sender (SCM_CREDENTIALS)
    std::string text;  // "READY=1\nMAINPID=..."
    // True when one line is exactly `line` ("READY=1").
    bool has(const std::string& line) const;
    // The value of "key=value", "" when absent.
    std::string value(const std::string& key) const;
};

class NotifySink {
public:
    explicit NotifySink(bool abstract);
    NotifySink(const NotifySink&) = delete;
    NotifySink& operator=(const NotifySink&) = delete;
    bool ok() const { return fd_.valid(); }
    // The value for NOTIFY_SOCKET.
    const std::string& address() const { return address_; }
    // The next datagram within timeout_ms (scaled); false on timeout.
    bool next(NotifyMessage* m, int timeout_ms);
    // The next datagram holding line `line`, within timeout_ms (scaled);
    // the ones before it go to *skipped when given.
    bool wait_for(const std::string& line, NotifyMessage* m, int timeout_ms,
                  std::vector<NotifyMessage>* skipped = nullptr);

private:
    TempDir dir_;
    std::string address_;
    zan::Fd fd_;
};

}  // namespace zt

#endif
