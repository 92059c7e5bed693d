#include "zan/event_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "t/proc_helpers.h"
#include "t/test_env.h"
#include "zan/fd.h"
#include "zan/sys.h"

using zan::EventLoop;
using zan::kError;
using zan::kReadable;
using zan::kWritable;

namespace {

struct Pair {  // a non-blocking stream socketpair: watch `a`, poke `b`
    zan::Fd a, b;
    Pair() { EXPECT_TRUE(zan::make_socketpair(SOCK_STREAM, true, &a, &b)); }
};

void put(int fd)
{
    char c = 'x';
    ASSERT_EQ(zan::write_some(fd, &c, 1), 1);
}

void drain(int fd)
{
    char buf[256];
    while (zan::read_some(fd, buf, sizeof buf) > 0) {
    }
}

// A callback that counts its calls in *calls and drains fd.
EventLoop::IoCallback counting(int fd, int* calls)
{
    return [fd, calls](uint32_t) {
        ++*calls;
        drain(fd);
    };
}

// Two readable pairs whose events come in one batch. Only the callback
// that runs first acts: it drains its fd and calls on_first(other), the
// index of the pair whose event is still pending in the batch.
struct TwoInOneBatch {
    EventLoop loop;
    Pair p[2];
    int calls[2] = {0, 0};
    int first = -1;  // the pair whose callback ran first
    Pair fresh;      // see take_over()
    int fresh_calls = 0;

    bool arm(const std::function<void(int other)>& on_first)
    {
        for (int i = 0; i < 2; ++i) {
            bool ok = loop.watch(p[i].a.get(), kReadable, [this, i, on_first](uint32_t) {
                ++calls[i];
                if (first >= 0)
                    return;
                first = i;
                drain(p[i].a.get());
                on_first(1 - i);
            });
            if (!ok)
                return false;
            put(p[i].b.get());
        }
        return true;
    }
    // Moves fresh.a onto descriptor number `num` (closing what was there)
    // and watches it, counting into fresh_calls.
    bool take_over(int num)
    {
        if (::dup3(fresh.a.get(), num, O_CLOEXEC) != num)
            return false;
        fresh.a.reset(num);
        return loop.watch(num, kReadable, counting(num, &fresh_calls));
    }
};

bool blocked(int signo)
{
    sigset_t cur;
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    return sigismember(&cur, signo);
}

}  // namespace

TEST(EventLoop, ReadableWhenPeerWrites)
{
    EventLoop loop;
    Pair p;
    uint32_t got = 0;
    int calls = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t ev) {
        got = ev;
        ++calls;
        drain(p.a.get());
    }));
    EXPECT_TRUE(loop.watching(p.a.get()));
    EXPECT_EQ(loop.interest(p.a.get()), kReadable);
    EXPECT_EQ(loop.run_once(0), 0);
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(got, kReadable);
    EXPECT_EQ(loop.run_once(0), 0);  // drained: level-triggered goes quiet
    EXPECT_EQ(calls, 1);
}

TEST(EventLoop, WritableInterestFollowsUpdate)
{
    EventLoop loop;
    Pair p;
    std::vector<uint32_t> got;
    ASSERT_TRUE(loop.watch(p.a.get(), kWritable, [&](uint32_t ev) { got.push_back(ev); }));
    EXPECT_EQ(loop.run_once(0), 1);
    ASSERT_TRUE(loop.update(p.a.get(), kReadable));
    EXPECT_EQ(loop.interest(p.a.get()), kReadable);
    EXPECT_EQ(loop.run_once(0), 0);
    put(p.b.get());
    ASSERT_TRUE(loop.update(p.a.get(), kReadable | kWritable));
    EXPECT_EQ(loop.run_once(0), 1);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], kWritable);
    EXPECT_EQ(got[1], kReadable | kWritable);
}

TEST(EventLoop, UpdateWithUnchangedMaskMakesNoSyscall)
{
    EventLoop loop;
    Pair p;
    int fd = p.a.get();
    ASSERT_TRUE(loop.watch(fd, kReadable, [](uint32_t) {}));
    // Close fd behind the loop's back: from now on any epoll_ctl() on it
    // fails with EBADF, so a successful update() proves none was made.
    p.a.reset();
    EXPECT_TRUE(loop.update(fd, kReadable));
    EXPECT_TRUE(loop.update(fd, kReadable | kError));  // same epoll events
    errno = 0;
    EXPECT_FALSE(loop.update(fd, kWritable));
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(loop.interest(fd), kReadable | kError);  // unchanged on failure
    loop.unwatch(fd);
    EXPECT_FALSE(loop.watching(fd));
}

