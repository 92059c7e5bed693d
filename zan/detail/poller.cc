#include "zan/detail/poller.h"

#include <errno.h>
#include <stdlib.h>

#include "zan/log.h"

namespace zan {

Poller::Poller() : epfd_(::epoll_create1(EPOLL_CLOEXEC))
{
    if (!epfd_.valid()) {
        log_errno(Level::error, errno, "epoll_create1() failed while creating an event loop");
        ::abort();
    }
}

static int ctl(int epfd, int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return ::epoll_ctl(epfd, op, fd, &ev);
}

int Poller::add(int fd, uint32_t epoll_events, uint64_t data)
{
    return ctl(epfd_.get(), EPOLL_CTL_ADD, fd, epoll_events, data);
}

int Poller::modify(int fd, uint32_t epoll_events, uint64_t data)
{
    return ctl(epfd_.get(), EPOLL_CTL_MOD, fd, epoll_events, data);
}

// Kernels before 2.6.9 wanted a non-null event even for EPOLL_CTL_DEL.
int Poller::remove(int fd) { return ctl(epfd_.get(), EPOLL_CTL_DEL, fd, 0, 0); }

int Poller::wait(struct epoll_event* evs, int max, int timeout_ms)
{
    int n = ::epoll_wait(epfd_.get(), evs, max, timeout_ms);
    if (n < 0 && errno == EINTR)
        return 0;  // a signal woke us: the caller re-checks its timers
    return n;
}

}  // namespace zan
