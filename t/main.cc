// Test entry point: GoogleTest, a watchdog that gives every test a
// deadline, and one closing line "N passed, N failed" that CI log readers
// understand.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "t/watchdog.h"
#include "zan/sys.h"

int main(int argc, char** argv)
{
    ::signal(SIGPIPE, SIG_IGN);
    // The tests talk to 127.0.0.1 only: an external client (curl, wrk)
    // must never go through a proxy from the environment.
    for (const char* v : {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                          "ALL_PROXY", "NO_PROXY"})
        ::unsetenv(v);
    // Servers the tests start inherit this process's time slice: make it
    // the kernel's default, never a slice a test sets and looks for.
    (void)zan::set_sched_slice(0);
    ::testing::InitGoogleTest(&argc, argv);
    // gtest owns the listener from here on.
    ::testing::UnitTest::GetInstance()->listeners().Append(new zt::Watchdog(zt::Watchdog::deadline_from_env()));
    int rc = RUN_ALL_TESTS();
    const ::testing::UnitTest* u = ::testing::UnitTest::GetInstance();
    printf("tests: %d passed, %d failed, %d skipped\n", u->successful_test_count(),
           u->failed_test_count(), u->skipped_test_count());
    return rc;
}