TEST(EventLoop, HangupIsErrorPlusReadableAndWritableIfWanted)
{
    EventLoop loop;
    Pair p, q;
    uint32_t got_p = 0, got_q = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t ev) { got_p = ev; }));
    ASSERT_TRUE(loop.watch(q.a.get(), kError, [&](uint32_t ev) { got_q = ev; }));
    put(q.b.get());
    EXPECT_EQ(loop.run_once(0), 0);  // kError alone ignores plain data
    p.b.reset();
    q.b.reset();
    EXPECT_EQ(loop.run_once(1000), 2);
    EXPECT_EQ(got_p, kError | kReadable);
    EXPECT_EQ(got_q, kError | kReadable);
    ASSERT_TRUE(loop.update(p.a.get(), kReadable | kWritable));
    got_p = 0;
    EXPECT_EQ(loop.run_once(0), 2);
    EXPECT_EQ(got_p, kError | kReadable | kWritable);
}

TEST(EventLoop, MaskZeroKeepsFdRegisteredButSilent)
{
    EventLoop loop;
    Pair p;
    int calls = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), 0, [&](uint32_t) { ++calls; }));
    put(p.b.get());
    p.b.reset();  // even a hang-up stays silent without interest
    EXPECT_EQ(loop.run_once(0), 0);
    EXPECT_TRUE(loop.watching(p.a.get()));
    EXPECT_EQ(loop.interest(p.a.get()), 0u);
    ASSERT_TRUE(loop.update(p.a.get(), kReadable));
    EXPECT_EQ(loop.run_once(0), 1);
    ASSERT_TRUE(loop.update(p.a.get(), 0));
    EXPECT_EQ(loop.run_once(0), 0);
    EXPECT_EQ(calls, 1);
}

TEST(EventLoop, WatchRejectsBadArguments)
{
    EventLoop loop;
    Pair p;
    errno = 0;
    EXPECT_FALSE(loop.watch(-1, kReadable, [](uint32_t) {}));
    EXPECT_EQ(errno, EBADF);
    errno = 0;
    EXPECT_FALSE(loop.watch(p.a.get(), kReadable, nullptr));
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_FALSE(loop.update(p.a.get(), kReadable));
    EXPECT_EQ(errno, ENOENT);
    EXPECT_FALSE(loop.watching(p.a.get()));
    EXPECT_EQ(loop.interest(-5), 0u);
    loop.unwatch(-5);         // harmless
    loop.unwatch(p.a.get());  // not watched: harmless

    FILE* f = tmpfile();  // regular files cannot be polled
    ASSERT_NE(f, nullptr);
    errno = 0;
    EXPECT_FALSE(loop.watch(fileno(f), kReadable, [](uint32_t) {}));
    EXPECT_EQ(errno, EPERM);
    EXPECT_FALSE(loop.watching(fileno(f)));
    fclose(f);
}

TEST(EventLoop, UnwatchSelfDuringDispatch)
{
    EventLoop loop;
    Pair p;
    auto token = std::make_shared<int>(7);
    std::string seen;
    int calls = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable,
                           [&, token, name = std::string(200, 'n')](uint32_t) {
                               ++calls;
                               loop.unwatch(p.a.get());
                               seen = name;  // our captures are still alive
                               EXPECT_EQ(*token, 7);
                           }));
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(seen, std::string(200, 'n'));
    EXPECT_FALSE(loop.watching(p.a.get()));
    EXPECT_EQ(token.use_count(), 1);  // callback freed after the pass
    EXPECT_EQ(loop.run_once(0), 0);   // still readable, no longer watched
    EXPECT_EQ(calls, 1);
}

TEST(EventLoop, UnwatchOtherFdWithPendingEventInSameBatch)
{
    EventLoop loop;
    Pair p[2];
    int calls[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(loop.watch(p[i].a.get(), kReadable, [&, i](uint32_t) {
            ++calls[i];
            loop.unwatch(p[1 - i].a.get());
        }));
        put(p[i].b.get());
    }
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(calls[0] + calls[1], 1);
}

