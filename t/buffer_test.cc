// Unit tests for zan::Buffer: append/consume/prepend, growth and
// compaction, read_fd through the 64 KiB extra area, write_fd with short
// writes, shrink_if_empty.
#include "zan/buffer.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "t/fork_helpers.h"
#include "zan/sys.h"

using zan::Buffer;
using zan::Fd;

namespace {

using zt::wait_child;

std::string pattern(size_t n, size_t from = 0)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i++)
        s[i] = static_cast<char>((from + i) % 251);
    return s;
}

// Reads everything now available on a non-blocking fd.
std::string drain(int fd)
{
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = zan::read_some(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

void expect_invariants(const Buffer& b)
{
    EXPECT_LE(b.prependable() + b.readable(), b.capacity());  // writable() did not wrap
    EXPECT_EQ(b.prependable() + b.readable() + b.writable(), b.capacity());
}

}  // namespace

TEST(Buffer, InitialState)
{
    Buffer b;
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.readable(), 0u);
    EXPECT_EQ(b.writable(), Buffer::kInitialSize);
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend);
    EXPECT_EQ(b.capacity(), Buffer::kCheapPrepend + Buffer::kInitialSize);
    Buffer small(8);
    EXPECT_EQ(small.writable(), 8u);
}

TEST(Buffer, AppendAndConsume)
{
    Buffer b;
    b.append("hello ");
    b.append(std::string_view("world"));
    b.append("!!", 1);
    EXPECT_EQ(b.view(), "hello world!");
    EXPECT_EQ(b.readable(), 12u);
    EXPECT_EQ(std::string(b.peek(), 5), "hello");
    b.consume(6);
    EXPECT_EQ(b.view(), "world!");
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend + 6);
    expect_invariants(b);
    b.consume(100);  // more than readable: everything, indices reset
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend);
    b.append("x");
    b.consume(1);  // exactly readable: also a reset
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend);
    b.append("abc");
    b.clear();
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.writable(), Buffer::kInitialSize);
}

TEST(Buffer, Prepend)
{
    Buffer b;
    b.append("payload");
    uint32_t len = 7;
    b.prepend(&len, sizeof(len));
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend - sizeof(len));
    EXPECT_EQ(b.readable(), sizeof(len) + 7);
    uint32_t got;
    memcpy(&got, b.peek(), sizeof(got));
    EXPECT_EQ(got, 7u);
    EXPECT_EQ(b.view().substr(4), "payload");
    b.prepend("0123456789ab", 12);  // the whole cheap prepend area
    EXPECT_EQ(b.prependable(), 0u);
    EXPECT_EQ(b.view().substr(0, 12), "0123456789ab");
    expect_invariants(b);
}

// Regression: after prepend() the read index is below kCheapPrepend; making
// room must still leave enough writable space (the size_t arithmetic in
// make_space() used to wrap and slide the data past the end).
TEST(Buffer, PrependThenAppendPastEnd)
{
    Buffer b(64);
    std::string body = pattern(60);
    b.append(body);
    b.prepend("HDR!", 4);
    std::string more = pattern(100, 60);
    b.append(more);
    expect_invariants(b);
    EXPECT_EQ(b.view(), "HDR!" + body + more);

    // prependable() + writable() < kCheapPrepend: the case that wrapped.
    Buffer c(64);
    c.append(pattern(63));
    c.prepend("HDR!", 4);
    ASSERT_LT(c.prependable() + c.writable(), Buffer::kCheapPrepend);
    c.ensure_writable(5);
    EXPECT_GE(c.writable(), 5u);
    expect_invariants(c);
    EXPECT_EQ(c.view(), "HDR!" + pattern(63));
}

TEST(Buffer, GrowsAndKeepsData)
{
    Buffer b(64);
    size_t cap0 = b.capacity();
    std::string s = pattern(200);
    b.append(s);
    EXPECT_GE(b.capacity(), Buffer::kCheapPrepend + 200);
    EXPECT_GT(b.capacity(), cap0);
    EXPECT_EQ(b.view(), s);
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend);
    // Growth at least doubles, so many small appends stay amortised O(1).
    Buffer d(64);
    d.append(pattern(64));
    d.append("x", 1);
    EXPECT_GE(d.capacity(), 2 * (Buffer::kCheapPrepend + 64));
    expect_invariants(d);
}

