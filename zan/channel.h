// Channel: framed messages over one end of an AF_UNIX SOCK_SEQPACKET
// socketpair, batched for throughput.
//
// push() appends frames to a private output buffer; flush() sends them as
// records of up to kMaxRecord bytes (one sendmmsg(2) carries many records,
// one record carries many frames). Because SEQPACKET keeps record
// boundaries and a record is written whole or not at all:
//  - several processes may write to one end (each record stays intact);
//  - several processes may read from one end (each record goes to one);
//  - a reader or writer that dies never leaves the stream out of step.
// A message larger than one record is split into fragments that the
// reader reassembles per sending pid; fragments of a writer that died are
// dropped when its next message starts.
//
// Ring mode (attach_ring): the same frames travel through two shared-memory
// Rings instead of a socket, one per direction, and the peer is woken
// through its eventfd only when it said it is about to sleep (see
// prepare_sleep()). A pass that moves a batch of frames then costs no
// system call at all while the peer is busy, and one eventfd write when it
// sleeps. The NetWorker <-> Worker pairs use this mode; inboxes and control
// channels use sockets.
//
// Owns its descriptor (closed on destruction); in ring mode it owns
// nothing (the rings live in the server's ShmRegion, the eventfds in the
// Runtime). Private to one process; a child that inherits a Channel object
// must reset() the ends it does not use. Used by NetWorkers and Workers
// (request/reply traffic) and by Workers, TaskWorkers and UserWorkers
// (inbox traffic).
#ifndef ZAN_CHANNEL_H
#define ZAN_CHANNEL_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "zan/buffer.h"
#include "zan/fd.h"
#include "zan/ring.h"

namespace zan {

struct FrameHeader {
    uint32_t len;      // payload bytes of this frame (fragment)
    uint8_t kind;      // meaning chosen by the user of the channel
    uint8_t flags;     // kFragPart, kFragFirst, kFragMore (0: a whole message)
    uint16_t reserved;
    uint32_t src;      // sending process id (reassembly key)
    int32_t arg;       // kind-specific small value
    uint64_t id;       // kind-specific id (session, task id, ...)
};
static_assert(sizeof(FrameHeader) == 24, "FrameHeader is a wire format");

class Channel {
public:
    static constexpr size_t kMaxRecord = 64 * 1024;
    static constexpr uint8_t kFragFirst = 1;  // first fragment of a split message
    static constexpr uint8_t kFragMore = 2;   // more fragments follow
    static constexpr uint8_t kFragPart = 4;   // set on every fragment

    // Creates a SEQPACKET socketpair (non-blocking, close-on-exec) with
    // large socket buffers. Returns false with errno set.
    static bool make_pair(Channel* a, Channel* b);

    Channel() = default;
    explicit Channel(Fd fd);
    Channel(Channel&&) = default;
    Channel& operator=(Channel&&) = default;

    // Ring mode: frames go out through tx and come in through rx; peer_wake
    // is the peer process's eventfd and peer_sleeping its sleeping word
    // (both outlive the channel). The channel has no descriptor then.
    void attach_ring(Ring tx, Ring rx, int peer_wake, int32_t* peer_sleeping);
    bool ring_mode() const { return rx_.valid(); }
    // Ring mode: frames are waiting to be received.
    bool ready() const { return rx_.valid() && !rx_.empty(); }

    // The consumer's half of the wake-up protocol, for a process that reads
    // ring channels: before it blocks it calls prepare_sleep() on its
    // sleeping word and then checks ready() on every channel it reads; if
    // one is ready it must not block and calls end_sleep(). After every
    // wake-up it calls end_sleep(). A producer that publishes frames while
    // the word is set clears it and writes the eventfd; the fences on both
    // sides make sure one of the two sees the other (no lost wake-up).
    static void prepare_sleep(int32_t* word);
    static void end_sleep(int32_t* word);

    // Ring mode: the peer has not said it sleeps (it runs, is runnable, or
    // is being woken).
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
    // Adds the turns it took to *taken if given. See ServerConfig::hop_yield.
    static bool yield_to_peers(int turns, const std::vector<Channel*>& chans, int* taken = nullptr);

    int fd() const { return fd_.get(); }
    bool valid() const { return fd_.valid() || rx_.valid(); }
    void reset()
    {
        fd_.reset();
        out_.clear();
        partial_.clear();
        tx_ = rx_ = Ring();
        max_frame_ = kMaxRecord;
        peer_wake_ = -1;
        peer_sleeping_ = nullptr;
    }
    // Drops whatever is queued and not yet sent.
    void discard() { out_.clear(); }

    // Bytes queued and not yet sent. A pending limit of 0 means unbounded.
    size_t pending() const { return out_.readable(); }
    void set_max_pending(size_t n) { max_pending_ = n; }
    bool full() const { return max_pending_ && out_.readable() >= max_pending_; }

