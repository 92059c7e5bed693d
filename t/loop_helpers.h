// Driving a zan::EventLoop from a test: run it until a condition holds,
// with a deadline, or for a quiet period in which something must not
// happen. Plus an FNV-1a hash to compare a body received in pieces with
// the one sent.
#ifndef ZAN_T_LOOP_HELPERS_H
#define ZAN_T_LOOP_HELPERS_H

#include <stdint.h>

#include <functional>
#include <string_view>

#include "zan/event_loop.h"

namespace zt {

// Runs the loop until pred() holds or ms (scaled) pass; returns pred().
bool run_until(zan::EventLoop& loop, const std::function<bool()>& pred, int ms = 5000);
// Runs the loop for ms (not scaled: a quiet period).
void run_for(zan::EventLoop& loop, int ms);

constexpr uint64_t kFnvBasis = 14695981039346656037ull;
// FNV-1a of d, continued from h.
inline uint64_t fnv(uint64_t h, std::string_view d)
{
    for (unsigned char c : d)
        h = (h ^ c) * 1099511628211ull;
    return h;
}

}  // namespace zt

#endif
