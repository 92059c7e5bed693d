#include "t/test_env.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

namespace zt {

long long now_ms()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

double time_scale()
{
    static const double scale = [] {
        const char* e = getenv("ZAN_TEST_TIME_SCALE");
        double v = e ? strtod(e, nullptr) : 1.0;
        return v >= 1.0 ? v : 1.0;
    }();
    return scale;
}

int scaled(int ms) { return static_cast<int>(ms * time_scale()); }

long long scaled_us(long long us) { return static_cast<long long>(static_cast<double>(us) * time_scale()); }

std::string build_dir()
{
    const char* e = getenv("ZAN_BUILD_DIR");
    return e ? e : ZAN_BUILD_DIR;
}

std::string tool(const std::string& name) { return build_dir() + "/tools/" + name; }

bool wait_fd(int fd, short ev, int timeout_ms)
{
    struct pollfd p = {fd, ev, 0};
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left < 0)
            left = 0;
        int r = ::poll(&p, 1, left);
        if (r > 0)
            return true;
        if (r == 0)
            return false;
        if (errno != EINTR)
            return false;
    }
}

}  // namespace zt