TEST(Buffer, CompactsInsteadOfGrowing)
{
    Buffer b(64);
    size_t cap = b.capacity();
    b.append(pattern(60));
    b.consume(50);
    b.append(pattern(40, 60));  // 4 writable, 50 reclaimable at the front
    EXPECT_EQ(b.capacity(), cap);
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend);
    EXPECT_EQ(b.view(), pattern(50, 50));
    expect_invariants(b);
}

TEST(Buffer, EnsureWritableAndCommit)
{
    Buffer b(16);
    b.append("ab");
    b.ensure_writable(100);
    ASSERT_GE(b.writable(), 100u);
    memcpy(b.begin_write(), "cdef", 4);
    b.commit(4);
    EXPECT_EQ(b.view(), "abcdef");
}

TEST(Buffer, ReadFdIntoWritableSpace)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w));
    ASSERT_EQ(zan::write_all(w.get(), "hello", 5), 5);
    Buffer b;
    int err = 0;
    EXPECT_EQ(b.read_fd(r.get(), &err), 5);
    EXPECT_EQ(b.view(), "hello");
    EXPECT_EQ(b.capacity(), Buffer::kCheapPrepend + Buffer::kInitialSize);
}

// More bytes are waiting than the buffer can hold: one readv(2) spills
// into the 64 KiB stack area and the buffer grows to take them.
TEST(Buffer, ReadFdGrowsPastCapacity)
{
    Fd a, b;
    ASSERT_TRUE(zan::make_socketpair(SOCK_STREAM, true, &a, &b));
    int sz = 1 << 20;
    ::setsockopt(a.get(), SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    ::setsockopt(b.get(), SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    const size_t total = 100000;
    std::string data = pattern(total);
    size_t sent = 0;
    while (sent < total) {
        ssize_t n = zan::write_some(a.get(), data.data() + sent, total - sent);
        ASSERT_GT(n, 0) << strerror(errno);  // the enlarged buffer holds it all
        sent += static_cast<size_t>(n);
    }

    Buffer buf(64);
    size_t w0 = buf.writable();
    int err = 0;
    ssize_t n = buf.read_fd(b.get(), &err);
    ASSERT_GT(n, static_cast<ssize_t>(w0)) << strerror(err);
    EXPECT_LE(n, static_cast<ssize_t>(w0 + 65536));
    EXPECT_EQ(buf.readable(), static_cast<size_t>(n));
    EXPECT_EQ(buf.view(), data.substr(0, static_cast<size_t>(n)));
    expect_invariants(buf);

    while (buf.readable() < total) {
        n = buf.read_fd(b.get(), &err);
        ASSERT_GT(n, 0) << strerror(err);
    }
    EXPECT_EQ(buf.view(), data);
    n = buf.read_fd(b.get(), &err);
    EXPECT_EQ(n, -1);
    EXPECT_EQ(err, EAGAIN);
    EXPECT_EQ(buf.view(), data);
}

// With at least 64 KiB writable the extra area is not used.
TEST(Buffer, ReadFdLargeBuffer)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w));
    std::string data = pattern(30000);
    ASSERT_EQ(zan::write_all(w.get(), data.data(), data.size()), 30000);
    Buffer b(1 << 17);
    size_t cap = b.capacity();
    int err = 0;
    EXPECT_EQ(b.read_fd(r.get(), &err), 30000);
    EXPECT_EQ(b.view(), data);
    EXPECT_EQ(b.capacity(), cap);
}

TEST(Buffer, ReadFdAtEofReturnsZero)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(false, &r, &w));
    ASSERT_EQ(zan::write_all(w.get(), "tail", 4), 4);
    w.reset();
    Buffer b;
    int err = 0;
    EXPECT_EQ(b.read_fd(r.get(), &err), 4);
    EXPECT_EQ(b.read_fd(r.get(), &err), 0);
    EXPECT_EQ(b.view(), "tail");
}

