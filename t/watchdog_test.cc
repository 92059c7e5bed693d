// The watchdog of t/main.cc (t/watchdog.h): a test that hangs is aborted
// when its deadline passes, and the abort names it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "t/proc_helpers.h"
#include "t/test_env.h"

// Hangs for good. Disabled: only AbortsAHangingTestAndNamesIt runs it,
// in a test binary of its own.
TEST(Watchdog, DISABLED_Hangs)
{
    for (;;)
        ::pause();
}

// Runs this binary again on Watchdog.DISABLED_Hangs alone with a 1 s
// deadline: it must die of SIGABRT after about that long, with the
// watchdog's line naming the test on stderr. A watchdog that does not
// fire leaves the child running past our deadline: the test fails (and
// the Proc kills the child).
TEST(Watchdog, AbortsAHangingTestAndNamesIt)
{
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    ASSERT_GT(n, 0);
    self[n] = '\0';
    zt::Proc p;
    long long t0 = zt::now_ms();
    ASSERT_TRUE(p.spawn({"/bin/sh", "-c",
                         "ulimit -c 0; ZAN_TEST_DEADLINE_S=1 ZAN_TEST_TIME_SCALE=1 exec \"$0\" "
                         "--gtest_filter=Watchdog.DISABLED_Hangs --gtest_also_run_disabled_tests",
                         self}));
    int st = p.wait_exit(30000);
    long long took = zt::now_ms() - t0;
    ASSERT_NE(st, -1) << "the hanging test was not stopped:\n" << p.output();
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT) << "status " << st << "\n" << p.output();
    EXPECT_NE(p.output().find("WATCHDOG: Watchdog.DISABLED_Hangs exceeded 1 s"), std::string::npos)
        << p.output();
    EXPECT_GE(took, 1000) << "aborted before its deadline";
}