TEST(EventLoop, CloseAndReuseFdWithPendingEventInSameBatch)
{
    TwoInOneBatch t;
    ASSERT_TRUE(t.arm([&](int other) {
        // Another fd's callback closes an fd whose event is pending in
        // this batch; a new descriptor gets the same number at once.
        int reused = t.p[other].a.get();
        t.loop.unwatch(reused);
        t.p[other].a.reset();
        ASSERT_TRUE(t.take_over(reused));
    }));
    EXPECT_EQ(t.loop.run_once(1000), 1);
    ASSERT_GE(t.first, 0);
    EXPECT_EQ(t.calls[t.first], 1);
    EXPECT_EQ(t.calls[1 - t.first], 0);
    EXPECT_EQ(t.fresh_calls, 0);  // the stale event was not delivered to it
    EXPECT_EQ(t.loop.run_once(0), 0);
    put(t.fresh.b.get());
    EXPECT_EQ(t.loop.run_once(1000), 1);
    EXPECT_EQ(t.fresh_calls, 1);
    EXPECT_EQ(t.calls[1 - t.first], 0);
}

TEST(EventLoop, FdClosedWithoutUnwatchThenReusedAndWatched)
{
    TwoInOneBatch t;
    ASSERT_TRUE(t.arm([&](int other) {
        // dup3() closes the old fd (epoll forgets it) and reuses its
        // number; watch() then replaces the stale registration.
        ASSERT_TRUE(t.take_over(t.p[other].a.release()));
    }));
    EXPECT_EQ(t.loop.run_once(1000), 1);
    ASSERT_GE(t.first, 0);
    EXPECT_EQ(t.calls[1 - t.first], 0);
    EXPECT_EQ(t.fresh_calls, 0);
    put(t.fresh.b.get());
    EXPECT_EQ(t.loop.run_once(1000), 1);
    EXPECT_EQ(t.fresh_calls, 1);
}

TEST(EventLoop, ReplaceOwnCallbackDuringDispatch)
{
    EventLoop loop;
    Pair p;
    int fd = p.a.get();
    int seen_small = 0;
    std::string seen_big;
    std::vector<std::string> log;
    // A small trivially-copyable capture (stored inside std::function) and a
    // big one (heap-stored): both must survive the callback replacing itself.
    ASSERT_TRUE(loop.watch(fd, kReadable,
                           [&, tag = 111, big = std::string(100, 'b')](uint32_t) {
                               drain(fd);
                               ASSERT_TRUE(loop.watch(fd, kReadable, [&, tag2 = 222](uint32_t) {
                                   drain(fd);
                                   log.push_back("second " + std::to_string(tag2));
                               }));
                               seen_small = tag;
                               seen_big = big;
                               log.push_back("first");
                           }));
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(seen_small, 111);
    EXPECT_EQ(seen_big, std::string(100, 'b'));
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1], "second 222");
}

TEST(EventLoop, TableGrowsDuringDispatch)
{
    EventLoop loop;
    Pair p;
    int high = ::fcntl(p.b.get(), F_DUPFD_CLOEXEC, 900);
    ASSERT_GE(high, 900);
    zan::Fd high_fd(high);
    int seen = 0;
    int high_calls = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&, tag = 4242](uint32_t) {
        drain(p.a.get());
        ASSERT_TRUE(loop.watch(high, kWritable, [&](uint32_t) { ++high_calls; }));
        seen = tag;  // the table was reallocated under the running callback
    }));
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(seen, 4242);
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(high_calls, 1);
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 2);
}

TEST(EventLoop, CallbackRemovedDuringPassIsFreedAfterIt)
{
    EventLoop loop;
    Pair p, q;
    auto token = std::make_shared<int>(1);
    long during = 0;
    ASSERT_TRUE(loop.watch(q.a.get(), kReadable, [token](uint32_t) {}));
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t) {
        drain(p.a.get());
        loop.unwatch(q.a.get());
        during = token.use_count();
    }));
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(during, 2);
    EXPECT_EQ(token.use_count(), 1);
}

TEST(EventLoop, CallbackReplacedDuringPassIsFreedAfterIt)
{
    EventLoop loop;
    Pair p, q;
    auto token = std::make_shared<int>(1);
    long during = 0;
    int old_calls = 0, new_calls = 0;
    ASSERT_TRUE(loop.watch(q.a.get(), kReadable, [token, &old_calls](uint32_t) { ++old_calls; }));
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t) {
        drain(p.a.get());
        ASSERT_TRUE(loop.watch(q.a.get(), kReadable, counting(q.a.get(), &new_calls)));
        during = token.use_count();
    }));
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(during, 2);
    EXPECT_EQ(token.use_count(), 1);
    put(q.b.get());
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(old_calls, 0);
    EXPECT_EQ(new_calls, 1);
}

