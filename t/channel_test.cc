// Channel: the run-time choice of transport. Each transport is tested on
// its own (socket_channel_test.cc, ring_channel_test.cc); here, that a
// Channel holds the one it was made with, hands every call to it, and
// keeps its framing state when attach_ring() or reset() changes it.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/test_env.h"
#include "zan/detail/channel.h"
#include "zan/fd.h"
#include "zan/detail/ring.h"
#include "zan/detail/shm.h"

namespace {

struct Msg {
    uint8_t kind;
    uint64_t id;
    int32_t arg;
    std::string data;
};

std::vector<Msg> drain(zan::Channel& ch)
{
    std::vector<Msg> out;
    while (ch.receive([&](const zan::FrameHeader& h, std::string_view d) {
        out.push_back(Msg{h.kind, h.id, h.arg, std::string(d)});
    }) > 0) {
    }
    return out;
}

// Two ring channels A <-> B, wired as zan/process.cc wires a NetWorker
// and a Worker; words[0] is A's sleeping word, words[1] B's.
struct RingPair {
    zan::ShmRegion shm;
    zan::Ring ab, ba;
    int32_t* words = nullptr;
    zan::Fd efd_a, efd_b;
    zan::Channel a, b;

    bool init()
    {
        const size_t cap = 64 * 1024;
        if (!shm.create(2 * zan::Ring::shm_bytes(cap) + 4096) || !ab.place(shm, cap) ||
            !ba.place(shm, cap) || (words = shm.alloc<int32_t>(2)) == nullptr)
            return false;
        efd_a.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        efd_b.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!efd_a || !efd_b)
            return false;
        a.attach_ring(ab, ba, efd_b.get(), &words[1]);
        b.attach_ring(ba, ab, efd_a.get(), &words[0]);
        return true;
    }
};

}  // namespace

TEST(Channel, SocketTransport)
{
    zan::Channel none;
    EXPECT_FALSE(none.valid());
    EXPECT_FALSE(none.ring_mode());
    EXPECT_EQ(none.fd(), -1);

    zan::Channel a, b;
    ASSERT_TRUE(zan::Channel::make_pair(&a, &b));
    EXPECT_TRUE(a.valid());
    EXPECT_FALSE(a.ring_mode());
    ASSERT_NE(a.socket(), nullptr);
    EXPECT_EQ(a.ring(), nullptr);
    EXPECT_EQ(a.fd(), a.socket()->fd());
    EXPECT_GE(a.fd(), 0);
    EXPECT_FALSE(a.ready());
    EXPECT_FALSE(a.peer_awake());

    ASSERT_TRUE(a.push(1, 10, -1, "one"));
    ASSERT_TRUE(a.push2(2, 20, -2, "tw", "o"));
    a.push_control(3, 30, -3);
    EXPECT_EQ(a.pending(), 3 * sizeof(zan::FrameHeader) + 6);
    ASSERT_EQ(a.flush(), 1);
    EXPECT_EQ(a.pending(), 0u);
    ASSERT_TRUE(zt::wait_fd(b.fd(), POLLIN, 5000));
    std::vector<Msg> got = drain(b);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].data, "one");
    EXPECT_EQ(got[1].data, "two");
    EXPECT_EQ(got[1].id, 20u);
    EXPECT_EQ(got[2].kind, 3);
    EXPECT_EQ(got[2].arg, -3);

    a.set_max_pending(100);
    while (a.push(1, 0, 0, std::string(40, 'x'))) {
    }
    EXPECT_TRUE(a.full());
    a.discard();
    EXPECT_EQ(a.pending(), 0u);
    EXPECT_TRUE(a.flush_wait(1000));

    a.reset();
    EXPECT_FALSE(a.valid());
    int r = b.receive([](const zan::FrameHeader&, std::string_view) {});
    EXPECT_EQ(r, -1);
    EXPECT_EQ(errno, ECONNRESET);
}

TEST(Channel, RingTransport)
{
    RingPair p;
    ASSERT_TRUE(p.init());
    EXPECT_TRUE(p.a.ring_mode());
    EXPECT_TRUE(p.a.valid());
    EXPECT_EQ(p.a.fd(), -1);
    ASSERT_NE(p.a.ring(), nullptr);
    EXPECT_EQ(p.a.socket(), nullptr);
    EXPECT_FALSE(p.b.ready());
    EXPECT_TRUE(p.a.peer_awake());

    ASSERT_TRUE(p.a.push(1, 10, -1, "one"));
    ASSERT_TRUE(p.a.push2(2, 20, -2, "tw", "o"));
    EXPECT_FALSE(p.b.ready());
    ASSERT_EQ(p.a.flush(), 1);
    EXPECT_TRUE(p.b.ready());
    std::vector<Msg> got = drain(p.b);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].data, "one");
    EXPECT_EQ(got[1].data, "two");
    EXPECT_EQ(got[1].arg, -2);

    // The wake-up protocol goes to RingChannel's.
    zan::Channel::prepare_sleep(&p.words[1]);
    EXPECT_FALSE(p.a.peer_awake());
    p.b.push_control(4, 40, 0);
    ASSERT_TRUE(p.b.flush_wait(1000));
    EXPECT_EQ(p.words[1], 1);  // B's word: B's own flush wakes A, not B
    zan::Channel::end_sleep(&p.words[1]);
    EXPECT_TRUE(p.a.peer_awake());
    int taken = 0;
    std::vector<zan::Channel*> a_side{&p.a};
    EXPECT_TRUE(zan::Channel::yield_to_peers(3, a_side, &taken));
    EXPECT_EQ(taken, 1);
    got = drain(p.a);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].id, 40u);

    // A channel over a socket has no sleeping word to read: never yields.
    zan::Channel s1, s2;
    ASSERT_TRUE(zan::Channel::make_pair(&s1, &s2));
    EXPECT_FALSE(s1.peer_awake());
    EXPECT_FALSE(zan::Channel::yield_to_peers(3, std::vector<zan::Channel*>{&s1}, &taken));
    EXPECT_EQ(taken, 1);
    EXPECT_FALSE(zan::Channel::yield_to_peers(3, std::vector<zan::Channel*>{}));
}

// attach_ring() closes the descriptor but keeps the queue and its limit;
// reset() goes back to an empty socket transport and keeps the limit.
TEST(Channel, ChangingTransportKeepsFramingState)
{
    RingPair p;
    ASSERT_TRUE(p.init());
    zan::Channel a, other;
    ASSERT_TRUE(zan::Channel::make_pair(&a, &other));
    int fd = a.fd();
    a.set_max_pending(200);
    ASSERT_TRUE(a.push(1, 1, 0, "queued before"));
    a.attach_ring(p.ab, p.ba, p.efd_b.get(), &p.words[1]);
    EXPECT_TRUE(a.ring_mode());
    EXPECT_EQ(a.fd(), -1);
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // the socket end is closed
    EXPECT_EQ(a.pending(), sizeof(zan::FrameHeader) + 13);
    while (a.push(1, 2, 0, std::string(40, 'x'))) {
    }
    EXPECT_TRUE(a.full());
    ASSERT_EQ(a.flush(), 1);
    std::vector<Msg> got = drain(p.b);
    ASSERT_GE(got.size(), 2u);
    EXPECT_EQ(got[0].data, "queued before");

    ASSERT_TRUE(a.push(1, 3, 0, "dropped"));
    a.reset();
    EXPECT_FALSE(a.ring_mode());
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(a.pending(), 0u);
    EXPECT_FALSE(p.b.ready());
    while (a.push(1, 4, 0, std::string(40, 'x'))) {
    }
    EXPECT_TRUE(a.full());
}
