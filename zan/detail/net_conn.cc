#include "zan/detail/net_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "zan/event_loop.h"
#include "zan/log.h"

namespace zan {

static const size_t kSendfileChunk = 1u << 20;

void NetConn::open(int sock, uint32_t generation, int home_worker, long long now)
{
    fd.reset(sock);
    gen = generation;
    used = true;
    awaiting = read_closed = ack_wait = close_after_flush = paused = false;
    half_close_due = false;
    dirty = want_write = false;
    last_worker = -1;
    uid = 0;
    reject_after = last_seen = lingering = false;
    streaming = stream_full = false;
    stream_worker = -1;
    stream_flags = 0;
    stream_unacked = 0;
    drain_worker = -1;
    drain_below = 0;
    linger_until = 0;
    inflight = messages = 0;
    reply_seq = 0;
    recv_us = 0;
    replies_done = 0;
    partial_since = 0;
    last_active = last_read = now;
    home = home_worker;
}

uint32_t NetConn::interest(bool stopping) const
{
    if (lingering)
        return kReadable;  // its output is written: only the client's end is awaited
    uint32_t m = 0;
    if (!read_closed && !paused && !stream_full && !last_seen && !stopping)
        m |= kReadable;
    if (want_write)
        m |= kWritable;
    return m;
}

void NetConn::append_out(std::string_view data)
{
    ConnIo& o = x();
    if (o.segs.empty()) {
        o.out.append(data);
    } else if (!o.segs.back().is_file()) {
        o.segs.back().bytes.append(data.data(), data.size());
    } else {
        o.segs.emplace_back();
        o.segs.back().bytes.assign(data.data(), data.size());
    }
}

void NetConn::append_file(std::string_view path, off_t offset, size_t left)
{
    ConnIo& o = x();
    o.segs.emplace_back();
    Segment& sg = o.segs.back();
    sg.path.assign(path.data(), path.size());
    sg.offset = offset;
    sg.left = left;
}

// Sends what is left of the file region at the head of the queue:
// 1 when all of it is sent, 0 when the socket is full, -1 on an error
// (in *err).
static int send_file(int sock, Segment& sg, int* err, size_t* wrote)
{
    if (!sg.file && sg.left > 0) {
        sg.file = Fd(::open(sg.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!sg.file) {
            // The Worker promised these bytes (its headers are sent):
            // cut the connection rather than send a short body.
            *err = errno;
            log_errno(Level::warn, errno, "sendfile: open(%s)", sg.path.c_str());
            return -1;
        }
    }
    while (sg.left > 0) {
        ssize_t n = ::sendfile(sock, sg.file.get(), &sg.offset,
                               sg.left < kSendfileChunk ? sg.left : kSendfileChunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            return errno == EAGAIN ? 0 : -1;
        }
        if (n == 0) {  // the file shrank under us: the reply is cut short
            *err = EIO;
            return -1;
        }
        sg.left -= static_cast<size_t>(n);
        *wrote += static_cast<size_t>(n);
    }
    return 1;
}

bool NetConn::write_out(int* err, size_t* wrote)
{
    if (!io)
        return true;
    ConnIo& o = *io;
    for (;;) {
        if (!o.out.empty()) {
            ssize_t n = o.out.write_fd(fd.get(), err);
            if (n < 0)
                return *err == EAGAIN;
            *wrote += static_cast<size_t>(n);
            if (!o.out.empty())
                return true;  // short write: the socket is full
        }
        if (o.segs.empty())
            return true;
        Segment& sg = o.segs.front();
        if (!sg.is_file()) {
            o.out.append(sg.bytes);
            o.segs.erase(o.segs.begin());
            continue;
        }
        int r = send_file(fd.get(), sg, err, wrote);
        if (r <= 0)
            return r == 0;
        o.segs.erase(o.segs.begin());
    }
}

size_t NetConn::queued() const
{
    if (!io)
        return 0;
    size_t n = io->out.readable();
    for (const Segment& sg : io->segs)
        n += sg.is_file() ? sg.left : sg.bytes.size();
    return n;
}

int NetConn::trim()
{
    int freed = 0;
    if (io && no_input() && no_output() && no_deferred()) {
        io.reset();
        freed++;
    }
    if (protocol && no_input()) {
        protocol.reset();
        freed++;
    }
    return freed;
}

}  // namespace zan
