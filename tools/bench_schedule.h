// zan-bench's open loop: the timetable of a --rate run and the timer that
// wakes the event loop when the next request is due.
//
// Slot n of a run is due at start + n / rate and belongs to connection
// n mod C, so the requests of all connections together are evenly spaced
// and each connection sends every C / rate seconds. A request's latency is
// measured from its slot's time, not from the moment it was written: a
// server that stalls delays every request due meanwhile, and all of them
// carry the stall (no coordinated omission).
#ifndef ZAN_TOOLS_BENCH_SCHEDULE_H
#define ZAN_TOOLS_BENCH_SCHEDULE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "zan/fd.h"

namespace zan_bench {

// Owns a timerfd (CLOCK_MONOTONIC, armed at absolute slot times; a timerfd
// is not subject to the timer slack that rounds up epoll_wait timeouts);
// one process, nothing survives it.
class Schedule {
public:
    static constexpr uint64_t kTimerTag = UINT64_MAX;  // epoll data of the timer

    Schedule(double rate, size_t conns, long long limit)
        : rate_(rate), conns_(static_cast<long long>(conns)), limit_(limit)
    {
    }

    // Makes the timer and adds it to the epoll set ep; slots are due from
    // start_ns until end_ns. False (with a message) on failure.
    bool start(int ep, long long start_ns, long long end_ns)
    {
        start_ = start_ns;
        end_ = end_ns;
        tfd_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        struct epoll_event ev = {};
        ev.events = EPOLLIN;
        ev.data.u64 = kTimerTag;
        if (!tfd_ || epoll_ctl(ep, EPOLL_CTL_ADD, tfd_.get(), &ev) < 0) {
            perror("zan-bench: timerfd");
            return false;
        }
        return true;
    }

    // When slot n is due.
    long long slot_ns(long long n) const
    {
        return start_ + static_cast<long long>(static_cast<double>(n) * 1e9 / rate_);
    }
    // When the k-th request of connection i is due.
    long long intended_ns(size_t i, long long k) const
    {
        return slot_ns(k * conns_ + static_cast<long long>(i));
    }

    // Hands each slot due by now to on_due(connection index, due time).
    // now minus the due time is how late the generator got to the slot:
    // the timer fires at the due time, so anything more is the generator
    // busy elsewhere or not running.
    template <class F>
    void advance(long long now, F on_due)
    {
        while (!over() && slot_ns(next_) <= now) {
            on_due(static_cast<size_t>(next_ % conns_), slot_ns(next_));
            next_++;
        }
    }

    // No slot is left: the end time or --requests is reached.
    bool over() const { return (limit_ && next_ >= limit_) || slot_ns(next_) >= end_; }
    long long due() const { return next_; }

    // Arms the timer for the next slot (once per slot); the loop calls it
    // before it waits.
    void arm()
    {
        if (over() || armed_ == next_)
            return;
        long long t = slot_ns(next_);
        struct itimerspec its = {};
        its.it_value.tv_sec = t / 1000000000LL;
        its.it_value.tv_nsec = t % 1000000000LL;
        if (timerfd_settime(tfd_.get(), TFD_TIMER_ABSTIME, &its, nullptr) == 0)
            armed_ = next_;
    }

    // The timer fired: clears it (it stays readable until read).
    void fired()
    {
        uint64_t ticks;
        while (read(tfd_.get(), &ticks, sizeof(ticks)) < 0 && errno == EINTR) {
        }
    }

private:
    double rate_;
    long long conns_;
    long long limit_;  // slots in all (--requests), 0 for no limit
    long long start_ = 0, end_ = 0;
    long long next_ = 0;    // the first slot not yet due
    long long armed_ = -1;  // the slot the timer is set for
    zan::Fd tfd_;
};

}  // namespace zan_bench

#endif
