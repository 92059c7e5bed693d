#include "zan/timer_queue.h"

#include <errno.h>

#include <algorithm>
#include <utility>

namespace zan {

// Rebuild the heap when stale nodes outnumber live timers (and it is big
// enough for that to matter), so a stream of add+cancel cannot grow it.
static constexpr size_t kCompactMin = 64;

TimerQueue::TimerId TimerQueue::add(long long when_ms, long long interval_ms,
                                    std::function<void()> cb)
{
    if (!cb) {
        errno = EINVAL;
        return 0;
    }
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        slot = static_cast<uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    Slot& s = slots_[slot];
    s.cb = std::move(cb);
    s.interval = interval_ms > 0 ? interval_ms : 0;
    s.used = true;
    ++live_;
    push(when_ms, slot, s.gen);
    return (static_cast<uint64_t>(s.gen) << 32) | slot;
}

bool TimerQueue::cancel(TimerId id)
{
    uint32_t slot = static_cast<uint32_t>(id);
    uint32_t gen = static_cast<uint32_t>(id >> 32);
    if (slot >= slots_.size() || !slots_[slot].used || slots_[slot].gen != gen)
        return false;
    // Empty when the timer is running: run_expired() holds its callback.
    // Destroyed on return, after our state is consistent, so a destructor
    // that adds or cancels timers is safe.
    std::function<void()> old = std::move(slots_[slot].cb);
    release(slot);
    prune();
    if (heap_.size() > kCompactMin && heap_.size() > 2 * live_) {
        heap_.erase(std::remove_if(heap_.begin(), heap_.end(),
                                   [this](const Node& n) { return stale(n); }),
                    heap_.end());
        std::make_heap(heap_.begin(), heap_.end(), Later());
    }
    return true;
}

void TimerQueue::run_expired(long long now_ms)
{
    fired_ = 0;
    const uint64_t limit = seq_;
    while (!heap_.empty() && heap_.front().when <= now_ms) {
        Node n = heap_.front();
        pop();
        if (stale(n))
            continue;
        if (n.seq >= limit) {  // added by a callback of this run
            later_.push_back(n);
            continue;
        }
        // Call a local copy of the callback: it may cancel itself, and a
        // callback that adds timers may reallocate slots_ under our feet.
        std::function<void()> cb = std::move(slots_[n.slot].cb);
        long long interval = slots_[n.slot].interval;
        if (interval == 0)
            release(n.slot);  // one-shot: its id is dead once it fires
        cb();
        ++fired_;
        if (interval > 0 && slots_[n.slot].used && slots_[n.slot].gen == n.gen) {
            slots_[n.slot].cb = std::move(cb);
            long long next = n.when + interval;
            if (next <= now_ms)
                next = now_ms + interval;  // we fell behind: skip, do not burst
            push(next, n.slot, n.gen);
        }
    }
    for (const Node& n : later_) {
        if (!stale(n)) {
            heap_.push_back(n);
            std::push_heap(heap_.begin(), heap_.end(), Later());
        }
    }
    later_.clear();
    prune();
}

void TimerQueue::push(long long when, uint32_t slot, uint32_t gen)
{
    heap_.push_back(Node{when, seq_++, slot, gen});
    std::push_heap(heap_.begin(), heap_.end(), Later());
}

void TimerQueue::pop()
{
    std::pop_heap(heap_.begin(), heap_.end(), Later());
    heap_.pop_back();
}

void TimerQueue::release(uint32_t slot)
{
    Slot& s = slots_[slot];
    s.used = false;
    if (++s.gen == 0)
        s.gen = 1;
    free_.push_back(slot);
    --live_;
}

void TimerQueue::prune()
{
    while (!heap_.empty() && stale(heap_.front()))
        pop();
}

}  // namespace zan
