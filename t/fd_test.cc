// Unit tests for zan::Fd: ownership moves, the descriptor is closed exactly
// once, release() gives it up and reset() swaps it.
#include "zan/fd.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <utility>

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

bool is_closed(int fd)
{
    errno = 0;
    return ::fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

// Returns the read end of a new pipe; the write end goes to *other.
int fresh_fd(int* other)
{
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0)
        return -1;
    *other = p[1];
    return p[0];
}

}  // namespace

TEST(Fd, DefaultIsInvalid)
{
    zan::Fd f;
    EXPECT_EQ(f.get(), -1);
    EXPECT_FALSE(f.valid());
    EXPECT_FALSE(static_cast<bool>(f));
    f.reset();  // resetting an empty Fd closes nothing
    EXPECT_EQ(f.get(), -1);
}

TEST(Fd, DestructorCloses)
{
    int w = -1;
    int r = fresh_fd(&w);
    ASSERT_GE(r, 0);
    {
        zan::Fd f(r);
        EXPECT_TRUE(f.valid());
        EXPECT_TRUE(static_cast<bool>(f));
        EXPECT_EQ(f.get(), r);
    }
    EXPECT_TRUE(is_closed(r));
    ::close(w);
}

TEST(Fd, MoveConstructTransfersOwnership)
{
    int w = -1;
    int r = fresh_fd(&w);
    ASSERT_GE(r, 0);
    auto a = std::make_unique<zan::Fd>(r);
    zan::Fd b(std::move(*a));
    EXPECT_EQ(a->get(), -1);
    EXPECT_EQ(b.get(), r);
    b.reset();
    EXPECT_TRUE(is_closed(r));
    // The lowest free number is r again: the moved-from Fd must not close it.
    int again = ::dup(w);
    ASSERT_GE(again, 0);
    a.reset();
    EXPECT_TRUE(is_open(again));
    ::close(again);
    ::close(w);
}

TEST(Fd, MoveAssignClosesPreviousTarget)
{
    int w1 = -1, w2 = -1;
    int r1 = fresh_fd(&w1);
    int r2 = fresh_fd(&w2);
    ASSERT_GE(r1, 0);
    ASSERT_GE(r2, 0);
    {
        zan::Fd a(r1);
        zan::Fd b(r2);
        b = std::move(a);
        EXPECT_TRUE(is_closed(r2));
        EXPECT_TRUE(is_open(r1));
        EXPECT_EQ(b.get(), r1);
        EXPECT_EQ(a.get(), -1);
    }
    EXPECT_TRUE(is_closed(r1));
    ::close(w1);
    ::close(w2);
}

TEST(Fd, SelfMoveAssignKeepsDescriptor)
{
    int w = -1;
    int r = fresh_fd(&w);
    ASSERT_GE(r, 0);
    zan::Fd a(r);
    zan::Fd& alias = a;
    a = std::move(alias);
    EXPECT_EQ(a.get(), r);
    EXPECT_TRUE(is_open(r));
    ::close(w);
}

TEST(Fd, ReleaseGivesUpOwnership)
{
    int w = -1;
    int r = fresh_fd(&w);
    ASSERT_GE(r, 0);
    int got;
    {
        zan::Fd f(r);
        got = f.release();
        EXPECT_EQ(f.get(), -1);
        EXPECT_FALSE(f.valid());
    }
    EXPECT_EQ(got, r);
    EXPECT_TRUE(is_open(r));
    ::close(r);
    ::close(w);
}

TEST(Fd, ResetClosesOldAndOwnsNew)
{
    int w1 = -1, w2 = -1;
    int r1 = fresh_fd(&w1);
    int r2 = fresh_fd(&w2);
    ASSERT_GE(r1, 0);
    ASSERT_GE(r2, 0);
    {
        zan::Fd f(r1);
        f.reset(r2);
        EXPECT_TRUE(is_closed(r1));
        EXPECT_EQ(f.get(), r2);
        f.reset();
        EXPECT_TRUE(is_closed(r2));
        EXPECT_EQ(f.get(), -1);
    }
    ::close(w1);
    ::close(w2);
}
