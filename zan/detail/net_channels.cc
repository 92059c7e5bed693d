#include "zan/detail/net_channels.h"

#include <errno.h>

#include <utility>

#include "zan/log.h"

namespace zan {

NetChannels::NetChannels(Runtime& rt, EventLoop& loop)
    : rt_(rt),
      loop_(loop),
      waiters_(static_cast<size_t>(rt.W())),
      dirty_(static_cast<size_t>(rt.W()), false),
      undispatched_(static_cast<size_t>(rt.W()), 0),
      handed_listed_(static_cast<size_t>(rt.W()), false)
{
}

void NetChannels::set_callbacks(SlotCallback room, WorkerCallback broken)
{
    room_ = std::move(room);
    broken_ = std::move(broken);
}

void NetChannels::flush()
{
    for (int w = 0; w < rt_.W(); w++) {
        if (!dirty_[static_cast<size_t>(w)])
            continue;
        Channel& ch = chan(w);
        if (int64_t& n = undispatched_[static_cast<size_t>(w)]) {
            if (rt_.cfg.dispatch_mode == 3)  // its only reader
                atomic_add(&rt_.procs[w].dispatched, n);
            n = 0;
            if (!handed_listed_[static_cast<size_t>(w)]) {
                handed_listed_[static_cast<size_t>(w)] = true;
                handed_.push_back(&ch);
            }
        }
        int r = ch.flush();
        if (r < 0) {
            // Not EAGAIN: drop what is queued once instead of retrying (and
            // logging) on every pass; the clients waiting on it are failed
            // like those of a dead Worker.
            log_errno(Level::error, errno, "writing to worker#%d: %zu bytes dropped", w,
                      ch.pending());
            ch.discard();
            dirty_[static_cast<size_t>(w)] = false;
            broken_(w);
            continue;
        }
        // Blocked (r == 0): the Worker wakes us when it has made room.
        dirty_[static_cast<size_t>(w)] = r == 0;
        if (!ch.full() && !waiters_[static_cast<size_t>(w)].empty())
            resume_waiters(w);
    }
}

void NetChannels::resume_waiters(int w)
{
    std::vector<uint32_t> resume;
    resume.swap(waiters_[static_cast<size_t>(w)]);
    for (uint32_t slot : resume)
        room_(slot);
    dirty_[static_cast<size_t>(w)] = true;
    loop_.defer([] {});  // poll again at once to flush what was resumed
}

bool NetChannels::before_sleep()
{
    // A Worker we handed messages to is still awake: its replies are
    // due, so give up the CPU (hop_yield times at most) before blocking.
    if (!handed_.empty()) {
        int turns = 0;
        bool ready = Channel::yield_to_peers(rt_.cfg.hop_yield, handed_, &turns);
        if (turns > 0)
            atomic_add(&rt_.procs[rt_.id].hop_yields, static_cast<int64_t>(turns));
        if (ready)
            return true;
        handed_.clear();
        handed_listed_.assign(handed_listed_.size(), false);
    }
    // Tell the Workers we may block, then look at the rings once more:
    // replies published before they could see it are read now.
    Channel::prepare_sleep(rt_.sleeping_word());
    for (int w = 0; w < rt_.W(); w++) {
        if (chan(w).ready()) {
            Channel::end_sleep(rt_.sleeping_word());
            return true;
        }
    }
    return false;
}

void NetChannels::flush_all(int timeout_ms)
{
    for (int w = 0; w < rt_.W(); w++)
        if (chan(w).pending())
            chan(w).flush_wait(timeout_ms);
}

}  // namespace zan