    // Queues one message. Returns false (nothing queued) when the output
    // queue is over its limit: the caller applies back-pressure.
    bool push(uint8_t kind, uint64_t id, int32_t arg, std::string_view data);
    // Same, for a message made of two parts sent back to back.
    bool push2(uint8_t kind, uint64_t id, int32_t arg, std::string_view a, std::string_view b);
    // Queues a small control message (a connect, a close) even over the
    // limit: they come one per connection event, so what they add stays
    // bounded, and dropping one would lose a callback or a close ack.
    void push_control(uint8_t kind, uint64_t id, int32_t arg);

    // Sends queued records. Returns 1 when everything was sent, 0 when the
    // socket is full (the rest stays queued: wait for writability; in ring
    // mode the consumer wakes us when it frees room), -1 on error with
    // errno set.
    int flush();
    // flush() and wait with poll(2) until everything is sent or timeout_ms
    // passes (for blocking-style processes). Returns false on timeout or
    // error.
    bool flush_wait(int timeout_ms);

    // Reads up to max_records records and hands each complete message to
    // fn(header, payload); the payload view is valid only during the call.
    // Returns the number of records read, 0 when none was ready, -1 on
    // error with errno set (ECONNRESET/EPIPE when the peer end is gone).
    // In ring mode a "record" is kMaxRecord bytes of frames.
    template <class Fn>
    int receive(Fn&& fn, int max_records = 64);

private:
    // Reads up to `want` records with one recvmmsg(2) into rbuf_ (record i
    // at i * kMaxRecord, length rlen_[i]). Returns the count or -1.
    int recv_records(int want);
    // Ring mode: copies whole frames, at most limit bytes, into rbuf_ and
    // frees their room (waking a producer that waits for it).
    size_t ring_read(size_t limit);
    int ring_flush();
    void wake_peer();
    template <class Fn>
    void dispatch_record(const char* base, size_t n, Fn&& fn);
    void append_frame(uint8_t kind, uint8_t flags, uint64_t id, int32_t arg, std::string_view a,
                      std::string_view b);

    Fd fd_;
    Buffer out_;
    size_t max_pending_ = 0;
    static constexpr int kRecvBatch = 8;
    std::unique_ptr<char[]> rbuf_;  // kRecvBatch records; pages are touched only when used
    size_t rlen_[kRecvBatch] = {};
    std::unordered_map<uint32_t, std::string> partial_;  // src pid -> message so far
    Ring tx_, rx_;                     // ring mode
    int peer_wake_ = -1;               // ring mode: the peer's eventfd
    int32_t* peer_sleeping_ = nullptr;  // ring mode: the peer's sleeping word
    size_t max_frame_ = kMaxRecord;     // header included; half the tx ring at most
};

template <class Fn>
int Channel::receive(Fn&& fn, int max_records)
{
    if (rx_.valid()) {
        int recs = max_records < 1 ? 1 : (max_records < kRecvBatch ? max_records : kRecvBatch);
        size_t limit = static_cast<size_t>(recs) * kMaxRecord;
        size_t n = ring_read(limit);
        if (n == 0) {
            errno = EAGAIN;
            return 0;
        }
        dispatch_record(rbuf_.get(), n, fn);
        return static_cast<int>((n + kMaxRecord - 1) / kMaxRecord);
    }
    int got = 0;
    while (got < max_records) {
        int want = max_records - got < kRecvBatch ? max_records - got : kRecvBatch;
        int n = recv_records(want);
        if (n < 0)
            return got > 0 ? got : (errno == EAGAIN ? 0 : -1);
        for (int i = 0; i < n; i++) {
            if (rlen_[i] == 0) {  // end of file: the peer end is closed
                errno = ECONNRESET;
                return got > 0 ? got : -1;
            }
            got++;
            dispatch_record(rbuf_.get() + static_cast<size_t>(i) * kMaxRecord, rlen_[i], fn);
        }
        if (n < want)
            break;  // drained: spare the extra call that would say EAGAIN
    }
    return got;
}

template <class Fn>
void Channel::dispatch_record(const char* base, size_t n, Fn&& fn)
{
    size_t off = 0;
    while (off + sizeof(FrameHeader) <= n) {
        FrameHeader h;
        memcpy(&h, base + off, sizeof(h));
        off += sizeof(h);
        if (h.len > n - off)
            return;  // malformed record: drop the rest
        std::string_view payload(base + off, h.len);
        off += h.len;
        if (!h.flags) {
            fn(h, payload);
            continue;
        }
        if (h.flags & kFragFirst)
            partial_[h.src].assign(payload.data(), payload.size());
        else {
            auto it = partial_.find(h.src);
            if (it == partial_.end())
                continue;  // continuation without a start: its writer died
            it->second.append(payload.data(), payload.size());
        }
        if (!(h.flags & kFragMore)) {
            auto it = partial_.find(h.src);
            std::string whole;
            whole.swap(it->second);
            partial_.erase(it);
            h.len = static_cast<uint32_t>(whole.size());
            h.flags = 0;
            fn(h, std::string_view(whole));
        }
    }
}

}  // namespace zan

#endif
