#include "zan/detail/net_requests.h"

#include <errno.h>
#include <string.h>

#include <string>

#include "zan/log.h"

namespace zan {

void NetRequests::read(uint32_t slot, int64_t wall_sec)
{
    NetConn& c = table_.at(slot);
    int err = 0;
    ssize_t n = c.x().in.read_fd(c.fd.get(), &err);
    if (n < 0) {
        if (err == EAGAIN)
            return;
        if (err != ECONNRESET)
            log_errno(Level::debug, err, "read from client");
        table_.close(slot, "read error");
        return;
    }
    if (n == 0) {
        end_of_input(slot);
        return;
    }
    counter_add(&rt_.counters().bytes_in, static_cast<int64_t>(n));
    table_.touch(slot, wall_sec);
    process_input(slot);
}

// Half-close: answer what was asked, then close. The home Worker
// acknowledges after the frames before it (same channel, in order).
void NetRequests::end_of_input(uint32_t slot)
{
    NetConn& c = table_.at(slot);
    c.read_closed = true;
    table_.set_interest(slot);
    if (!c.no_input())
        process_input(slot);
    if (!c.used)
        return;
    log(Level::debug, "session %llu: end of input",
        static_cast<unsigned long long>(table_.session_of(slot)));
    c.half_close_due = true;
    half_close(slot);
}

// The client half-closed. Once the messages read before its end of file
// are queued (not while the connection waits for room in a full channel),
// ask the home Worker to acknowledge after them; the connection closes
// when the ack comes back.
void NetRequests::half_close(uint32_t slot)
{
    NetConn& c = table_.at(slot);
    if (!c.used || !c.half_close_due || c.paused)
        return;
    c.half_close_due = false;
    c.ack_wait = true;
    chans_.push_control(c.home, kFrameClose, table_.session_of(slot), 1);
}

void NetRequests::resume(uint32_t slot)
{
    NetConn& c = table_.at(slot);
    if (!c.used || !c.paused)
        return;
    c.paused = false;
    table_.set_interest(slot);
    process_input(slot);
    half_close(slot);
}

void NetRequests::process_input(uint32_t slot)
{
    for (;;) {
        NetConn& c = table_.at(slot);
        if (!c.used || c.no_input() || c.paused || c.last_seen || c.reject_after)
            return;
        if (c.stream_full)
            return;  // the Worker holds a window of parts: wait for its ack
        bool part = false;
        long len = c.proto(rt_.protocol, table_.session_of(slot)) ? next_request(slot, &part)
                                                                  : next_frame(slot);
        if (len <= 0)
            return;
        if (part ? !dispatch_part(slot, static_cast<size_t>(len)) : !dispatch(slot, static_cast<size_t>(len)))
            return;
    }
}

// The length of the next complete request (protocol layer, e.g. HTTP), or
// 0 when there is none yet or the input was refused: a refusal is answered
// here, after the replies still due, and the Worker never sees it.
long NetRequests::next_request(uint32_t slot, bool* part)
{
    NetConn& c = table_.at(slot);
    ConnIo& io = *c.io;
    ConnProtocol* pr = c.protocol.get();
    size_t mlen = 0;
    std::string reply, interim;
    ConnProtocol::Verdict v = pr->next(io.in.peek(), io.in.readable(), &mlen, &reply, &interim);
    if (!interim.empty())
        queue_early_reply(slot, interim);
    if (v == ConnProtocol::kReject) {
        if (c.streaming) {
            // Its Worker has the message's first parts and may be
            // answering it: no other reply can go out. The close cuts the
            // message short there.
            log(Level::info, "session %llu: bad input in a streamed message: closing",
                static_cast<unsigned long long>(table_.session_of(slot)));
            table_.close(slot, "bad streamed message");
            return 0;
        }
        reject(slot, reply);
        return 0;
    }
    if (v == ConnProtocol::kMessage && mlen > 0)
        return static_cast<long>(mlen);
    if (v == ConnProtocol::kPart && mlen > 0 && rt_.protocol.stream_window > 0) {
        *part = true;
        return static_cast<long>(mlen);
    }
    // The header timeout covers the header section; a body is timed by
    // the idle timeout between reads instead.
    if (pr->in_body())
        c.partial_since = 0;
    else if (!c.partial_since)
        c.partial_since = loop_.now_ms();
    return 0;
}

// An interim reply (e.g. 100 Continue) goes out now, or after the
// replies still due.
void NetRequests::queue_early_reply(uint32_t slot, const std::string& interim)
{
    NetConn& c = table_.at(slot);
    if (c.inflight == 0) {
        c.append_out(interim);
        table_.mark_dirty(slot);
    } else {
        c.io->deferred += interim;
    }
}

// The protocol refused the input: read no more, and send its reply once
// the replies still due are out, then close.
void NetRequests::reject(uint32_t slot, const std::string& reply)
{
    NetConn& c = table_.at(slot);
    ConnIo& io = *c.io;
    io.in.clear();
    c.read_closed = true;
    c.reject_after = true;
    io.deferred += reply;
    table_.set_interest(slot);
    if (c.inflight == 0) {
        c.append_out(io.deferred);
        io.deferred.clear();
        c.close_after_flush = true;
        table_.mark_dirty(slot);
    }
}

// The length of the next complete frame (package_* framing or a raw
// stream), or 0 when there is none yet or the connection was closed for
// bad or oversized input.
long NetRequests::next_frame(uint32_t slot)
{
    ConnIo& io = *table_.at(slot).io;
    long len = frame_len(io.in.peek(), io.in.readable());
    if (len == 0 && io.in.readable() > rt_.cfg.package_max_length) {
        log(Level::warn, "message larger than package_max_length (%zu): closing",
            rt_.cfg.package_max_length);
        table_.close(slot, "message too large");
    } else if (len < 0) {
        log(Level::info, "bad message from client: closing");
        table_.close(slot, "bad message");
        return 0;
    }
    return len;
}

// The length of the message at p[0,n): the frame hook's answer, or by
// package_eof, or by the length field; 0 when incomplete, -1 when bad.
long NetRequests::frame_len(const char* p, size_t n) const
{
    const ServerConfig& cfg = rt_.cfg;
    if (rt_.frame_hook)
        return rt_.frame_hook(p, n);
    if (cfg.open_eof_check) {
        const void* hit = ::memmem(p, n, cfg.package_eof.data(), cfg.package_eof.size());
        if (hit)
            return static_cast<const char*>(hit) - p + static_cast<long>(cfg.package_eof.size());
        return n > cfg.package_max_length ? -1 : 0;
    }
    if (cfg.open_length_check)
        return length_field(p, n);
    return static_cast<long>(n);  // raw stream: every read is a message
}

// open_length_check: the message length is package_body_offset plus the
// package_length_type field at package_length_offset.
long NetRequests::length_field(const char* p, size_t n) const
{
    const ServerConfig& cfg = rt_.cfg;
    int sz = ServerConfig::length_size(cfg.package_length_type);
    size_t need = static_cast<size_t>(cfg.package_length_offset + sz);
    if (n < need)
        return 0;
    const unsigned char* q = reinterpret_cast<const unsigned char*>(p + cfg.package_length_offset);
    uint64_t v = 0;
    char t = cfg.package_length_type;
    bool little = (t == 'v' || t == 'V' || t == 'P' ||
                   ((t == 's' || t == 'S' || t == 'l' || t == 'L' || t == 'q' || t == 'Q') &&
                    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__));
    for (int i = 0; i < sz; i++)
        v |= static_cast<uint64_t>(little ? q[i] : q[sz - 1 - i]) << (8 * i);
    bool is_signed = (t == 'c' || t == 's' || t == 'l' || t == 'q');
    if (is_signed && sz < 8 && (v >> (8 * sz - 1)) & 1)
        return -1;  // negative length
    uint64_t total = static_cast<uint64_t>(cfg.package_body_offset) + v;
    if (total > cfg.package_max_length)
        return -1;
    return n >= total ? static_cast<long>(total) : 0;
}

// Queues the first len input bytes for their Worker. False when reading
// must stop: the Worker's channel is full (back-pressure: the client is
// paused until it drains) or this was the connection's last message.
bool NetRequests::dispatch(uint32_t slot, size_t len)
{
    NetConn& c = table_.at(slot);
    ConnIo& io = *c.io;
    if (c.streaming) {
        // The last part of a streamed message: counted at its first.
        if (!chans_.push_data(c.stream_worker, table_.session_of(slot), c.stream_flags | kDataPart | kDataEnd,
                              std::string_view(io.in.peek(), len), slot)) {
            c.paused = true;
            table_.set_interest(slot);
            return false;
        }
        c.streaming = c.stream_full = false;
        c.stream_unacked = 0;
        c.partial_since = 0;
        io.in.consume(len);
        table_.set_interest(slot);
        return finish_message(slot, c.stream_flags);
    }
    int w = policy_.choose(c);
    int flags = next_flags(c);
    if (!chans_.push_data(w, table_.session_of(slot), flags, std::string_view(io.in.peek(), len), slot)) {
        c.paused = true;
        table_.set_interest(slot);
        return false;
    }
    started(slot, w);
    io.in.consume(len);
    return finish_message(slot, flags);
}

// The sequence number of the connection's next message, and kDataLast
// when it is the last one it may send.
int NetRequests::next_flags(const NetConn& c) const
{
    int flags = static_cast<int>((static_cast<uint32_t>(c.messages) & kSeqMask) << kSeqShift);
    int max = rt_.protocol.max_messages;
    if (max > 0 && c.messages + 1 >= max)
        flags |= kDataLast;
    return flags;
}

// A message (or its first part) went to Worker w.
void NetRequests::started(uint32_t slot, int w)
{
    NetConn& c = table_.at(slot);
    if (!c.awaiting && c.inflight == 0 && c.replies_done == 0)
        c.recv_us = rt_.wake_us;
    counter_add(&rt_.counters().requests, static_cast<int64_t>(1));
    c.awaiting = true;
    c.last_worker = w;
    c.messages++;
    c.partial_since = 0;
    if (rt_.protocol.counted_replies)
        c.inflight++;
}

// Queues the first len input bytes, a part of a streamed message, for
// its Worker (the first part picks it). False when reading must stop: the
// channel is full, or the Worker holds a window of parts unacknowledged.
bool NetRequests::dispatch_part(uint32_t slot, size_t len)
{
    NetConn& c = table_.at(slot);
    ConnIo& io = *c.io;
    bool first = !c.streaming;
    int w = first ? policy_.choose(c) : c.stream_worker;
    int flags = first ? next_flags(c) : c.stream_flags;
    if (!chans_.push_data(w, table_.session_of(slot), flags | kDataPart | (first ? kDataFirst : 0),
                          std::string_view(io.in.peek(), len), slot)) {
        c.paused = true;
        table_.set_interest(slot);
        return false;
    }
    if (first) {
        started(slot, w);
        c.streaming = true;
        c.stream_worker = w;
        c.stream_flags = flags;
        c.stream_unacked = 0;
    }
    c.stream_unacked += len;
    io.in.consume(len);
    c.protocol->consumed();
    if (c.stream_unacked >= rt_.protocol.stream_window) {
        c.stream_full = true;
        table_.set_interest(slot);
        return false;
    }
    return true;
}

// The Worker processed n bytes of the streamed message's parts.
void NetRequests::acknowledged(uint32_t slot, size_t n)
{
    NetConn& c = table_.at(slot);
    if (!c.used || !c.streaming)
        return;
    c.stream_unacked = n < c.stream_unacked ? c.stream_unacked - n : 0;
    if (c.stream_full && c.stream_unacked < rt_.protocol.stream_window) {
        c.stream_full = false;
        c.last_active = loop_.now_ms();  // the client's idle time starts now
        table_.set_interest(slot);
        process_input(slot);
        half_close(slot);
    }
}

// After a whole message (or a streamed one's last part) left the input:
// false when reading must stop as it was the connection's last.
bool NetRequests::finish_message(uint32_t slot, int flags)
{
    NetConn& c = table_.at(slot);
    ConnIo& io = *c.io;
    bool ends = false;
    if (c.protocol) {
        ends = c.protocol->ends_connection();
        c.protocol->consumed();
    }
    if ((flags & kDataLast) || ends) {
        c.last_seen = true;  // read nothing more; close once answered
        io.in.clear();
        table_.set_interest(slot);
        return false;
    }
    return true;
}

}  // namespace zan
