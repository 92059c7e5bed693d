// TimerQueue: one-shot and periodic timers in a binary min-heap, ordered
// by expiry time and then by creation order.
//
// Cancellation is lazy: cancel() frees the timer's slot at once and leaves
// its heap node behind; stale nodes are skipped when they reach the top and
// the heap is rebuilt when they outnumber the live timers. So add, cancel
// and expiry are O(log n) amortized and thousands of timers are cheap.
//
// Owns the timer callbacks, nothing else. Used by the EventLoop of one
// process; a copy inherited across fork is the child's private copy.
// Not thread-safe.
#ifndef ZAN_TIMER_QUEUE_H
#define ZAN_TIMER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <vector>

namespace zan {

class TimerQueue {
public:
    // (generation << 32) | slot. Generations start at 1, so 0 is never a
    // valid id, and an id stays invalid once its timer is gone.
    using TimerId = uint64_t;

    TimerQueue() = default;
    TimerQueue(const TimerQueue&) = delete;
    TimerQueue& operator=(const TimerQueue&) = delete;

    // Adds a timer due at `when_ms`; interval_ms > 0 makes it periodic
    // (next expiry = previous expiry + interval, skipping missed periods),
    // 0 or less makes it one-shot. Returns 0 with errno EINVAL for an
    // empty callback.
    TimerId add(long long when_ms, long long interval_ms, std::function<void()> cb);
    // Cancels a pending or periodic timer; false if `id` is not live (it
    // already fired as a one-shot, was cancelled, or never existed). Safe
    // from inside any timer callback, including the timer's own: a
    // periodic timer cancelled from its own callback does not fire again.
    bool cancel(TimerId id);
    // Expiry of the earliest live timer, or -1 when there is none.
    long long next_expiry() const { return heap_.empty() ? -1 : heap_.front().when; }
    // Runs every timer due at or before `now_ms`, earliest first. Timers
    // added by these callbacks run on a later call, never in this one, so a
    // callback re-adding itself with a past expiry cannot spin here.
    void run_expired(long long now_ms);
    // Number of live timers (pending, plus a periodic one that is running).
    size_t size() const { return live_; }
    // Callbacks run by the last run_expired().
    size_t last_fired() const { return fired_; }

private:
    struct Slot {
        std::function<void()> cb;
        long long interval = 0;
        uint32_t gen = 1;
        bool used = false;
    };
    struct Node {
        long long when;
        uint64_t seq;  // creation order breaks ties between equal expiries
        uint32_t slot;
        uint32_t gen;
    };
    struct Later {  // the heap is a min-heap, std::*_heap want a max-heap
        bool operator()(const Node& a, const Node& b) const
        {
            return a.when != b.when ? a.when > b.when : a.seq > b.seq;
        }
    };

    bool stale(const Node& n) const { return !slots_[n.slot].used || slots_[n.slot].gen != n.gen; }
    void push(long long when, uint32_t slot, uint32_t gen);
    void pop();
    void release(uint32_t slot);
    void prune();

    std::vector<Slot> slots_;
    std::vector<uint32_t> free_;
    std::vector<Node> heap_;  // invariant: empty or heap_.front() is live
    std::vector<Node> later_;  // due, but added during run_expired()
    uint64_t seq_ = 0;
    size_t live_ = 0;
    size_t fired_ = 0;
};

}  // namespace zan

#endif
