#include "t/watchdog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chrono>

#include "t/test_env.h"

namespace zt {

int Watchdog::deadline_from_env()
{
    const char* e = getenv("ZAN_TEST_DEADLINE_S");
    int s = e ? atoi(e) : 0;
    return scaled((s > 0 ? s : 120) * 1000) / 1000;
}

Watchdog::Watchdog(int deadline_s) : deadline_s_(deadline_s)
{
    int err = pthread_create(&thread_, nullptr, &Watchdog::start, this);
    if (err != 0) {
        fprintf(stderr, "watchdog: pthread_create() failed: %s\n", strerror(err));
        ::abort();
    }
}

void* Watchdog::start(void* self)
{
    static_cast<Watchdog*>(self)->run();
    return nullptr;
}

Watchdog::~Watchdog()
{
    {
        std::lock_guard<std::mutex> g(mu_);
        quit_ = true;
    }
    cv_.notify_all();
    pthread_join(thread_, nullptr);
}

void Watchdog::OnTestStart(const ::testing::TestInfo& info)
{
    {
        std::lock_guard<std::mutex> g(mu_);
        test_ = std::string(info.test_suite_name()) + "." + info.name();
        due_ms_ = now_ms() + deadline_s_ * 1000LL;
    }
    cv_.notify_all();
}

void Watchdog::OnTestEnd(const ::testing::TestInfo&)
{
    {
        std::lock_guard<std::mutex> g(mu_);
        test_.clear();
    }
    cv_.notify_all();
}

void Watchdog::run()
{
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        if (quit_)
            return;
        if (test_.empty()) {
            cv_.wait(g);
            continue;
        }
        long long left = due_ms_ - now_ms();
        if (left > 0) {
            cv_.wait_for(g, std::chrono::milliseconds(left));
            continue;  // woken by a start or an end, or the time is up: look again
        }
        // One write(2), then abort: the message must get out even if the
        // test holds locks of stdio.
        std::string msg = "WATCHDOG: " + test_ + " exceeded " + std::to_string(deadline_s_) + " s\n";
        ssize_t n = ::write(2, msg.data(), msg.size());
        (void)n;
        ::abort();
    }
}

}  // namespace zt
