// NetChannels: a NetWorker's ends of its channels to the Workers (one per
// Worker; shared-memory rings). Frames pushed during a loop iteration are
// flushed once before the loop blocks, so each Worker gets one batch (and
// one wake-up). It counts the messages handed to each Worker (the load
// dispatch mode 3 looks at), keeps the connections paused because a
// Worker's channel is full and hands them back when it has room, and
// before the loop blocks gives up the CPU while a Worker it handed
// messages to is still awake (hop_yield). It does not own the channels
// (Runtime::net_end does).
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_CHANNELS_H
#define ZAN_DETAIL_NET_CHANNELS_H

#include <stdint.h>

#include <functional>
#include <string_view>
#include <vector>

#include "zan/event_loop.h"
#include "zan/detail/process.h"

namespace zan {

class NetChannels {
public:
    using SlotCallback = std::function<void(uint32_t slot)>;
    using WorkerCallback = std::function<void(int w)>;

    NetChannels(Runtime& rt, EventLoop& loop);

    // room(slot): Worker channel the paused connection `slot` waits on
    // has room again. broken(w): the channel to Worker w failed and what
    // was queued on it is lost.
    void set_callbacks(SlotCallback room, WorkerCallback broken);

    Channel& chan(int w) { return rt_.net_end[static_cast<size_t>(rt_.index * rt_.W() + w)]; }
    int64_t undispatched(int w) const { return undispatched_[static_cast<size_t>(w)]; }

    // Queues one message for Worker w. False when its channel is full:
    // connection `slot` then waits (the caller pauses it) until it drains.
    bool push_data(int w, SessionId s, int flags, std::string_view data, uint32_t slot)
    {
        if (!chan(w).push(kFrameData, s, flags, data)) {
            waiters_[static_cast<size_t>(w)].push_back(slot);
            return false;
        }
        undispatched_[static_cast<size_t>(w)]++;  // published in flush()
        dirty_[static_cast<size_t>(w)] = true;
        return true;
    }
    void push_control(int w, uint8_t kind, SessionId s, int arg)
    {
        chan(w).push_control(kind, s, arg);
        dirty_[static_cast<size_t>(w)] = true;
    }
    // Worker w made room: flush its channel before the next poll.
    void mark(int w) { dirty_[static_cast<size_t>(w)] = true; }

    // Sends what was pushed since the last call, and resumes the waiters
    // of each channel that has room again.
    void flush();
    // Before the loop blocks. True when replies are ready to read (the
    // loop must not block); false when the Workers will wake us.
    bool before_sleep();
    // After every wake-up.
    void after_wake() { Channel::end_sleep(rt_.sleeping_word()); }
    // Sends what is queued, waiting up to timeout_ms per channel (exit).
    void flush_all(int timeout_ms);

private:
    void resume_waiters(int w);

    Runtime& rt_;
    EventLoop& loop_;
    SlotCallback room_;
    WorkerCallback broken_;
    std::vector<std::vector<uint32_t>> waiters_;  // per Worker: paused connections
    std::vector<bool> dirty_;                     // per Worker: something to flush
    std::vector<int64_t> undispatched_;  // messages sent to each Worker, not yet in its ProcSlot
    // Channels of the Workers handed messages since we last blocked, and
    // which ones are listed (see Channel::yield_to_peers).
    std::vector<Channel*> handed_;
    std::vector<bool> handed_listed_;
};

}  // namespace zan

#endif
