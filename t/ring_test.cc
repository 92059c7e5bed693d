// Ring: the shared-memory byte ring (accounting, wrap-around, the
// want-space flag, a producer killed holding the lock). RingChannel's
// framing and wake-ups over a pair of rings are in ring_channel_test.cc.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/fork_helpers.h"
#include "t/tmp_helpers.h"
#include "zan/fd.h"
#include "zan/log.h"
#include "zan/detail/ring.h"
#include "zan/detail/shm.h"
#include "zan/detail/shm_mutex.h"
#include "zan/sys.h"

namespace {

using zt::Child;
using zt::read_byte;

// Byte i of an endless test pattern.
char pat(uint64_t i) { return static_cast<char>((i * 131 + (i >> 9) * 7 + 13) & 0xff); }

std::string pattern(size_t n, uint64_t seed)
{
    std::string s(n, '\0');
    for (size_t j = 0; j < n; j++)
        s[j] = pat(seed + j);
    return s;
}

}  // namespace

TEST(Ring, PlaceValidatesCapacity)
{
    zan::ShmRegion shm;
    ASSERT_TRUE(shm.create(1 << 20));
    for (size_t bad : {size_t(0), size_t(1), size_t(1000), size_t(2048), size_t(4095),
                       size_t(4097), size_t(6000), size_t(12288), size_t(65535)}) {
        zan::Ring r;
        errno = 0;
        EXPECT_FALSE(r.place(shm, bad)) << bad;
        EXPECT_EQ(errno, EINVAL) << bad;
        EXPECT_FALSE(r.valid()) << bad;
    }
    EXPECT_EQ(shm.used(), 0u);  // a rejected capacity takes no memory
    zan::Ring r4, r8;
    ASSERT_TRUE(r4.place(shm, 4096)) << strerror(errno);
    ASSERT_TRUE(r8.place(shm, 8192)) << strerror(errno);
    EXPECT_TRUE(r4.valid());
    EXPECT_EQ(r4.capacity(), 4096u);
    EXPECT_EQ(r8.capacity(), 8192u);
    EXPECT_LE(shm.used(), zan::Ring::shm_bytes(4096) + zan::Ring::shm_bytes(8192));
    EXPECT_TRUE(r4.empty());
    EXPECT_EQ(r4.readable(), 0u);
    EXPECT_EQ(r4.writable(), 4096u);

    // Out of room: ENOMEM, not a ring overlapping the end of the mapping.
    zan::ShmRegion small;
    ASSERT_TRUE(small.create(8192));
    zan::Ring big;
    errno = 0;
    EXPECT_FALSE(big.place(small, 8192));
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_FALSE(big.valid());
}

TEST(Ring, AccountingAndWrapAround)
{
    zan::ShmRegion shm;
    ASSERT_TRUE(shm.create(1 << 16));
    zan::Ring r;
    const size_t cap = 4096;
    ASSERT_TRUE(r.place(shm, cap));

    // Fill exactly, then empty exactly.
    std::string full = pattern(cap, 5);
    ASSERT_TRUE(r.lock());
    r.write(full.data(), full.size());
    r.unlock();
    EXPECT_EQ(r.readable(), cap);
    EXPECT_EQ(r.writable(), 0u);
    EXPECT_FALSE(r.empty());
    std::string out(cap, '\0');
    r.copy_out(&out[0], cap);
    EXPECT_EQ(out, full);
    EXPECT_EQ(r.readable(), cap);  // copy_out() does not consume
    r.consume(cap);
    EXPECT_EQ(r.readable(), 0u);
    EXPECT_EQ(r.writable(), cap);
    EXPECT_TRUE(r.empty());

    // Many writes and reads of varying sizes, so that both cross the end
    // of the buffer at every possible offset; every byte is checked.
    uint64_t wpos = 0, rpos = 0;  // bytes written / read in this phase
    uint32_t rng = 2463534242u;
    auto next = [&] {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        return rng;
    };
    size_t wraps = 0;
    std::string buf(cap, '\0');
    for (int round = 0; round < 10000; round++) {
        size_t room = r.writable();
        ASSERT_EQ(room, cap - static_cast<size_t>(wpos - rpos));
        size_t n = room ? next() % (room + 1) : 0;
        if (round % 97 == 0)
            n = room;  // fill to the brim now and then
        std::string s = pattern(n, wpos);
        ASSERT_TRUE(r.lock());
        r.write(s.data(), n);
        r.unlock();
        if ((wpos % cap) + n > cap)
            wraps++;
        wpos += n;
        ASSERT_EQ(r.readable(), static_cast<size_t>(wpos - rpos));
        ASSERT_EQ(r.writable(), cap - static_cast<size_t>(wpos - rpos));

        size_t avail = r.readable();
        size_t m = avail ? next() % (avail + 1) : 0;
        if (round % 89 == 0)
            m = avail;
        if (round % 8 == 0) {
            // Peek at more than we consume: copy_out() must be repeatable.
            r.copy_out(&buf[0], avail);
            ASSERT_EQ(memcmp(buf.data(), pattern(avail, rpos).data(), avail), 0) << "round " << round;
        }
        std::fill(buf.begin(), buf.end(), '\0');
        r.copy_out(&buf[0], m);
        ASSERT_EQ(memcmp(buf.data(), pattern(m, rpos).data(), m), 0) << "round " << round;
        r.consume(m);
        rpos += m;
        ASSERT_EQ(r.readable(), static_cast<size_t>(wpos - rpos));
    }
    EXPECT_GT(wraps, 500u);
    EXPECT_GT(wpos, 1000u * cap);
}

