// Channel: one end of a framed message channel whose transport is chosen
// at run time: a SocketChannel (one end of a SEQPACKET socketpair) or a
// RingChannel (two shared-memory rings with eventfd wake-ups). Both carry
// the frames of FrameCodec; see their headers for what each guarantees.
//
// The transport is held by value in a std::variant and every call is an
// inline test of its index followed by the transport's own (inline or
// direct) call: no virtual call, no allocation, no indirection. Code that
// always holds one transport may use SocketChannel or RingChannel itself.
//
// Owns what its transport owns: the descriptor of a socket channel (closed
// on destruction or reset()); nothing of a ring channel (the rings live in
// the server's ShmRegion, the eventfds in the Runtime). Private to one
// process; a child that inherits a Channel object must reset() the ends it
// does not use. NetWorkers and Workers exchange requests and replies over
// ring channels; inboxes and control channels use sockets.
#ifndef ZAN_DETAIL_CHANNEL_H
#define ZAN_DETAIL_CHANNEL_H

#include <stdint.h>

#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "zan/fd.h"
#include "zan/detail/frame_codec.h"
#include "zan/detail/ring.h"
#include "zan/detail/ring_channel.h"
#include "zan/detail/socket_channel.h"

namespace zan {

class Channel {
public:
    static constexpr size_t kMaxRecord = FrameCodec::kMaxRecord;
    static constexpr uint8_t kFragFirst = FrameCodec::kFragFirst;
    static constexpr uint8_t kFragMore = FrameCodec::kFragMore;
    static constexpr uint8_t kFragPart = FrameCodec::kFragPart;

    // Creates a SEQPACKET socketpair (see SocketChannel::make_pair).
    static bool make_pair(Channel* a, Channel* b);

    Channel() = default;
    explicit Channel(Fd fd) : t_(SocketChannel(std::move(fd))) {}
    explicit Channel(SocketChannel s) : t_(std::move(s)) {}
    explicit Channel(RingChannel r) : t_(std::move(r)) {}
    Channel(Channel&&) = default;
    Channel& operator=(Channel&&) = default;

    // Switches to a ring transport (see RingChannel), closing the
    // descriptor if there was one; queued output and unfinished incoming
    // messages are kept.
    void attach_ring(Ring tx, Ring rx, int peer_wake, int32_t* peer_sleeping);
    bool ring_mode() const { return ring() != nullptr; }

    // The transport: exactly one of the two is not null.
    SocketChannel* socket() { return std::get_if<SocketChannel>(&t_); }
    const SocketChannel* socket() const { return std::get_if<SocketChannel>(&t_); }
    RingChannel* ring() { return std::get_if<RingChannel>(&t_); }
    const RingChannel* ring() const { return std::get_if<RingChannel>(&t_); }

private:
    // Calls f on the transport: one test, both branches inline.
    template <class F>
    decltype(auto) with(F&& f)
    {
        if (RingChannel* r = ring())
            return f(*r);
        return f(*socket());
    }
    template <class F>
    decltype(auto) with(F&& f) const
    {
        if (const RingChannel* r = ring())
            return f(*r);
        return f(*socket());
    }

public:

    // Ring transport: frames are waiting to be received (false for a socket).
    bool ready() const
    {
        const RingChannel* r = ring();
        return r && r->ready();
    }
    // Ring transport: the peer has not said it sleeps (false for a socket).
    bool peer_awake() const
    {
        const RingChannel* r = ring();
        return r && r->peer_awake();
    }
    // The wake-up protocol of ring transports (see RingChannel).
    static void prepare_sleep(int32_t* word) { RingChannel::prepare_sleep(word); }
    static void end_sleep(int32_t* word) { RingChannel::end_sleep(word); }
    static bool yield_to_peers(int turns, const std::vector<Channel*>& chans, int* taken = nullptr)
    {
        return RingChannel::yield_to_peers(turns, chans, taken);
    }

    // The descriptor of a socket transport, -1 for a ring.
    int fd() const
    {
        const SocketChannel* s = socket();
        return s ? s->fd() : -1;
    }
    bool valid() const
    {
        return with([](const auto& t) { return t.valid(); });
    }
    // Closes the descriptor or forgets the rings (the channel then holds
    // an empty socket transport) and drops the queue and unfinished
    // messages; the pending limit stays.
    void reset();
    void discard()
    {
        with([](auto& t) { t.discard(); });
    }

    size_t pending() const
    {
        return with([](const auto& t) { return t.pending(); });
    }
    void set_max_pending(size_t n)
    {
        with([n](auto& t) { t.set_max_pending(n); });
    }
    bool full() const
    {
        return with([](const auto& t) { return t.full(); });
    }

    bool push(uint8_t kind, uint64_t id, int32_t arg, std::string_view data)
    {
        return with([&](auto& t) { return t.push(kind, id, arg, data); });
    }
    bool push2(uint8_t kind, uint64_t id, int32_t arg, std::string_view a, std::string_view b)
    {
        return with([&](auto& t) { return t.push2(kind, id, arg, a, b); });
    }
    void push_control(uint8_t kind, uint64_t id, int32_t arg)
    {
        with([&](auto& t) { t.push_control(kind, id, arg); });
    }

    // Returns 1 when everything was sent, 0 when the socket or ring is
    // full, -1 on error with errno set.
    int flush()
    {
        return with([](auto& t) { return t.flush(); });
    }
    bool flush_wait(int timeout_ms)
    {
        return with([timeout_ms](auto& t) { return t.flush_wait(timeout_ms); });
    }
    // Hands each complete message to fn(header, payload); see the
    // transports for the return value.
    template <class Fn>
    int receive(Fn&& fn, int max_records = 64)
    {
        return with([&](auto& t) { return t.receive(fn, max_records); });
    }

private:
    std::variant<SocketChannel, RingChannel> t_;
};

}  // namespace zan

#endif
