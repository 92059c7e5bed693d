// ShmMutex: a robust, process-shared, error-checking mutex in shared memory.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "t/fork_helpers.h"
#include "t/tmp_helpers.h"
#include "zan/log.h"
#include "zan/detail/shm.h"
#include "zan/detail/shm_mutex.h"
#include "zan/sys.h"

namespace {

using zt::Child;

// One mutex and a counter in a fresh shared region.
struct Shared {
    zan::ShmMutex mu;
    long counter;
};

class SharedRegion {
public:
    bool init()
    {
        if (!region_.create(4096))
            return false;
        s_ = region_.alloc<Shared>();
        return s_ != nullptr && s_->mu.init();
    }
    ~SharedRegion()
    {
        if (s_ != nullptr)
            s_->mu.destroy();
    }
    Shared* operator->() { return s_; }

private:
    zan::ShmRegion region_;
    Shared* s_ = nullptr;
};

// A child process that holds the lock: start() returns once it has
// locked s->mu and set s->counter to `value`; after release() it sets the
// counter to value + 1 and unlocks (exit code 0). It holds on until it is
// killed otherwise.
class Holder {
public:
    ::testing::AssertionResult start(SharedRegion& s, long value)
    {
        zt::Gate ready;
        bool started = child_.start([&] {
            if (s->mu.lock() != zan::ShmMutex::kLocked)
                return 1;
            s->counter = value;
            if (!ready.open())
                return 2;
            if (!go_.wait(5000))
                return 3;
            s->counter = value + 1;
            return s->mu.unlock() ? 0 : 4;
        });
        if (!started)
            return ::testing::AssertionFailure() << "fork failed";
        if (!ready.wait(5000))
            return ::testing::AssertionFailure() << "child exited: " << child_.wait(0);
        return ::testing::AssertionSuccess();
    }
    bool release() { return go_.open(); }
    pid_t pid() const { return child_.pid(); }
    int wait(int timeout_ms) { return child_.wait(timeout_ms); }

private:
    zt::Gate go_;
    Child child_;  // declared last: killed (if need be) before go_ closes
};

}  // namespace

TEST(ShmMutex, LockUnlockInOneProcess)
{
    SharedRegion s;
    ASSERT_TRUE(s.init()) << strerror(errno);
    EXPECT_EQ(s->mu.holder(), 0);
    EXPECT_EQ(s->mu.lock(), zan::ShmMutex::kLocked);
    EXPECT_EQ(s->mu.holder(), ::getpid());
    errno = 0;
    EXPECT_EQ(s->mu.lock(), zan::ShmMutex::kError);  // error checking: no self-deadlock
    EXPECT_EQ(errno, EDEADLK);
    errno = 0;
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kError);
    EXPECT_EQ(errno, EDEADLK);
    EXPECT_TRUE(s->mu.unlock());
    EXPECT_EQ(s->mu.holder(), 0);
    errno = 0;
    EXPECT_FALSE(s->mu.unlock());  // not held at all
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kLocked);
    EXPECT_TRUE(s->mu.unlock());
    EXPECT_EQ(s->mu.lock_for(100), zan::ShmMutex::kLocked);
    EXPECT_TRUE(s->mu.unlock());
}

TEST(ShmMutex, TryLockBusyAcrossProcesses)
{
    SharedRegion s;
    ASSERT_TRUE(s.init());
    Holder h;
    ASSERT_TRUE(h.start(s, 1));
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kBusy);
    EXPECT_EQ(errno, EBUSY);
    EXPECT_EQ(s->mu.holder(), h.pid());
    // lock() waits for the child's unlock, which it does once told to.
    ASSERT_TRUE(h.release());
    ASSERT_EQ(s->mu.lock_for(5000), zan::ShmMutex::kLocked);
    EXPECT_EQ(s->counter, 2);
    EXPECT_EQ(s->mu.holder(), ::getpid());
    EXPECT_TRUE(s->mu.unlock());
    EXPECT_EQ(h.wait(5000), 0);
}

