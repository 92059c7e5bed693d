// Test entry point: GoogleTest plus one closing line "N passed, N failed"
// that CI log readers understand.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>

#include "zan/sys.h"

int main(int argc, char** argv)
{
    ::signal(SIGPIPE, SIG_IGN);
    // Servers the tests start inherit this process's time slice: make it
    // the kernel's default, never a slice a test sets and looks for.
    (void)zan::set_sched_slice(0);
    ::testing::InitGoogleTest(&argc, argv);
    int rc = RUN_ALL_TESTS();
    const ::testing::UnitTest* u = ::testing::UnitTest::GetInstance();
    printf("tests: %d passed, %d failed, %d skipped\n", u->successful_test_count(),
           u->failed_test_count(), u->skipped_test_count());
    return rc;
}