TEST(EventLoop, UnwatchOutsideTheLoopFreesAtOnce)
{
    EventLoop loop;
    Pair p;
    auto token = std::make_shared<int>(1);
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [token](uint32_t) {}));
    EXPECT_EQ(token.use_count(), 2);
    loop.unwatch(p.a.get());
    EXPECT_EQ(token.use_count(), 1);
}

TEST(EventLoop, MoreReadyFdsThanOneBatch)
{
    const int kPairs = 300;  // more than kMaxEvents
    if (!zt::raise_fd_limit(2 * kPairs + 64))
        GTEST_SKIP() << "RLIMIT_NOFILE too low";
    EventLoop loop;
    std::vector<Pair> pairs(kPairs);
    int calls = 0;
    for (auto& p : pairs) {
        ASSERT_TRUE(loop.watch(p.a.get(), kReadable, counting(p.a.get(), &calls)));
        put(p.b.get());
    }
    EXPECT_EQ(loop.run_once(1000), EventLoop::kMaxEvents);
    EXPECT_EQ(loop.run_once(1000), kPairs - EventLoop::kMaxEvents);
    EXPECT_EQ(calls, kPairs);
}

TEST(EventLoop, RunAfterFiresOnce)
{
    EventLoop loop;
    int n = 0;
    long long start = zan::monotonic_ms();
    EventLoop::TimerId id = loop.run_after(3, [&] { ++n; });
    EXPECT_NE(id, 0u);
    EXPECT_EQ(loop.run_once(-1), 1);  // the timer bounds the wait
    EXPECT_EQ(n, 1);
    EXPECT_GE(loop.now_ms() - start, 3);
    EXPECT_GE(zan::monotonic_ms() - start, 3);
    EXPECT_FALSE(loop.cancel(id));
    EXPECT_EQ(loop.run_once(0), 0);
}

TEST(EventLoop, RunEveryCancelledFromOwnCallback)
{
    EventLoop loop;
    int n = 0;
    EventLoop::TimerId id = 0;
    id = loop.run_every(1, [&] {
        if (++n == 3) {
            EXPECT_TRUE(loop.cancel(id));
        }
    });
    ASSERT_NE(id, 0u);
    loop.run_after(15, [&] { loop.stop(); });
    loop.run();
    EXPECT_EQ(n, 3);
    EXPECT_FALSE(loop.cancel(id));
}

TEST(EventLoop, CancelledTimerNeverFires)
{
    EventLoop loop;
    int fired = 0;
    EventLoop::TimerId id = loop.run_after(1, [&] { ++fired; });
    EXPECT_TRUE(loop.cancel(id));
    loop.run_after(5, [&] { loop.stop(); });
    loop.run();
    EXPECT_EQ(fired, 0);
    errno = 0;
    EXPECT_EQ(loop.run_every(0, [] {}), 0u);
    EXPECT_EQ(errno, EINVAL);
}

TEST(EventLoop, TimersFireInDeadlineOrder)
{
    EventLoop loop;
    std::vector<int> order;
    loop.run_after(6, [&] { order.push_back(3); });
    loop.run_after(2, [&] { order.push_back(1); });
    loop.run_after(4, [&] { order.push_back(2); });
    loop.run_after(8, [&] { loop.stop(); });
    loop.run();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoop, DeferRunsAfterPassInOrder)
{
    EventLoop loop;
    Pair p;
    std::vector<std::string> log;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t) {
        drain(p.a.get());
        log.push_back("io");
        loop.defer([&] {
            log.push_back("d1");
            loop.defer([&] { log.push_back("d3"); });  // next iteration
        });
        loop.defer([&] { log.push_back("d2"); });
        log.push_back("io-end");
    }));
    put(p.b.get());
    EXPECT_EQ(loop.run_once(1000), 3);
    EXPECT_EQ(log, (std::vector<std::string>{"io", "io-end", "d1", "d2"}));
    // Pending deferred work makes the next wait non-blocking.
    long long start = zan::monotonic_ms();
    EXPECT_EQ(loop.run_once(2000), 1);
    EXPECT_LT(zan::monotonic_ms() - start, zt::scaled(500));
    EXPECT_EQ(log.back(), "d3");
}