TEST(ShmMutex, MutualExclusionAcrossProcesses)
{
    SharedRegion s;
    ASSERT_TRUE(s.init());
    constexpr int kProcs = 3;
    constexpr long kRounds = 20000;
    auto work = [&] {
        for (long i = 0; i < kRounds; i++) {
            if (s->mu.lock() != zan::ShmMutex::kLocked)
                return 1;
            long v = s->counter;  // a non-atomic read-modify-write
            s->counter = v + 1;
            if (!s->mu.unlock())
                return 2;
        }
        return 0;
    };
    Child children[kProcs];
    for (Child& c : children)
        ASSERT_TRUE(c.start(work));
    EXPECT_EQ(work(), 0);
    for (Child& c : children)
        EXPECT_EQ(c.wait(10000), 0);
    EXPECT_EQ(s->counter, (kProcs + 1) * kRounds);
}

TEST(ShmMutex, RecoversAfterHolderIsKilled)
{
    zt::CapturedLog log("zan_shm_mutex_test");
    SharedRegion s;
    ASSERT_TRUE(s.init());
    Holder h;  // never released: it holds the lock until SIGKILL
    ASSERT_TRUE(h.start(s, 7));
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kBusy);
    pid_t dead = h.pid();
    ASSERT_EQ(::kill(dead, SIGKILL), 0);
    ASSERT_EQ(h.wait(5000), 128 + SIGKILL);

    EXPECT_EQ(s->mu.holder(), dead);
    ASSERT_EQ(s->mu.lock_for(5000), zan::ShmMutex::kRecovered);
    EXPECT_EQ(s->mu.holder(), ::getpid());
    EXPECT_EQ(s->counter, 7);  // the dead holder's writes are still there
    EXPECT_TRUE(s->mu.unlock());
    // Consistent again: an ordinary lock from now on.
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kLocked);
    EXPECT_TRUE(s->mu.unlock());
    EXPECT_EQ(s->mu.lock(), zan::ShmMutex::kLocked);
    EXPECT_TRUE(s->mu.unlock());
    std::string text = log.text();
    EXPECT_NE(text.find("warn"), std::string::npos) << text;
    EXPECT_NE(text.find("holder pid " + std::to_string(dead) + " died"), std::string::npos)
        << text;
}

TEST(ShmMutex, RecoversAfterHolderExits)
{
    zt::CapturedLog log("zan_shm_mutex_test");  // keeps the expected warn line out of the test output
    SharedRegion s;
    ASSERT_TRUE(s.init());
    Child child;
    ASSERT_TRUE(child.start([&] { return s->mu.lock() == zan::ShmMutex::kLocked ? 0 : 1; }));
    ASSERT_EQ(child.wait(5000), 0);  // _exit() with the lock held
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kRecovered);
    EXPECT_TRUE(s->mu.unlock());
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kLocked);
    EXPECT_TRUE(s->mu.unlock());
}

TEST(ShmMutex, UnlockByNonHolderFails)
{
    SharedRegion s;
    ASSERT_TRUE(s.init());
    ASSERT_EQ(s->mu.lock(), zan::ShmMutex::kLocked);
    Child child;
    ASSERT_TRUE(child.start([&] {
        errno = 0;
        if (s->mu.unlock())
            return 1;
        if (errno != EPERM)
            return 2;
        return s->mu.try_lock() == zan::ShmMutex::kBusy ? 0 : 3;
    }));
    EXPECT_EQ(child.wait(5000), 0);
    EXPECT_EQ(s->mu.holder(), ::getpid());  // the failed unlock left it alone
    EXPECT_TRUE(s->mu.unlock());
}

TEST(ShmMutex, LockForTimesOut)
{
    SharedRegion s;
    ASSERT_TRUE(s.init());
    Holder h;
    ASSERT_TRUE(h.start(s, 0));
    long long t0 = zan::monotonic_ms();
    errno = 0;
    EXPECT_EQ(s->mu.lock_for(50), zan::ShmMutex::kBusy);
    EXPECT_EQ(errno, ETIMEDOUT);
    EXPECT_GE(zan::monotonic_ms() - t0, 45);
    ASSERT_TRUE(h.release());
    EXPECT_EQ(h.wait(5000), 0);
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kLocked);
    EXPECT_TRUE(s->mu.unlock());
}
