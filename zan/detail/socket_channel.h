// SocketChannel: framed messages over one end of an AF_UNIX SOCK_SEQPACKET
// socketpair, batched for throughput.
//
// push() appends frames to a private output queue (FrameCodec); flush()
// sends them as records of up to kMaxRecord bytes (one sendmmsg(2)
// carries many records, one record carries many frames). Because
// SEQPACKET keeps record boundaries and a record is written whole or not
// at all:
//  - several processes may write to one end (each record stays intact);
//  - several processes may read from one end (each record goes to one);
//  - a reader or writer that dies never leaves the stream out of step.
// A message larger than one record is split into fragments that the
// reader reassembles per sending pid.
//
// Owns its descriptor (closed on destruction or reset()). Private to one
// process; a child that inherits one must reset() the ends it does not
// use. Used, through Channel, for the Workers' inboxes and every child's
// control channel with the Master.
#ifndef ZAN_DETAIL_SOCKET_CHANNEL_H
#define ZAN_DETAIL_SOCKET_CHANNEL_H

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

#include <string_view>
#include <utility>

#include "zan/fd.h"
#include "zan/detail/frame_codec.h"

namespace zan {

class SocketChannel : public FramedChannel {
public:
    static constexpr size_t kMaxRecord = FrameCodec::kMaxRecord;

    // Creates a SEQPACKET socketpair (non-blocking, close-on-exec) with
    // large socket buffers. Returns false with errno set.
    static bool make_pair(SocketChannel* a, SocketChannel* b);

    SocketChannel() = default;
    explicit SocketChannel(Fd fd) : fd_(std::move(fd)) {}
    SocketChannel(SocketChannel&&) = default;
    SocketChannel& operator=(SocketChannel&&) = default;

    int fd() const { return fd_.get(); }
    bool valid() const { return fd_.valid(); }
    // Closes the descriptor and drops the queue and unfinished messages.
    void reset()
    {
        fd_.reset();
        frames_.clear();
    }

    // push(), push2(), push_control(), pending(), set_max_pending(), full()
    // and discard(): the output queue, from FramedChannel.

    // Sends queued records. Returns 1 when everything was sent, 0 when the
    // socket is full (the rest stays queued: wait for writability), -1 on
    // error with errno set.
    int flush();
    // flush() and wait with poll(2) until everything is sent or timeout_ms
    // passes (for blocking-style processes). Returns false on timeout or
    // error.
    bool flush_wait(int timeout_ms);

    // Reads up to max_records records and hands each complete message to
    // fn(header, payload); the payload view is valid only during the call.
    // Returns the number of records read, 0 when none was ready, -1 on
    // error with errno set (ECONNRESET when the peer end is gone).
    template <class Fn>
    int receive(Fn&& fn, int max_records = 64);

private:
    friend class Channel;  // moves the framing state when it changes transport

    // Reads up to `want` records with one recvmmsg(2) into the record
    // buffer (record i at i * kMaxRecord, length rlen_[i]). Returns the
    // count or -1.
    int recv_records(int want);

    Fd fd_;
    size_t rlen_[FrameCodec::kRecvBatch] = {};
};

template <class Fn>
int SocketChannel::receive(Fn&& fn, int max_records)
{
    const int kBatch = FrameCodec::kRecvBatch;
    int got = 0;
    while (got < max_records) {
        int want = max_records - got < kBatch ? max_records - got : kBatch;
        int n = recv_records(want);
        if (n < 0)
            return got > 0 ? got : (errno == EAGAIN ? 0 : -1);
        const char* base = frames_.record_buffer();
        for (int i = 0; i < n; i++) {
            if (rlen_[i] == 0) {  // end of file: the peer end is closed
                errno = ECONNRESET;
                return got > 0 ? got : -1;
            }
            got++;
            frames_.dispatch(base + static_cast<size_t>(i) * kMaxRecord, rlen_[i], fn);
        }
        if (n < want)
            break;  // drained: spare the extra call that would say EAGAIN
    }
    return got;
}

}  // namespace zan

#endif
