// EventLoop: the reactor each zan process runs (redis ae.c style).
//
// Level-triggered epoll (edge-triggered for an fd watched with kEdge), a flat table indexed by fd holding {mask,
// callback, generation}, a timer heap, one signalfd, deferred calls and
// before-poll hooks. The epoll data of a watched fd is
// (generation << 32) | fd, and every watch() or unwatch() bumps the
// generation, so an event collected for an fd that was unwatched, or
// closed and reused, earlier in the same dispatch pass is dropped.
//
// Ownership: owns its epoll fd, its signalfd and every callback. It never
// closes a watched fd: unwatch() it, then close it (an fd closed while
// watched may deliver one stale event to its old callback if nothing
// watches the reused number). The destructor unblocks the signals that
// watch_signal() blocked.
//
// One per process and single-threaded. Never used across fork: the child
// builds its own loop (the inherited epoll fd shares the parent's interest
// list); a child forked from a callback calls close_after_fork() on the
// inherited one and abandons it. Callbacks must not throw.
#ifndef ZAN_EVENT_LOOP_H
#define ZAN_EVENT_LOOP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/signalfd.h>

#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "zan/fd.h"
#include "zan/timer_queue.h"

struct epoll_event;

namespace zan {

class Poller;

// Interest and delivered events. kError is always delivered, together with
// kReadable (and kWritable when write interest is set), so the normal read
// and write paths see the failure. Interest kError alone means "registered,
// tell me only about errors and hang-ups". kEdge in an interest makes the
// fd edge-triggered (EPOLLET): one event per change, e.g. per eventfd
// write, whether or not the fd is read.
enum : uint32_t { kReadable = 1u, kWritable = 2u, kError = 4u, kEdge = 8u };

class EventLoop {
public:
    using IoCallback = std::function<void(uint32_t events)>;
    using Callback = std::function<void()>;
    using SignalCallback = std::function<void(const struct signalfd_siginfo&)>;
    using TimerId = uint64_t;

    // Up to this many events per epoll_wait() call.
    static constexpr int kMaxEvents = 256;

    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Adds fd or replaces its mask and callback. Mask 0 keeps fd registered
    // with the loop but out of epoll. False with errno (EBADF, EINVAL for an
    // empty callback, ERANGE, or from epoll_ctl).
    bool watch(int fd, uint32_t mask, IoCallback cb);
    // Changes the interest of a watched fd. Makes no syscall when the epoll
    // events are unchanged. False with errno (ENOENT if fd is not watched).
    bool update(int fd, uint32_t mask);
    uint32_t interest(int fd) const;
    bool watching(int fd) const;
    // Forgets fd (does not close it). Safe from any callback, including
    // fd's own; pending events of fd in the current pass are dropped.
    void unwatch(int fd);

    // Timers, relative to the monotonic clock. run_every() with an interval
    // <= 0 returns 0 with errno EINVAL.
    TimerId run_after(long long delay_ms, Callback cb);
    TimerId run_every(long long interval_ms, Callback cb);
    bool cancel(TimerId id);

    // Blocks signo and reads it from the loop's signalfd; a second call for
    // the same signo replaces the callback. False with errno.
    bool watch_signal(int signo, SignalCallback cb);
    // Stops reading signo and, if watch_signal() blocked it, discards any
    // pending instance and unblocks it again.
    void unwatch_signal(int signo);

    // Runs cb after the current dispatch pass, before the next wait.
    void defer(Callback cb);
    // Runs cb every iteration just before epoll_wait (must be cheap).
    void add_before_poll(Callback cb);
    // Runs cb every iteration just after epoll_wait returns, before any
    // callback (must be cheap; must not add hooks).
    void add_after_poll(Callback cb);

    // Loops until stop(); clears the stop flag when it starts.
    void run();
    // One iteration: before-poll hooks, epoll_wait (timeout -1 = until an
    // event or timer), I/O callbacks, expired timers, deferred calls.
    // Returns the callbacks run, or -1 with errno if epoll_wait failed or
    // the loop is already inside run_once() (EDEADLK).
    int run_once(int timeout_ms);
    void stop() { stop_ = true; }
    bool stopped() const { return stop_; }

    // Live timers (one-shot timers not yet run, periodic ones not cancelled).
    size_t timer_count() const { return timers_.size(); }
    // Descriptors in the table (watched, mask 0 included; the signalfd too).
    size_t watch_count() const { return watched_; }
    // In a child forked from inside this loop: closes the epoll and signal
    // descriptors without touching the signal mask or running destructors
    // of callbacks. The object must not be used afterwards, except to be
    // destroyed (which then leaves the signal mask alone too).
    void close_after_fork();

    // CLOCK_MONOTONIC in ms, cached; refreshed after each wake-up.
    long long now_ms() const { return now_ms_; }
    // CLOCK_MONOTONIC in us at the last wake-up (0 before the first).
    long long now_us() const { return now_us_; }

private:
    struct Entry {
        IoCallback cb;
        uint32_t mask = 0;
        uint32_t gen = 0;
        bool used = false;
        bool in_epoll = false;
    };

    int dispatch_io(int n);
    int run_deferred();
    int next_timeout(int timeout_ms) const;
    void read_signals();
    void dispatch_signal(const struct signalfd_siginfo& info);
    void release_signal(int signo);

    std::unique_ptr<Poller> poller_;
    std::unique_ptr<struct epoll_event[]> events_;
    std::vector<Entry> table_;
    std::vector<IoCallback> graveyard_;  // removed during a pass, freed after it
    TimerQueue timers_;
    std::vector<Callback> deferred_;
    std::vector<Callback> running_;  // the deferred calls being run
    std::deque<Callback> before_poll_;  // deque: a hook may add hooks
    std::vector<Callback> after_poll_;
    Fd signal_fd_;
    sigset_t sig_watched_;
    sigset_t sig_blocked_;  // blocked by us, unblocked again on release
    std::vector<SignalCallback> sig_cbs_;
    long long now_ms_ = 0;
    long long now_us_ = 0;
    size_t watched_ = 0;
    bool stop_ = false;
    bool in_loop_ = false;
};

}  // namespace zan

#endif