TEST(Buffer, ReadFdErrorsGoToSavedErrno)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w));
    Buffer b;
    b.append("keep");
    int err = 0;
    EXPECT_EQ(b.read_fd(r.get(), &err), -1);
    EXPECT_EQ(err, EAGAIN);
    EXPECT_EQ(b.view(), "keep");
    err = 0;
    EXPECT_EQ(b.read_fd(-1, &err), -1);
    EXPECT_EQ(err, EBADF);
}

// 1 MiB through a non-blocking socketpair: write_fd writes what fits,
// consumes exactly that, and reports EAGAIN once the socket is full.
TEST(Buffer, WriteFdShortWrites)
{
    Fd a, b;
    ASSERT_TRUE(zan::make_socketpair(SOCK_STREAM, true, &a, &b));
    const std::string data = pattern(1 << 20);
    Buffer out;
    out.append(data);
    std::string got;
    int short_writes = 0;
    int eagains = 0;
    while (!out.empty()) {
        size_t before = out.readable();
        int err = 0;
        ssize_t n = out.write_fd(a.get(), &err);
        if (n < 0) {
            ASSERT_EQ(err, EAGAIN);
            EXPECT_EQ(out.readable(), before);  // nothing consumed
            eagains++;
            got += drain(b.get());
            continue;
        }
        ASSERT_GT(n, 0);
        EXPECT_EQ(out.readable(), before - static_cast<size_t>(n));
        if (static_cast<size_t>(n) < before)
            short_writes++;
    }
    got += drain(b.get());
    EXPECT_GT(short_writes, 0);
    EXPECT_GT(eagains, 0);
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
    EXPECT_EQ(out.prependable(), Buffer::kCheapPrepend);  // consumed all: reset
}

TEST(Buffer, WriteFdToPipe)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w));
    Buffer out;
    out.append("through a pipe");
    int err = 0;
    EXPECT_EQ(out.write_fd(w.get(), &err), 14) << strerror(err);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(drain(r.get()), "through a pipe");
}

// write_fd sends with MSG_NOSIGNAL: a closed peer is EPIPE, not a signal,
// even with SIGPIPE at its default action (checked in a child).
TEST(Buffer, WriteFdClosedPeerNoSignal)
{
    Fd a, b;
    ASSERT_TRUE(zan::make_socketpair(SOCK_STREAM, false, &a, &b));
    b.reset();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::signal(SIGPIPE, SIG_DFL);
        Buffer out;
        out.append("x");
        int err = 0;
        ssize_t n = out.write_fd(a.get(), &err);
        _exit(n == -1 && err == EPIPE && out.readable() == 1 ? 0 : 1);
    }
    int st = wait_child(pid, 2000);
    ASSERT_NE(st, -1);
    EXPECT_FALSE(WIFSIGNALED(st)) << "killed by signal " << WTERMSIG(st);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(Buffer, ShrinkIfEmpty)
{
    Buffer b;
    b.append(pattern(100000));
    size_t big = b.capacity();
    ASSERT_GE(big, 100000u);
    b.shrink_if_empty();  // not empty: no change
    EXPECT_EQ(b.capacity(), big);
    EXPECT_EQ(b.view(), pattern(100000));

    b.consume(b.readable());
    b.shrink_if_empty(128);
    EXPECT_EQ(b.capacity(), Buffer::kCheapPrepend + 128);
    EXPECT_EQ(b.writable(), 128u);
    b.shrink_if_empty(4096);  // already smaller than asked: no change
    EXPECT_EQ(b.capacity(), Buffer::kCheapPrepend + 128);
    b.shrink_if_empty();
    EXPECT_EQ(b.capacity(), Buffer::kCheapPrepend);
    EXPECT_EQ(b.writable(), 0u);
    EXPECT_EQ(b.prependable(), Buffer::kCheapPrepend);

    b.append("still usable");
    EXPECT_EQ(b.view(), "still usable");
    expect_invariants(b);
}