TEST(EventLoop, DeferBeforeRunRunsInFirstIteration)
{
    EventLoop loop;
    int n = 0;
    loop.defer([&] { ++n; });
    long long start = zan::monotonic_ms();
    EXPECT_EQ(loop.run_once(-1), 1);
    EXPECT_LT(zan::monotonic_ms() - start, zt::scaled(500));
    EXPECT_EQ(n, 1);
}

TEST(EventLoop, BeforePollHookRunsEachIteration)
{
    EventLoop loop;
    int hook = 0, added = 0;
    loop.add_before_poll([&] {
        if (++hook == 2)
            loop.add_before_poll([&] { ++added; });  // a hook adding a hook
    });
    for (int i = 0; i < 4; ++i)
        loop.run_once(0);
    EXPECT_EQ(hook, 4);
    EXPECT_EQ(added, 3);  // added during iteration 2, ran in it and after
}

TEST(EventLoop, BeforePollHookSeesOutputOfCallbacks)
{
    // The hook flushes what callbacks queued, before the loop sleeps.
    EventLoop loop;
    Pair p;
    std::string pending, flushed;
    loop.add_before_poll([&] {
        flushed += pending;
        pending.clear();
    });
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t) {
        drain(p.a.get());
        pending += "reply;";
    }));
    put(p.b.get());
    loop.run_once(1000);
    EXPECT_EQ(flushed, "");
    loop.run_once(0);
    EXPECT_EQ(flushed, "reply;");
}

TEST(EventLoop, HookThatDefersDoesNotBlock)
{
    EventLoop loop;
    int n = 0;
    bool once = false;
    loop.add_before_poll([&] {
        if (!once) {
            once = true;
            loop.defer([&] { ++n; });
        }
    });
    long long start = zan::monotonic_ms();
    EXPECT_EQ(loop.run_once(2000), 1);
    EXPECT_LT(zan::monotonic_ms() - start, zt::scaled(500));
    EXPECT_EQ(n, 1);
}

TEST(EventLoop, SignalDeliveredThroughSignalfd)
{
    ASSERT_FALSE(blocked(SIGUSR1));
    EventLoop loop;
    int got = 0, calls = 0;
    ASSERT_TRUE(loop.watch_signal(SIGUSR1, [&](const struct signalfd_siginfo& si) {
        got = static_cast<int>(si.ssi_signo);
        ++calls;
    }));
    EXPECT_TRUE(blocked(SIGUSR1));
    ASSERT_EQ(raise(SIGUSR1), 0);
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(got, SIGUSR1);
    ASSERT_EQ(raise(SIGUSR1), 0);
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(calls, 2);
    loop.unwatch_signal(SIGUSR1);
    EXPECT_FALSE(blocked(SIGUSR1));
}

TEST(EventLoop, TwoSignalsShareOneSignalfd)
{
    EventLoop loop;
    std::vector<int> got;
    auto cb = [&](const struct signalfd_siginfo& si) {
        got.push_back(static_cast<int>(si.ssi_signo));
    };
    ASSERT_TRUE(loop.watch_signal(SIGUSR1, cb));
    ASSERT_TRUE(loop.watch_signal(SIGUSR2, cb));
    raise(SIGUSR2);
    raise(SIGUSR1);
    EXPECT_EQ(loop.run_once(1000), 1);  // one fd, one I/O callback
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0] + got[1], SIGUSR1 + SIGUSR2);
    loop.unwatch_signal(SIGUSR2);
    EXPECT_FALSE(blocked(SIGUSR2));
    EXPECT_TRUE(blocked(SIGUSR1));
}

TEST(EventLoop, SignalMaskRestoredOnDestruction)
{
    ASSERT_FALSE(blocked(SIGUSR2));
    {
        EventLoop loop;
        ASSERT_TRUE(loop.watch_signal(SIGUSR2, [](const struct signalfd_siginfo&) {}));
        EXPECT_TRUE(blocked(SIGUSR2));
        raise(SIGUSR2);  // never read: discarded, not delivered, on destruction
    }
    EXPECT_FALSE(blocked(SIGUSR2));
}

