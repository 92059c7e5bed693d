#include "t/loop_helpers.h"

#include "t/test_env.h"

namespace zt {

bool run_until(zan::EventLoop& loop, const std::function<bool()>& pred, int ms)
{
    long long deadline = now_ms() + scaled(ms);
    while (!pred() && now_ms() < deadline)
        loop.run_once(10);
    return pred();
}

void run_for(zan::EventLoop& loop, int ms)
{
    long long until = now_ms() + ms;
    while (now_ms() < until)
        loop.run_once(10);
}

}  // namespace zt
