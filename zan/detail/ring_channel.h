// RingChannel: framed messages through two shared-memory Rings, one per
// direction, with eventfd wake-ups: the NetWorker <-> Worker request path.
//
// Frames are those of FrameCodec; flush() copies whole frames into the tx
// ring and receive() copies whole frames out of the rx ring. The peer is
// woken through its eventfd only when it said it is about to sleep (see
// prepare_sleep()), so a pass that moves a batch of frames costs no system
// call at all while the peer is busy, and one eventfd write when it sleeps.
//
// Owns nothing but its framing state: the rings live in the server's
// ShmRegion, the eventfds and sleeping words in the Runtime. Private to one
// process and freely inherited across fork (the rings are shared; exactly
// one process may read a ring at a time). Used, through Channel, by
// NetWorkers and Workers.
#ifndef ZAN_DETAIL_RING_CHANNEL_H
#define ZAN_DETAIL_RING_CHANNEL_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>

#include <string_view>
#include <vector>

#include "zan/detail/frame_codec.h"
#include "zan/detail/ring.h"

namespace zan {

class RingChannel : public FramedChannel {
public:
    static constexpr size_t kMaxRecord = FrameCodec::kMaxRecord;

    RingChannel() = default;
    // Frames go out through tx and come in through rx; peer_wake is the
    // peer process's eventfd and peer_sleeping its sleeping word (both
    // outlive the channel).
    RingChannel(Ring tx, Ring rx, int peer_wake, int32_t* peer_sleeping)
    {
        attach(tx, rx, peer_wake, peer_sleeping);
    }
    RingChannel(RingChannel&&) = default;
    RingChannel& operator=(RingChannel&&) = default;

    // Points the channel at other rings, keeping queued output and
    // unfinished incoming messages.
    void attach(Ring tx, Ring rx, int peer_wake, int32_t* peer_sleeping);
    bool valid() const { return rx_.valid(); }
    // Forgets the rings and drops the queue and unfinished messages.
    void reset()
    {
        frames_.clear();
        tx_ = rx_ = Ring();
        peer_wake_ = -1;
        peer_sleeping_ = nullptr;
    }

    // Frames are waiting to be received. No system call.
    bool ready() const { return rx_.valid() && !rx_.empty(); }

    // The consumer's half of the wake-up protocol, for a process that reads
    // ring channels: before it blocks it calls prepare_sleep() on its
    // sleeping word and then checks ready() on every channel it reads; if
    // one is ready it must not block and calls end_sleep(). After every
    // wake-up it calls end_sleep(). A producer that publishes frames while
    // the word is set clears it and writes the eventfd; the fences on both
    // sides make sure one of the two sees the other (no lost wake-up).
    static void prepare_sleep(int32_t* word)
    {
        __atomic_store_n(word, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);  // the word is set before the rings are checked
    }
    static void end_sleep(int32_t* word)
    {
        if (__atomic_load_n(word, __ATOMIC_RELAXED))
            __atomic_store_n(word, 0, __ATOMIC_RELAXED);
    }

    // The peer has not said it sleeps (it runs, is runnable, or is being
    // woken).
    bool peer_awake() const
    {
        return peer_sleeping_ && !__atomic_load_n(peer_sleeping_, __ATOMIC_RELAXED);
    }
    // The cooperative half of the protocol, for a process about to block
    // while the peers of `chans` (those it just handed work to, or took
    // work from) are awake: their frames are then due within microseconds,
    // and once it sleeps each would cost a wake-up (on a busy machine a
    // cross-CPU one). So instead it gives up the CPU (sched_yield(2)),
    // staying runnable: a peer waiting for this CPU runs at once, and what
    // a peer elsewhere publishes meanwhile needs no wake-up. (Another
    // program runnable here may get a time slice out of it: throughput for
    // some tail latency.) It does so at most `turns` times, while one of
    // those peers is awake, and returns true as soon as one of `chans` is
    // ready(); false when it should block (then prepare_sleep() as usual).
    // Adds the turns it took to *taken if given. Chan is RingChannel or
    // anything with the same peer_awake() and ready(), such as Channel.
    // See ServerConfig::hop_yield.
    template <class Chan>
    static bool yield_to_peers(int turns, const std::vector<Chan*>& chans, int* taken = nullptr);

    // push(), push2(), push_control(), pending(), set_max_pending(), full()
    // and discard(): the output queue, from FramedChannel.

    // Copies as many whole queued frames as fit into tx and wakes the peer
    // if it sleeps. Returns 1 when everything went in, 0 when the ring is
    // full (the consumer wakes us when it frees room), -1 when the ring's
    // lock cannot be taken, with errno set.
    int flush();
    // flush() until everything went in or timeout_ms passes, trying again
    // every millisecond (for blocking-style processes and exit paths).
    bool flush_wait(int timeout_ms);

    // Copies the whole frames waiting in rx, at most max_records (1..8)
    // times kMaxRecord bytes, frees their room (waking a producer that
    // waits for it) and hands each complete message to fn(header,
    // payload); the payload view is valid only during the call. Returns
    // the bytes read divided by kMaxRecord, rounded up, or 0 with errno
    // EAGAIN when nothing was waiting.
    template <class Fn>
    int receive(Fn&& fn, int max_records = 64);

private:
    friend class Channel;  // moves the framing state when it changes transport

    // Copies whole frames, at most limit bytes, into the record buffer and
    // frees their room. Returns the bytes copied.
    size_t read(size_t limit);
    void wake_peer();

    Ring tx_, rx_;
    int peer_wake_ = -1;                // the peer's eventfd
    int32_t* peer_sleeping_ = nullptr;  // the peer's sleeping word
};

template <class Chan>
bool RingChannel::yield_to_peers(int turns, const std::vector<Chan*>& chans, int* taken)
{
    for (int t = 0; t < turns; t++) {
        bool awake = false;
        for (const Chan* ch : chans)
            awake = awake || ch->peer_awake();
        if (!awake)
            return false;
        ::sched_yield();
        if (taken)
            ++*taken;
        for (const Chan* ch : chans) {
            if (ch->ready())
                return true;
        }
    }
    return false;
}

template <class Fn>
int RingChannel::receive(Fn&& fn, int max_records)
{
    const int kBatch = FrameCodec::kRecvBatch;
    int recs = max_records < 1 ? 1 : (max_records < kBatch ? max_records : kBatch);
    size_t n = read(static_cast<size_t>(recs) * kMaxRecord);
    if (n == 0) {
        errno = EAGAIN;
        return 0;
    }
    frames_.dispatch(frames_.record_buffer(), n, fn);
    return static_cast<int>((n + kMaxRecord - 1) / kMaxRecord);
}

}  // namespace zan

#endif