TEST(EventLoop, UnwatchSignalDiscardsPendingInstance)
{
    EventLoop loop;
    ASSERT_TRUE(loop.watch_signal(SIGUSR1, [](const struct signalfd_siginfo&) {}));
    raise(SIGUSR1);
    loop.unwatch_signal(SIGUSR1);  // default action would kill the test
    EXPECT_FALSE(blocked(SIGUSR1));
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

TEST(EventLoop, UnwatchSignalFromOwnCallbackAndRewatch)
{
    EventLoop loop;
    int first = 0, second = 0;
    ASSERT_TRUE(loop.watch_signal(SIGUSR1, [&, big = std::string(64, 's')](
                                               const struct signalfd_siginfo&) {
        ++first;
        loop.unwatch_signal(SIGUSR1);
        EXPECT_EQ(big.size(), 64u);
    }));
    raise(SIGUSR1);
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(first, 1);
    EXPECT_FALSE(blocked(SIGUSR1));
    ASSERT_TRUE(loop.watch_signal(SIGUSR1, [&](const struct signalfd_siginfo&) { ++second; }));
    raise(SIGUSR1);
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 1);
}

TEST(EventLoop, SignalBlockedBeforehandStaysBlocked)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    ASSERT_EQ(sigprocmask(SIG_BLOCK, &one, nullptr), 0);
    {
        EventLoop loop;
        ASSERT_TRUE(loop.watch_signal(SIGUSR2, [](const struct signalfd_siginfo&) {}));
        loop.unwatch_signal(SIGUSR2);
        EXPECT_TRUE(blocked(SIGUSR2));
        ASSERT_TRUE(loop.watch_signal(SIGUSR2, [](const struct signalfd_siginfo&) {}));
    }
    EXPECT_TRUE(blocked(SIGUSR2));
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
}

TEST(EventLoop, WatchSignalRejectsBadSignals)
{
    EventLoop loop;
    auto cb = [](const struct signalfd_siginfo&) {};
    errno = 0;
    EXPECT_FALSE(loop.watch_signal(0, cb));
    EXPECT_EQ(errno, EINVAL);
    EXPECT_FALSE(loop.watch_signal(SIGKILL, cb));
    EXPECT_FALSE(loop.watch_signal(NSIG, cb));
    EXPECT_FALSE(loop.watch_signal(SIGUSR1, nullptr));
    EXPECT_FALSE(blocked(SIGUSR1));
    loop.unwatch_signal(SIGUSR1);  // not watched: harmless
    loop.unwatch_signal(-3);
}

TEST(EventLoop, StopFromIoCallbackEndsRun)
{
    EventLoop loop;
    Pair p;
    int calls = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t) {
        ++calls;
        loop.stop();
    }));
    put(p.b.get());  // never drained: only stop() ends run()
    loop.run();
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(loop.stopped());
}

TEST(EventLoop, StopFromTimerAndRunAgain)
{
    EventLoop loop;
    int rounds = 0;
    for (int i = 0; i < 2; ++i) {
        loop.run_after(1, [&] {
            ++rounds;
            loop.stop();
        });
        loop.run();  // run() clears the flag, so a second run works
        EXPECT_TRUE(loop.stopped());
    }
    EXPECT_EQ(rounds, 2);
}

TEST(EventLoop, RunOnceIsNotReentrant)
{
    EventLoop loop;
    int inner = 0;
    int err = 0;
    loop.defer([&] {
        inner = loop.run_once(0);
        err = errno;
    });
    EXPECT_EQ(loop.run_once(0), 1);
    EXPECT_EQ(inner, -1);
    EXPECT_EQ(err, EDEADLK);
}

TEST(EventLoop, NowMsRefreshedAfterWakeUp)
{
    EventLoop loop;
    long long before = loop.now_ms();
    EXPECT_LE(before, zan::monotonic_ms());
    loop.run_after(3, [] {});
    loop.run_once(-1);
    EXPECT_GE(loop.now_ms(), before + 3);
}

TEST(EventLoop, TimerCountTracksLiveTimers)
{
    EventLoop loop;
    EXPECT_EQ(loop.timer_count(), 0u);
    EventLoop::TimerId a = loop.run_after(1000, [] {});
    loop.run_every(1000, [] {});
    EXPECT_EQ(loop.timer_count(), 2u);
    loop.cancel(a);
    EXPECT_EQ(loop.timer_count(), 1u);
}

