// Runtime::running(): how a successor tells whether its predecessor still
// runs. kill(pid, 0) alone cannot: once the Master has reaped a process
// its pid may be handed to another program at any moment, and a successor
// that took that program for its predecessor would wait on it for ever.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "zan/detail/process.h"
#include "zan/server_config.h"
#include "zan/detail/shm_tables.h"

namespace {

TEST(Runtime, RunningIsNotFooledByAReapedPid)
{
    zan::ProcSlot slots[2] = {};
    zan::Runtime rt;
    rt.procs = slots;

    pid_t me = ::getpid();
    EXPECT_TRUE(rt.running(0, me));
    EXPECT_FALSE(rt.running(0, 0));
    EXPECT_FALSE(rt.running(0, -1));

    // A live pid the Master lists as reaped for this id (the kernel gave
    // it to someone else) is not the predecessor; for another id it is
    // whatever kill() says.
    slots[0].reaped[2] = me;
    EXPECT_FALSE(rt.running(0, me));
    EXPECT_TRUE(rt.running(1, me));

    // A process that exited: running until reaped (a zombie), not after.
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0)
        _exit(0);
    siginfo_t si = {};
    ASSERT_EQ(0, ::waitid(P_PID, static_cast<id_t>(child), &si, WEXITED | WNOWAIT));
    EXPECT_TRUE(rt.running(1, child)) << "a zombie is still the Master's to reap";
    ASSERT_EQ(child, ::waitpid(child, nullptr, 0));
    EXPECT_FALSE(rt.running(1, child));
}

}  // namespace

// hop_yield: 1 by default, 0 (block at once) to 64; outside that the
// server refuses to start and says which setting is wrong.
TEST(ServerConfig, HopYieldRange)
{
    zan::ServerConfig cfg;
    EXPECT_EQ(cfg.hop_yield, 1);
    for (int ok : {0, 1, 64}) {
        cfg.hop_yield = ok;
        EXPECT_EQ(cfg.validate(), "") << ok;
    }
    for (int bad : {-1, 65}) {
        cfg.hop_yield = bad;
        EXPECT_EQ(cfg.validate(), "hop_yield must be 0..64") << bad;
    }
}

TEST(ServerConfig, NetWorkerSliceRange)
{
    zan::ServerConfig cfg;
    EXPECT_EQ(cfg.net_worker_slice_us, 100);
    for (int ok : {0, 100, 1000, 100000}) {
        cfg.net_worker_slice_us = ok;
        EXPECT_EQ(cfg.validate(), "") << ok;
    }
    for (int bad : {-1, 1, 99, 100001}) {
        cfg.net_worker_slice_us = bad;
        EXPECT_EQ(cfg.validate(), "net_worker_slice_us must be 0 or 100..100000") << bad;
    }
}
