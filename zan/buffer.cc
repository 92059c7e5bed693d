#include "zan/buffer.h"

#include <assert.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace zan {

void Buffer::prepend(const void* data, size_t len)
{
    assert(len <= prependable());
    read_ -= len;
    memcpy(buf_.data() + read_, data, len);
}

void Buffer::make_space(size_t len)
{
    size_t n = readable();
    // prependable() may be below kCheapPrepend after prepend(): add, don't subtract.
    if (prependable() + writable() >= kCheapPrepend + len) {
        // Enough room overall: slide the readable bytes to the front.
        memmove(buf_.data() + kCheapPrepend, peek(), n);
        read_ = kCheapPrepend;
        write_ = read_ + n;
        return;
    }
    size_t want = kCheapPrepend + n + len;
    size_t cap = buf_.size() * 2;
    if (cap < want)
        cap = want;
    std::vector<char> nb(cap);
    memcpy(nb.data() + kCheapPrepend, peek(), n);
    buf_.swap(nb);
    read_ = kCheapPrepend;
    write_ = read_ + n;
}

void Buffer::shrink_if_empty(size_t keep)
{
    if (!empty() || buf_.size() <= kCheapPrepend + keep)
        return;
    std::vector<char> nb(kCheapPrepend + keep);
    buf_.swap(nb);
    clear();
}

ssize_t Buffer::read_fd(int fd, int* saved_errno)
{
    char extra[65536];
    struct iovec iov[2];
    size_t w = writable();
    iov[0].iov_base = begin_write();
    iov[0].iov_len = w;
    iov[1].iov_base = extra;
    iov[1].iov_len = sizeof(extra);
    int cnt = w < sizeof(extra) ? 2 : 1;
    ssize_t n;
    do
        n = ::readv(fd, iov, cnt);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        *saved_errno = errno;
        return -1;
    }
    size_t un = static_cast<size_t>(n);
    if (un <= w) {
        write_ += un;
    } else {
        write_ = buf_.size();
        append(extra, un - w);
    }
    return n;
}

ssize_t Buffer::write_fd(int fd, int* saved_errno)
{
    ssize_t n;
    do
        n = ::send(fd, peek(), readable(), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) {
        do
            n = ::write(fd, peek(), readable());
        while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
        *saved_errno = errno;
        return -1;
    }
    consume(static_cast<size_t>(n));
    return n;
}

}  // namespace zan
