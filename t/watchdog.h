// Watchdog: a GoogleTest listener that gives every test a deadline. A
// thread of its own sleeps until the running test's deadline; should the
// test still run then, it writes "WATCHDOG: <suite>.<test> exceeded N s"
// to stderr and aborts the test binary, so that a hang is a named failure
// and never a silent CI time-out (the children a test started die with
// it: PR_SET_PDEATHSIG). Installed by t/main.cc.
#ifndef ZAN_T_WATCHDOG_H
#define ZAN_T_WATCHDOG_H

#include <gtest/gtest.h>
#include <pthread.h>

#include <condition_variable>
#include <mutex>
#include <string>

namespace zt {

class Watchdog : public ::testing::EmptyTestEventListener {
public:
    // The deadline of one test: ZAN_TEST_DEADLINE_S seconds (default
    // 120), times the time scale (ZAN_TEST_TIME_SCALE, see test_env.h).
    static int deadline_from_env();

    explicit Watchdog(int deadline_s);
    ~Watchdog() override;
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void OnTestStart(const ::testing::TestInfo& info) override;
    void OnTestEnd(const ::testing::TestInfo& info) override;

private:
    static void* start(void* self);
    void run();

    const int deadline_s_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::string test_;          // the running test, "" between tests
    long long due_ms_ = 0;      // now_ms() time it must end by
    bool quit_ = false;
    // A bare pthread, not std::thread: std::thread keeps its start state
    // on the heap, and in every forked child (where the thread does not
    // exist) valgrind would report that block as definitely lost.
    pthread_t thread_;
};

}  // namespace zt

#endif