TEST(EventLoop, CloseAfterForkLeavesParentRegistrationsAlone)
{
    EventLoop loop;
    Pair p;
    int calls = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, counting(p.a.get(), &calls)));
    ASSERT_TRUE(loop.watch_signal(SIGUSR2, [](const struct signalfd_siginfo&) {}));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        EventLoop* inherited = &loop;
        inherited->close_after_fork();
        bool ok = blocked(SIGUSR2);  // the mask is the child's business
        inherited->~EventLoop();  // safe, and still leaves the mask alone
        ok = ok && blocked(SIGUSR2);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    put(p.b.get());  // the child did not remove fd from the shared epoll set
    EXPECT_EQ(loop.run_once(1000), 1);
    EXPECT_EQ(calls, 1);
    loop.unwatch_signal(SIGUSR2);
    EXPECT_FALSE(blocked(SIGUSR2));
}

// What zan_event_loop(3) promises a callback: it may close its own fd,
// close another fd whose event is pending in the same batch, add fds and
// stop the loop.
TEST(EventLoop, EachCallbackClosesItsOwnFdInOneBatch)
{
    EventLoop loop;
    Pair p[3];
    int calls[3] = {0, 0, 0};
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(loop.watch(p[i].a.get(), kReadable, [&, i, tag = std::string(64, 't')](uint32_t) {
            ++calls[i];
            loop.unwatch(p[i].a.get());
            p[i].a.reset();
            EXPECT_EQ(tag, std::string(64, 't'));  // captures outlive the close
        }));
        put(p[i].b.get());
    }
    EXPECT_EQ(loop.watch_count(), 3u);
    EXPECT_EQ(loop.run_once(1000), 3);
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(calls[i], 1);
    EXPECT_EQ(loop.watch_count(), 0u);
    EXPECT_EQ(loop.run_once(0), 0);
}

TEST(EventLoop, CallbackClosesOwnAndOtherFdInSameBatch)
{
    TwoInOneBatch t;
    int self_num = -1;
    ASSERT_TRUE(t.arm([&](int other) {
        int self = 1 - other;
        self_num = t.p[self].a.get();
        t.loop.unwatch(self_num);
        t.p[self].a.reset();
        t.loop.unwatch(t.p[other].a.get());
        t.p[other].a.reset();
        // A new descriptor takes our own number at once.
        ASSERT_TRUE(t.take_over(self_num));
    }));
    EXPECT_EQ(t.loop.run_once(1000), 1);
    ASSERT_GE(t.first, 0);
    EXPECT_EQ(t.calls[t.first], 1);
    EXPECT_EQ(t.calls[1 - t.first], 0);  // its pending event was dropped
    EXPECT_EQ(t.fresh_calls, 0);
    EXPECT_EQ(t.loop.watch_count(), 1u);
    put(t.fresh.b.get());
    EXPECT_EQ(t.loop.run_once(1000), 1);
    EXPECT_EQ(t.fresh_calls, 1);
    EXPECT_EQ(t.calls[0] + t.calls[1], 1);
}

TEST(EventLoop, CallbackAddsFdWhoseCallbackStopsTheLoop)
{
    EventLoop loop;
    Pair p, q;
    int added_calls = 0;
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [&](uint32_t) {
        drain(p.a.get());
        ASSERT_TRUE(loop.watch(q.a.get(), kWritable, [&](uint32_t) {
            ++added_calls;
            loop.unwatch(q.a.get());
            loop.stop();
        }));
    }));
    put(p.b.get());
    loop.run();  // returns only through the added callback's stop()
    EXPECT_EQ(added_calls, 1);
    EXPECT_TRUE(loop.stopped());
    EXPECT_EQ(loop.watch_count(), 1u);
}

TEST(EventLoop, WatchCountCountsTableEntries)
{
    EventLoop loop;
    Pair p, q;
    EXPECT_EQ(loop.watch_count(), 0u);
    ASSERT_TRUE(loop.watch(p.a.get(), kReadable, [](uint32_t) {}));
    ASSERT_TRUE(loop.watch(p.a.get(), kWritable, [](uint32_t) {}));  // a replacement
    ASSERT_TRUE(loop.watch(q.a.get(), 0, [](uint32_t) {}));          // mask 0 counts
    EXPECT_EQ(loop.watch_count(), 2u);
    loop.unwatch(p.a.get());
    loop.unwatch(p.a.get());  // twice: counted once
    EXPECT_EQ(loop.watch_count(), 1u);
}
