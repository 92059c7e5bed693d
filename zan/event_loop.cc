#include "zan/event_loop.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <time.h>

#include <utility>

#include "zan/log.h"
#include "zan/detail/poller.h"
#include "zan/sys.h"

namespace zan {

// Far more than RLIMIT_NOFILE allows; guards the table against garbage.
static constexpr int kMaxFd = 1 << 24;
// Keeps now + delay from overflowing (about 31,000 years).
static constexpr long long kMaxDelayMs = 1LL << 40;

static uint32_t to_epoll(uint32_t mask)
{
    uint32_t ev = ((mask & kReadable) ? EPOLLIN : 0u) | ((mask & kWritable) ? EPOLLOUT : 0u);
    return ev && (mask & kEdge) ? ev | EPOLLET : ev;
}

static uint64_t make_data(int fd, uint32_t gen)
{
    return (static_cast<uint64_t>(gen) << 32) | static_cast<uint32_t>(fd);
}

// Errors and hang-ups become kError plus kReadable (and kWritable when
// wanted), so the normal read/write paths run into the failure.
static uint32_t to_events(uint32_t ev, uint32_t mask)
{
    uint32_t out = 0;
    if ((ev & EPOLLIN) && (mask & kReadable))
        out |= kReadable;
    if ((ev & EPOLLOUT) && (mask & kWritable))
        out |= kWritable;
    if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        out |= kError | kReadable | (mask & kWritable);
    return out;
}

EventLoop::EventLoop()
    : poller_(new Poller),
      events_(new struct epoll_event[kMaxEvents]),
      sig_cbs_(NSIG),
      now_ms_(monotonic_ms())
{
    sigemptyset(&sig_watched_);
    sigemptyset(&sig_blocked_);
}

EventLoop::~EventLoop()
{
    for (int signo = 1; signo < NSIG; ++signo)
        release_signal(signo);
}

bool EventLoop::watch(int fd, uint32_t mask, IoCallback cb)
{
    if (fd < 0 || fd >= kMaxFd || !cb) {
        errno = fd < 0 ? EBADF : !cb ? EINVAL : ERANGE;
        return false;
    }
    if (static_cast<size_t>(fd) >= table_.size())
        table_.resize(static_cast<size_t>(fd) + 1);
    Entry& e = table_[fd];
    mask &= kReadable | kWritable | kError | kEdge;
    uint32_t gen = e.gen + 1;  // a new registration: drop events of the old one
    uint64_t data = make_data(fd, gen);
    if (mask != 0) {
        uint32_t events = to_epoll(mask);
        int rc;
        if (e.used && e.in_epoll) {
            rc = poller_->modify(fd, events, data);
            if (rc < 0 && errno == ENOENT)  // closed and reused without unwatch()
                rc = poller_->add(fd, events, data);
        } else {
            rc = poller_->add(fd, events, data);
            if (rc < 0 && errno == EEXIST)  // a dup of a closed fd kept it in epoll
                rc = poller_->modify(fd, events, data);
        }
        if (rc < 0)
            return false;
    } else if (e.used && e.in_epoll) {
        poller_->remove(fd);  // may already be gone if fd was closed
    }
    // (A running callback is not in e.cb: dispatch_io() holds it.) The old
    // one's captures may still be in use by this pass and its destructor
    // may re-enter the loop: free it after the pass, or at least after the
    // table is consistent.
    IoCallback old = std::move(e.cb);
    e.cb = std::move(cb);
    e.mask = mask;
    e.gen = gen;
    if (!e.used)
        ++watched_;
    e.used = true;
    e.in_epoll = mask != 0;
    if (in_loop_ && old)
        graveyard_.push_back(std::move(old));
    return true;
}

bool EventLoop::update(int fd, uint32_t mask)
{
    if (fd < 0 || static_cast<size_t>(fd) >= table_.size() || !table_[fd].used) {
        errno = ENOENT;
        return false;
    }
    Entry& e = table_[fd];
    mask &= kReadable | kWritable | kError | kEdge;
    if (mask == e.mask)
        return true;  // the hot path: no syscall
    bool want = mask != 0;
    if (want && e.in_epoll && to_epoll(mask) == to_epoll(e.mask)) {
        e.mask = mask;  // only kError changed: epoll reports errors anyway
        return true;
    }
    int rc = 0;
    if (want && e.in_epoll)
        rc = poller_->modify(fd, to_epoll(mask), make_data(fd, e.gen));
    else if (want)
        rc = poller_->add(fd, to_epoll(mask), make_data(fd, e.gen));
    else
        poller_->remove(fd);
    if (rc < 0)
        return false;
    e.mask = mask;
    e.in_epoll = want;
    return true;
}

uint32_t EventLoop::interest(int fd) const { return watching(fd) ? table_[fd].mask : 0; }

bool EventLoop::watching(int fd) const
{
    return fd >= 0 && static_cast<size_t>(fd) < table_.size() && table_[fd].used;
}

void EventLoop::unwatch(int fd)
{
    if (!watching(fd))
        return;
    Entry& e = table_[fd];
    if (e.in_epoll)
        poller_->remove(fd);  // ENOENT/EBADF when fd was closed first: fine
    IoCallback old = std::move(e.cb);
    --watched_;
    e.used = false;
    e.in_epoll = false;
    e.mask = 0;
    ++e.gen;
    if (in_loop_ && old)
        graveyard_.push_back(std::move(old));
}

EventLoop::TimerId EventLoop::run_after(long long delay_ms, Callback cb)
{
    if (delay_ms < 0)
        delay_ms = 0;
    if (delay_ms > kMaxDelayMs)
        delay_ms = kMaxDelayMs;
    now_ms_ = monotonic_ms();  // next_timeout() measures from now_ms_
    return timers_.add(now_ms_ + delay_ms, 0, std::move(cb));
}

EventLoop::TimerId EventLoop::run_every(long long interval_ms, Callback cb)
{
    if (interval_ms <= 0) {
        errno = EINVAL;
        return 0;
    }
    if (interval_ms > kMaxDelayMs)
        interval_ms = kMaxDelayMs;
    now_ms_ = monotonic_ms();
    return timers_.add(now_ms_ + interval_ms, interval_ms, std::move(cb));
}

bool EventLoop::cancel(TimerId id) { return timers_.cancel(id); }

void EventLoop::defer(Callback cb)
{
    if (cb)
        deferred_.push_back(std::move(cb));
}

void EventLoop::add_before_poll(Callback cb)
{
    if (cb)
        before_poll_.push_back(std::move(cb));
}

void EventLoop::add_after_poll(Callback cb)
{
    if (cb)
        after_poll_.push_back(std::move(cb));
}

void EventLoop::run()
{
    if (in_loop_) {
        log(Level::error, "EventLoop::run() called from inside a callback of the same loop");
        return;
    }
    stop_ = false;
    while (!stop_) {
        if (run_once(-1) < 0) {
            log_errno(Level::error, errno, "epoll_wait() failed, leaving the event loop");
            return;
        }
    }
}

int EventLoop::next_timeout(int timeout_ms) const
{
    if (stop_ || !deferred_.empty())
        return 0;
    long long next = timers_.next_expiry();
    if (next < 0)
        return timeout_ms;
    // now_ms_ is from the last wake-up or timer added (one clock read per
    // pass, as nginx does): it can only be early, so a timer can be late by
    // the time the callbacks since then took, never early.
    long long delay = next - now_ms_;
    if (delay < 0)
        delay = 0;
    if (timeout_ms >= 0 && delay > timeout_ms)
        return timeout_ms;
    return delay > INT_MAX ? INT_MAX : static_cast<int>(delay);
}

int EventLoop::run_once(int timeout_ms)
{
    if (in_loop_) {
        errno = EDEADLK;
        return -1;
    }
    in_loop_ = true;
    // By index: a hook may add hooks (a deque keeps the running one in place).
    for (size_t i = 0; i < before_poll_.size(); ++i)
        before_poll_[i]();
    int n = poller_->wait(events_.get(), kMaxEvents, next_timeout(timeout_ms));
    if (n < 0) {
        int err = errno;
        in_loop_ = false;
        graveyard_.clear();
        errno = err;
        return -1;
    }
    now_us_ = monotonic_us();
    now_ms_ = now_us_ / 1000;
    for (auto& cb : after_poll_)
        cb();
    int count = dispatch_io(n);
    timers_.run_expired(now_ms_);
    count += static_cast<int>(timers_.last_fired());
    count += run_deferred();
    // Destructors run here may re-enter watch()/unwatch(); with in_loop_
    // false those destroy what they remove at once instead of burying it.
    in_loop_ = false;
    graveyard_.clear();
    return count;
}

int EventLoop::dispatch_io(int n)
{
    int count = 0;
    for (int i = 0; i < n; ++i) {
        uint64_t data = events_[i].data.u64;
        int fd = static_cast<int>(static_cast<uint32_t>(data));
        uint32_t gen = static_cast<uint32_t>(data >> 32);
        // Re-checked for every event: an earlier callback of this pass may
        // have unwatched, replaced or narrowed this fd (redis re-checks too).
        if (static_cast<size_t>(fd) >= table_.size())
            continue;
        Entry& e = table_[fd];
        if (!e.used || e.gen != gen || !e.in_epoll || !e.cb)
            continue;
        uint32_t ev = to_events(events_[i].events, e.mask);
        if (ev == 0)
            continue;
        // Run a moved-out callback: it may unwatch or replace itself, and
        // watch() of a higher fd may reallocate the table. Two moves, no
        // allocation.
        IoCallback cb = std::move(e.cb);
        cb(ev);
        ++count;
        Entry& now = table_[fd];
        if (now.used && now.gen == gen)
            now.cb = std::move(cb);
    }
    return count;
}

int EventLoop::run_deferred()
{
    // Calls deferred by these callbacks go to deferred_ and run next pass.
    running_.swap(deferred_);
    int count = 0;
    for (size_t i = 0; i < running_.size(); ++i, ++count)
        running_[i]();
    running_.clear();
    return count;
}

bool EventLoop::watch_signal(int signo, SignalCallback cb)
{
    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP || !cb) {
        errno = EINVAL;
        return false;
    }
    if (!sigismember(&sig_watched_, signo)) {
        sigset_t one, old, next = sig_watched_;
        sigemptyset(&one);
        sigaddset(&one, signo);
        sigaddset(&next, signo);
        // Block first, so the signal stays pending for the signalfd
        // instead of taking its default action.
        if (::sigprocmask(SIG_BLOCK, &one, &old) < 0)
            return false;
        bool blocked_here = !sigismember(&old, signo);
        int sfd = ::signalfd(signal_fd_.get(), &next, SFD_CLOEXEC | SFD_NONBLOCK);
        bool ok = sfd >= 0;
        if (ok && !signal_fd_.valid()) {
            signal_fd_.reset(sfd);
            ok = watch(sfd, kReadable, [this](uint32_t) { read_signals(); });
            if (!ok) {
                int err = errno;
                signal_fd_.reset();
                errno = err;
            }
        }
        if (!ok) {
            int err = errno;
            if (blocked_here)
                ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
            errno = err;
            return false;
        }
        sig_watched_ = next;
        if (blocked_here)
            sigaddset(&sig_blocked_, signo);
    }
    SignalCallback old = std::move(sig_cbs_[signo]);
    sig_cbs_[signo] = std::move(cb);
    return true;
}

