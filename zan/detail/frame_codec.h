// FrameCodec: the frame format and the framing state that SocketChannel
// and RingChannel share; the transports only move the bytes.
//
// Outgoing, push() appends frames (a FrameHeader and its payload) to a
// private queue, cutting a message larger than one frame into fragments;
// the transport takes whole frames off the front of the queue. Incoming,
// the transport reads frames into the record buffer and dispatch() hands
// each complete message to a callback, joining fragments per sending pid;
// fragments of a writer that died are dropped when its next message starts.
//
// Owns its memory only. Private to one process; a copy survives fork like
// any heap object (queued output included). Used by every process through
// a channel.
#ifndef ZAN_DETAIL_FRAME_CODEC_H
#define ZAN_DETAIL_FRAME_CODEC_H

#include <stdint.h>
#include <string.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "zan/buffer.h"

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

class FrameCodec {
public:
    static constexpr size_t kMaxRecord = 64 * 1024;
    static constexpr uint8_t kFragFirst = 1;  // first fragment of a split message
    static constexpr uint8_t kFragMore = 2;   // more fragments follow
    static constexpr uint8_t kFragPart = 4;   // set on every fragment
    static constexpr int kRecvBatch = 8;      // records in the record buffer

    // Queues one message. Returns false (nothing queued) when the queue is
    // over its limit: the caller applies back-pressure.
    bool push(uint8_t kind, uint64_t id, int32_t arg, std::string_view data)
    {
        return push2(kind, id, arg, data, std::string_view());
    }
    // Same, for a message made of two parts sent back to back.
    bool push2(uint8_t kind, uint64_t id, int32_t arg, std::string_view a, std::string_view b);
    // Queues a small control message even over the limit.
    void push_control(uint8_t kind, uint64_t id, int32_t arg)
    {
        append_frame(kind, 0, id, arg, std::string_view(), std::string_view());
    }

    // Bytes queued and not yet taken by the transport. A pending limit of
    // 0 means unbounded.
    size_t pending() const { return out_.readable(); }
    void set_max_pending(size_t n) { max_pending_ = n; }
    bool full() const { return max_pending_ && out_.readable() >= max_pending_; }
    // Drops the queue.
    void discard() { out_.clear(); }
    // Largest frame, header included (kMaxRecord unless a transport needs less).
    void set_max_frame(size_t n) { max_frame_ = n < kMaxRecord ? n : kMaxRecord; }

    // The transport's view of the queue: whole frames from queued(), of
    // which it reports the first n bytes sent().
    const char* queued() const { return out_.peek(); }
    void sent(size_t n) { out_.consume(n); }
    // Bytes of the whole frames at the start of p[0, n), at most limit.
    // Inline: it runs on every flush and receive of a ring channel.
    static size_t whole_frames(const char* p, size_t n, size_t limit)
    {
        size_t off = 0;
        while (off + sizeof(FrameHeader) <= n) {
            FrameHeader h;
            memcpy(&h, p + off, sizeof(h));
            size_t f = sizeof(h) + h.len;
            if (f > limit - off || f > n - off)
                break;
            off += f;
        }
        return off;
    }

    // kRecvBatch * kMaxRecord bytes for the transport to read into; the
    // pages are touched only when used.
    char* record_buffer()
    {
        if (!rbuf_)
            rbuf_.reset(new char[kRecvBatch * kMaxRecord]);
        return rbuf_.get();
    }
    // Hands each complete message in the n bytes of frames at p to
    // fn(header, payload); a frame cut short ends the record.
    template <class Fn>
    void dispatch(const char* p, size_t n, Fn&& fn);

    // Drops the queue and every unfinished message; the frame size goes
    // back to kMaxRecord, the pending limit stays.
    void clear()
    {
        out_.clear();
        partial_.clear();
        max_frame_ = kMaxRecord;
    }

private:
    void append_frame(uint8_t kind, uint8_t flags, uint64_t id, int32_t arg, std::string_view a,
                      std::string_view b);
    // A fragment: joins it to the message of its sender; returns true and
    // fills *h and *whole when it completed one.
    bool join(FrameHeader* h, std::string_view payload, std::string* whole);

    Buffer out_;
    size_t max_pending_ = 0;
    size_t max_frame_ = kMaxRecord;
    std::unique_ptr<char[]> rbuf_;
    std::unordered_map<uint32_t, std::string> partial_;  // src pid -> message so far
};

template <class Fn>
void FrameCodec::dispatch(const char* p, size_t n, Fn&& fn)
{
    size_t off = 0;
    while (off + sizeof(FrameHeader) <= n) {
        FrameHeader h;
        memcpy(&h, p + off, sizeof(h));
        off += sizeof(h);
        if (h.len > n - off)
            return;  // malformed record: drop the rest
        std::string_view payload(p + off, h.len);
        off += h.len;
        if (!h.flags) {
            fn(h, payload);
            continue;
        }
        std::string whole;
        if (join(&h, payload, &whole))
            fn(h, std::string_view(whole));
    }
}

// The output queue as both channel types show it to their users: each
// call goes to the channel's FrameCodec. A base with no virtual function,
// so SocketChannel and RingChannel share these calls at no cost.
class FramedChannel {
public:
    // Queues one message; false (nothing queued) over the pending limit.
    bool push(uint8_t kind, uint64_t id, int32_t arg, std::string_view data)
    {
        return frames_.push(kind, id, arg, data);
    }
    bool push2(uint8_t kind, uint64_t id, int32_t arg, std::string_view a, std::string_view b)
    {
        return frames_.push2(kind, id, arg, a, b);
    }
    void push_control(uint8_t kind, uint64_t id, int32_t arg) { frames_.push_control(kind, id, arg); }
    size_t pending() const { return frames_.pending(); }
    void set_max_pending(size_t n) { frames_.set_max_pending(n); }
    bool full() const { return frames_.full(); }
    void discard() { frames_.discard(); }

protected:
    FrameCodec frames_;
};

}  // namespace zan

#endif
