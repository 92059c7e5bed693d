#include "zan/detail/socket_channel.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "zan/sys.h"

namespace zan {

bool SocketChannel::make_pair(SocketChannel* a, SocketChannel* b)
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
    *a = SocketChannel(std::move(x));
    *b = SocketChannel(std::move(y));
    return true;
}

int SocketChannel::flush()
{
    enum { kBatch = 32 };
    while (frames_.pending() > 0) {
        struct mmsghdr msgs[kBatch];
        struct iovec iov[kBatch];
        const char* p = frames_.queued();
        size_t avail = frames_.pending();
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
        frames_.sent(done);
        if (static_cast<unsigned>(sent) < cnt)
            return 0;
    }
    return 1;
}

bool SocketChannel::flush_wait(int timeout_ms)
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

int SocketChannel::recv_records(int want)
{
    char* base = frames_.record_buffer();
    struct mmsghdr msgs[FrameCodec::kRecvBatch];
    struct iovec iov[FrameCodec::kRecvBatch];
    for (int i = 0; i < want; i++) {
        iov[i].iov_base = base + static_cast<size_t>(i) * kMaxRecord;
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
