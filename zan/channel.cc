#include "zan/channel.h"

#include <errno.h>
#include <poll.h>
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

bool Channel::push2(uint8_t kind, uint64_t id, int32_t arg, std::string_view a,
                    std::string_view b)
{
    if (full())
        return false;
    constexpr size_t kMaxPayload = kMaxRecord - sizeof(FrameHeader);
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
