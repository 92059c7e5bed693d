// Poller: a thin wrapper over one epoll instance.
// This is an internal header file, you should not include this; use
// zan/event_loop.h. The Poller owns its epoll descriptor (EPOLL_CLOEXEC)
// and closes it on destruction; it never closes the descriptors it watches.
// One per EventLoop, private to the process that made it: an epoll fd
// inherited across fork shares its interest list with the parent, so a
// child builds its own loop instead of touching the inherited one.
#ifndef ZAN_DETAIL_POLLER_H
#define ZAN_DETAIL_POLLER_H

#include <stdint.h>
#include <sys/epoll.h>

#include "zan/fd.h"

namespace zan {

class Poller {
public:
    // Aborts (after logging) if epoll_create1() fails: startup code only.
    Poller();
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;

    int fd() const { return epfd_.get(); }

    // epoll_ctl(2) wrappers; `data` comes back in epoll_event.data.u64.
    // Return 0, or -1 with errno (epoll_ctl never fails with EINTR).
    int add(int fd, uint32_t epoll_events, uint64_t data);
    int modify(int fd, uint32_t epoll_events, uint64_t data);
    int remove(int fd);

    // epoll_wait(2): number of ready events, 0 on timeout or EINTR, or -1
    // with errno on any other failure.
    int wait(struct epoll_event* evs, int max, int timeout_ms);

private:
    Fd epfd_;
};

}  // namespace zan

#endif
