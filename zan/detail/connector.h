// Connector: one non-blocking TCP connect on an EventLoop, with a timeout.
// This is an internal header file, you should not include this; use
// zan/tcp_client.h.
//
// start() makes a SOCK_NONBLOCK|SOCK_CLOEXEC socket and connects it; the
// result comes to the done callback from the loop, never from start()
// itself, even when connect(2) fails at once: the connected descriptor
// (ownership passes to the callback, unwatched) or an errno value
// (ECONNREFUSED, ETIMEDOUT after the timeout, EMFILE, ...).
//
// Owns the socket until it hands it over, its watch on the loop and its
// timer; cancel() or the destructor closes the socket and the callback
// never runs. The done callback may destroy the Connector. Lives on one
// loop in one process and is never used across fork.
#ifndef ZAN_DETAIL_CONNECTOR_H
#define ZAN_DETAIL_CONNECTOR_H

#include <functional>

#include "zan/event_loop.h"
#include "zan/fd.h"
#include "zan/inet_addr.h"

namespace zan {

class Connector {
public:
    // fd is valid and err 0 on success; otherwise fd is invalid.
    using DoneCallback = std::function<void(Fd fd, int err)>;

    explicit Connector(EventLoop& loop) : loop_(loop) {}
    ~Connector() { cancel(); }
    Connector(const Connector&) = delete;
    Connector& operator=(const Connector&) = delete;

    // Starts connecting to addr; timeout_ms <= 0 waits for the kernel
    // (minutes). False with errno EALREADY if a connect is pending, EINVAL
    // for an empty callback.
    bool start(const InetAddr& addr, long long timeout_ms, DoneCallback cb);
    // Abandons a pending connect: closes the socket; the callback is not run.
    void cancel();
    bool pending() const { return static_cast<bool>(done_); }

private:
    void finish(int err);

    EventLoop& loop_;
    Fd fd_;
    DoneCallback done_;
    EventLoop::TimerId timer_ = 0;
    int early_err_ = 0;  // connect(2) or socket(2) failed at once
};

}  // namespace zan

#endif
