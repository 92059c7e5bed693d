#include "zan/channel.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zan/sys.h"

namespace zan {

bool Channel::make_pair(Channel* a, Channel* b)
{
    Fd x, y;
    if (!make_socketpair(SOCK_SEQPACKET, true, &x, &y))
        return false;
    // Ask for room for many records; the kernel caps this at wmem_max.
    int sz = 4 * 1024 * 1024;
    for (int fd : {x.get(), y.get()}) {
        if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
            ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
            ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    *a = Channel(std::move(x));
    *b = Channel(std::move(y));
    return true;
}

Channel::Channel(Fd fd) : fd_(std::move(fd)) {}

void Channel::attach_ring(Ring tx, Ring rx, int peer_wake, int32_t* peer_sleeping)
{
    fd_.reset();
    tx_ = tx;
    rx_ = rx;
    // A frame must fit in the ring with room to spare, or a full-size
    // one would wait forever: small rings get smaller fragments.
    max_frame_ = tx.capacity() / 2 < kMaxRecord ? tx.capacity() / 2 : kMaxRecord;
    peer_wake_ = peer_wake;
    peer_sleeping_ = peer_sleeping;
}

void Channel::prepare_sleep(int32_t* word)
{
    __atomic_store_n(word, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);  // the word is set before the rings are checked
}

void Channel::end_sleep(int32_t* word)
{
    if (__atomic_load_n(word, __ATOMIC_RELAXED))
        __atomic_store_n(word, 0, __ATOMIC_RELAXED);
}

bool Channel::yield_to_peers(int turns, const std::vector<Channel*>& chans, int* taken)
{
    for (int t = 0; t < turns; t++) {
        bool awake = false;
        for (const Channel* ch : chans)
            awake = awake || ch->peer_awake();
        if (!awake)
            return false;
        ::sched_yield();
        if (taken)
            ++*taken;
        for (const Channel* ch : chans) {
            if (ch->ready())
                return true;
        }
    }
    return false;
}

// One eventfd write wakes the peer's epoll_wait (it watches the eventfd
// edge-triggered and never reads it: the counter cannot reach its limit).
void Channel::wake_peer()
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = ::write(peer_wake_, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

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

size_t Channel::ring_read(size_t limit)
{
    size_t avail = rx_.readable();
    if (avail == 0)
        return 0;
    if (!rbuf_)
        rbuf_.reset(new char[kRecvBatch * kMaxRecord]);
    size_t n = avail < limit ? avail : limit;
    rx_.copy_out(rbuf_.get(), n);
    size_t whole = whole_frames(rbuf_.get(), n, n);
    if (whole == 0) {
        // Writers publish whole frames of at most kMaxRecord bytes (less
        // for a small ring), and limit >= kMaxRecord: this is not a frame. Drop what is there
        // rather than stall on it forever.
        rx_.consume(avail);
        if (rx_.take_want_space())
            wake_peer();
        return 0;
    }
    rx_.consume(whole);
    if (rx_.take_want_space())
        wake_peer();
    return whole;
}

int Channel::ring_flush()
{
    for (int tries = 0; tries < 2; tries++) {
        if (out_.empty())
            return 1;
        if (!tx_.lock())
            return -1;
        size_t take = whole_frames(out_.peek(), out_.readable(), tx_.writable());
        if (take > 0)
            tx_.write(out_.peek(), take);
        tx_.unlock();
        if (take > 0) {
            out_.consume(take);
            // Published before the word is read (pairs with prepare_sleep()).
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (__atomic_load_n(peer_sleeping_, __ATOMIC_RELAXED) &&
                __atomic_exchange_n(peer_sleeping_, 0, __ATOMIC_ACQ_REL))
                wake_peer();
        }
        if (out_.empty())
            return 1;
        // Full: ask to be woken when there is room, then look once more
        // in case the consumer made room before it could see the flag.
        tx_.want_space();
    }
    return 0;
}

void Channel::append_frame(uint8_t kind, uint8_t flags, uint64_t id, int32_t arg,
                           std::string_view a, std::string_view b)
{
    FrameHeader h;
    h.len = static_cast<uint32_t>(a.size() + b.size());
    h.kind = kind;
    h.flags = flags;
    h.reserved = 0;
    h.src = static_cast<uint32_t>(current_pid());
    h.arg = arg;
    h.id = id;
    out_.ensure_writable(sizeof(h) + h.len);
    char* p = out_.begin_write();
    memcpy(p, &h, sizeof(h));
    if (!a.empty())
        memcpy(p + sizeof(h), a.data(), a.size());
    if (!b.empty())
        memcpy(p + sizeof(h) + a.size(), b.data(), b.size());
    out_.commit(sizeof(h) + h.len);
}

bool Channel::push(uint8_t kind, uint64_t id, int32_t arg, std::string_view data)
{
    return push2(kind, id, arg, data, std::string_view());
}

void Channel::push_control(uint8_t kind, uint64_t id, int32_t arg)
{
    append_frame(kind, 0, id, arg, std::string_view(), std::string_view());
}

bool Channel::push2(uint8_t kind, uint64_t id, int32_t arg, std::string_view a,
                    std::string_view b)
{
    if (full())
        return false;
    const size_t kMaxPayload = max_frame_ - sizeof(FrameHeader);
    size_t total = a.size() + b.size();
    if (total <= kMaxPayload) {
        append_frame(kind, 0, id, arg, a, b);
        return true;
    }
    // Split into fragments of at most kMaxPayload bytes.
    std::string joined;
    std::string_view all = a;
    if (!b.empty()) {
        joined.reserve(total);
        joined.append(a.data(), a.size()).append(b.data(), b.size());
        all = joined;
    }
    for (size_t off = 0; off < total; off += kMaxPayload) {
        size_t n = total - off < kMaxPayload ? total - off : kMaxPayload;
        uint8_t flags = kFragPart | (off == 0 ? kFragFirst : 0) | (off + n < total ? kFragMore : 0);
        append_frame(kind, flags, id, arg, all.substr(off, n), std::string_view());
    }
    return true;
}

int Channel::flush()
{
    if (tx_.valid())
        return ring_flush();
    enum { kBatch = 32 };
    while (!out_.empty()) {
        struct mmsghdr msgs[kBatch];
        struct iovec iov[kBatch];
        const char* p = out_.peek();
        size_t avail = out_.readable();
        size_t off = 0;
        unsigned cnt = 0;
        // Cut the queued frames into records at frame boundaries.
        while (cnt < kBatch && off < avail) {
            size_t start = off;
            while (off < avail) {
                FrameHeader h;
                memcpy(&h, p + off, sizeof(h));
                size_t fsz = sizeof(h) + h.len;
                if (off > start && off - start + fsz > kMaxRecord)
                    break;
                off += fsz;
            }
            iov[cnt].iov_base = const_cast<char*>(p + start);
            iov[cnt].iov_len = off - start;
            memset(&msgs[cnt], 0, sizeof(msgs[cnt]));
            msgs[cnt].msg_hdr.msg_iov = &iov[cnt];
            msgs[cnt].msg_hdr.msg_iovlen = 1;
            cnt++;
        }
        int sent;
        do
            sent = ::sendmmsg(fd_.get(), msgs, cnt, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (sent < 0 && errno == EINTR);
        if (sent < 0)
            return errno == EAGAIN || errno == ENOBUFS ? 0 : -1;
        size_t done = 0;
        for (int i = 0; i < sent; i++)
            done += iov[i].iov_len;
        out_.consume(done);
        if (static_cast<unsigned>(sent) < cnt)
            return 0;
    }
    return 1;
}

bool Channel::flush_wait(int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        int r = flush();
        if (r == 1)
            return true;
        if (r < 0)
            return false;
        long long left = deadline - monotonic_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return false;
        }
        if (tx_.valid()) {
            // Nothing to poll: the room comes back as the consumer reads.
            // (Our eventfd is no use here: waiting on it means draining
            // it, and a predecessor and its successor share it, so the
            // drain could swallow the successor's wake-up. Exit paths
            // only: a 1 ms poll costs nothing there.)
            ::poll(nullptr, 0, 1);
            continue;
        }
        struct pollfd pfd = {fd_.get(), POLLOUT, 0};
        if (::poll(&pfd, 1, static_cast<int>(left)) < 0 && errno != EINTR)
            return false;
    }
}

int Channel::recv_records(int want)
{
    if (!rbuf_)
        rbuf_.reset(new char[kRecvBatch * kMaxRecord]);
    struct mmsghdr msgs[kRecvBatch];
    struct iovec iov[kRecvBatch];
    for (int i = 0; i < want; i++) {
        iov[i].iov_base = rbuf_.get() + static_cast<size_t>(i) * kMaxRecord;
        iov[i].iov_len = kMaxRecord;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n;
    do
        n = ::recvmmsg(fd_.get(), msgs, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++)
        rlen_[i] = msgs[i].msg_len;
    return n;
}

}  // namespace zan