void EventLoop::unwatch_signal(int signo)
{
    if (signo <= 0 || signo >= NSIG || !sigismember(&sig_watched_, signo))
        return;
    release_signal(signo);
    SignalCallback old = std::move(sig_cbs_[signo]);  // empty if running now
}

// Stops reading signo from the signalfd and undoes our sigprocmask().
void EventLoop::release_signal(int signo)
{
    if (!sigismember(&sig_watched_, signo))
        return;
    sigdelset(&sig_watched_, signo);
    if (signal_fd_.valid() && ::signalfd(signal_fd_.get(), &sig_watched_, 0) < 0)
        log_errno(Level::warn, errno, "signalfd() failed while unwatching signal %d", signo);
    if (!sigismember(&sig_blocked_, signo))
        return;  // someone else blocked it: leave it blocked
    sigdelset(&sig_blocked_, signo);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    // Consume what is still pending, or unblocking would deliver it with
    // its default action (SIGUSR1 would kill us).
    struct timespec zero = {0, 0};
    for (;;) {
        int r = ::sigtimedwait(&one, nullptr, &zero);
        if (r != signo && !(r < 0 && errno == EINTR))
            break;
    }
    ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
}

void EventLoop::read_signals()
{
    struct signalfd_siginfo buf[8];
    for (;;) {
        ssize_t n = read_some(signal_fd_.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno != EAGAIN)
                log_errno(Level::warn, errno, "read() from signalfd failed");
            return;
        }
        size_t got = static_cast<size_t>(n) / sizeof buf[0];
        for (size_t i = 0; i < got; ++i)
            dispatch_signal(buf[i]);
        if (got < sizeof buf / sizeof buf[0])
            return;
    }
}

void EventLoop::dispatch_signal(const struct signalfd_siginfo& info)
{
    int signo = static_cast<int>(info.ssi_signo);
    if (signo <= 0 || signo >= NSIG || !sigismember(&sig_watched_, signo) || !sig_cbs_[signo])
        return;
    SignalCallback cb = std::move(sig_cbs_[signo]);  // it may unwatch itself
    cb(info);
    if (sigismember(&sig_watched_, signo) && !sig_cbs_[signo])
        sig_cbs_[signo] = std::move(cb);
}

// The child of a fork made inside a callback: the epoll fd shares its
// interest list with the parent's, so it is closed without epoll_ctl().
// The signal mask is the child's business; forget what we blocked so a
// later destructor does not touch it either.
void EventLoop::close_after_fork()
{
    poller_.reset();
    signal_fd_.reset();
    sigemptyset(&sig_watched_);
    sigemptyset(&sig_blocked_);
}

}  // namespace zan
