// ShmMutex: a robust, process-shared, error-checking mutex in shared memory.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "t/helpers.h"
#include "zan/fd.h"
#include "zan/log.h"
#include "zan/shm.h"
#include "zan/shm_mutex.h"
#include "zan/sys.h"

namespace {

using zt::Child;
using zt::read_byte;

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
    zan::Fd ready_rd, ready_wr, go_rd, go_wr;
    ASSERT_TRUE(zan::make_pipe(false, &ready_rd, &ready_wr));
    ASSERT_TRUE(zan::make_pipe(false, &go_rd, &go_wr));
    Child child;
    ASSERT_TRUE(child.start([&] {
        if (s->mu.lock() != zan::ShmMutex::kLocked)
            return 1;
        s->counter = 1;
        if (zan::write_all(ready_wr.get(), "r", 1) != 1)
            return 2;
        char b;
        if (!read_byte(go_rd.get(), 5000, &b))
            return 3;
        s->counter = 2;
        return s->mu.unlock() ? 0 : 4;
    }));
    ready_wr.reset();
    go_rd.reset();
    char b;
    ASSERT_TRUE(read_byte(ready_rd.get(), 5000, &b)) << "child exited: " << child.wait(0);
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kBusy);
    EXPECT_EQ(errno, EBUSY);
    EXPECT_EQ(s->mu.holder(), child.pid());
    // lock() waits for the child's unlock, which it does once told to.
    ASSERT_EQ(zan::write_all(go_wr.get(), "g", 1), 1);
    ASSERT_EQ(s->mu.lock_for(5000), zan::ShmMutex::kLocked);
    EXPECT_EQ(s->counter, 2);
    EXPECT_EQ(s->mu.holder(), ::getpid());
    EXPECT_TRUE(s->mu.unlock());
    EXPECT_EQ(child.wait(5000), 0);
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
    zan::Fd ready_rd, ready_wr;
    ASSERT_TRUE(zan::make_pipe(false, &ready_rd, &ready_wr));
    Child child;
    ASSERT_TRUE(child.start([&] {
        if (s->mu.lock() != zan::ShmMutex::kLocked)
            return 1;
        s->counter = 7;
        zan::write_all(ready_wr.get(), "r", 1);
        ::pause();  // hold the lock until SIGKILL
        return 2;
    }));
    ready_wr.reset();
    char b;
    ASSERT_TRUE(read_byte(ready_rd.get(), 5000, &b)) << "child exited: " << child.wait(0);
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kBusy);
    pid_t dead = child.pid();
    ASSERT_EQ(::kill(dead, SIGKILL), 0);
    ASSERT_EQ(child.wait(5000), 128 + SIGKILL);

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
    zan::Fd ready_rd, ready_wr, go_rd, go_wr;
    ASSERT_TRUE(zan::make_pipe(false, &ready_rd, &ready_wr));
    ASSERT_TRUE(zan::make_pipe(false, &go_rd, &go_wr));
    Child child;
    ASSERT_TRUE(child.start([&] {
        if (s->mu.lock() != zan::ShmMutex::kLocked)
            return 1;
        zan::write_all(ready_wr.get(), "r", 1);
        char b;
        read_byte(go_rd.get(), 5000, &b);
        return s->mu.unlock() ? 0 : 2;
    }));
    ready_wr.reset();
    go_rd.reset();
    char b;
    ASSERT_TRUE(read_byte(ready_rd.get(), 5000, &b)) << "child exited: " << child.wait(0);
    long long t0 = zan::monotonic_ms();
    errno = 0;
    EXPECT_EQ(s->mu.lock_for(50), zan::ShmMutex::kBusy);
    EXPECT_EQ(errno, ETIMEDOUT);
    EXPECT_GE(zan::monotonic_ms() - t0, 45);
    ASSERT_EQ(zan::write_all(go_wr.get(), "g", 1), 1);
    EXPECT_EQ(child.wait(5000), 0);
    EXPECT_EQ(s->mu.try_lock(), zan::ShmMutex::kLocked);
    EXPECT_TRUE(s->mu.unlock());
}