TEST(Ring, WantSpaceIsTakenOnce)
{
    zan::ShmRegion shm;
    ASSERT_TRUE(shm.create(1 << 16));
    zan::Ring r;
    ASSERT_TRUE(r.place(shm, 4096));
    EXPECT_FALSE(r.take_want_space());  // never raised
    r.want_space();
    EXPECT_TRUE(r.take_want_space());
    EXPECT_FALSE(r.take_want_space());
    EXPECT_FALSE(r.take_want_space());
    // Raised twice before it is taken: still one wake-up.
    r.want_space();
    r.want_space();
    EXPECT_TRUE(r.take_want_space());
    EXPECT_FALSE(r.take_want_space());

    // The flag lives in shared memory: a child raises it, the parent takes it.
    Child child;
    ASSERT_TRUE(child.start([&] {
        r.want_space();
        return 0;
    }));
    ASSERT_EQ(child.wait(5000), 0);
    EXPECT_TRUE(r.take_want_space());
    EXPECT_FALSE(r.take_want_space());

    // One ring's flag is not another's.
    zan::Ring other;
    ASSERT_TRUE(other.place(shm, 4096));
    other.want_space();
    EXPECT_FALSE(r.take_want_space());
    EXPECT_TRUE(other.take_want_space());
}

TEST(Ring, ProducerKilledHoldingLockIsRecovered)
{
    zt::CapturedLog log("zan_ring_test");
    zan::ShmRegion shm;
    ASSERT_TRUE(shm.create(1 << 16));
    zan::Ring r;
    const size_t cap = 4096;
    ASSERT_TRUE(r.place(shm, cap));
    // White box: the ring's state is the first object in a fresh region,
    // its data the next (checked below before it is relied on).
    auto* st = static_cast<zan::RingState*>(shm.data());
    char* data = static_cast<char*>(shm.data()) +
                 ((sizeof(zan::RingState) + zan::ShmRegion::kCacheLine - 1) &
                  ~(zan::ShmRegion::kCacheLine - 1));

    // Published before the child runs: 3000 bytes, 1000 of them consumed,
    // so the dead producer's write would have wrapped.
    std::string before = pattern(3000, 0);
    ASSERT_TRUE(r.lock());
    r.write(before.data(), before.size());
    r.unlock();
    r.consume(1000);
    ASSERT_TRUE(r.lock());
    r.write(before.data(), 1500);  // tail at 4500: wraps
    r.unlock();
    std::string published = before.substr(1000) + before.substr(0, 1500);
    ASSERT_EQ(r.readable(), published.size());
    ASSERT_EQ(memcmp(data + 1000, published.data(), cap - 1000), 0) << "layout assumption";
    ASSERT_EQ(st->tail, 4500u);
    ASSERT_EQ(st->head, 1000u);

    zan::Fd ready_rd, ready_wr;
    ASSERT_TRUE(zan::make_pipe(false, &ready_rd, &ready_wr));
    Child child;
    ASSERT_TRUE(child.start([&] {
        if (!r.lock())
            return 1;
        // Half of a write: the bytes are copied into the free room but the
        // tail is never published (the process dies first).
        size_t at = static_cast<size_t>(st->tail) & (cap - 1);
        memset(data + at, 'X', r.writable());
        if (zan::write_all(ready_wr.get(), "r", 1) != 1)
            return 2;
        ::pause();  // hold the lock until SIGKILL
        return 3;
    }));
    ready_wr.reset();
    char c;
    ASSERT_TRUE(read_byte(ready_rd.get(), 5000, &c)) << "child exited: " << child.wait(0);
    EXPECT_EQ(st->lock.try_lock(), zan::ShmMutex::kBusy);  // the child holds it
    pid_t dead = child.pid();
    EXPECT_EQ(st->lock.holder(), dead);
    ASSERT_EQ(::kill(dead, SIGKILL), 0);
    ASSERT_EQ(child.wait(5000), 128 + SIGKILL);

    // Nothing of the half-written bytes is visible.
    EXPECT_EQ(r.readable(), published.size());
    EXPECT_EQ(r.writable(), cap - published.size());
    std::string out(published.size(), '\0');
    r.copy_out(&out[0], out.size());
    EXPECT_EQ(out, published);

    // The next lock() recovers the mutex and we can write on.
    ASSERT_TRUE(r.lock());
    EXPECT_EQ(st->lock.holder(), ::getpid());
    std::string more = pattern(r.writable(), 777);
    r.write(more.data(), more.size());
    r.unlock();
    EXPECT_EQ(r.writable(), 0u);
    std::string all(cap, '\0');
    r.copy_out(&all[0], cap);
    EXPECT_EQ(all, published + more);
    r.consume(cap);
    EXPECT_TRUE(r.empty());
    // Consistent again: an ordinary lock.
    EXPECT_EQ(st->lock.try_lock(), zan::ShmMutex::kLocked);
    EXPECT_TRUE(st->lock.unlock());
    ASSERT_TRUE(r.lock());
    r.unlock();
    std::string text = log.text();
    EXPECT_NE(text.find("holder pid " + std::to_string(dead) + " died"), std::string::npos)
        << text;
}
