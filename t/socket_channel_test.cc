// SocketChannel: framing, batching, fragmentation and the SEQPACKET
// properties the process model relies on (many writers, many readers, dead
// writers).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "t/test_env.h"
#include "zan/detail/socket_channel.h"

namespace {

struct Msg {
    uint8_t kind;
    uint64_t id;
    int32_t arg;
    std::string data;
};

std::vector<Msg> drain(zan::SocketChannel& ch, int max_records = 1000)
{
    std::vector<Msg> out;
    for (;;) {
        int r = ch.receive(
            [&](const zan::FrameHeader& h, std::string_view d) {
                out.push_back(Msg{h.kind, h.id, h.arg, std::string(d)});
            },
            max_records);
        if (r <= 0)
            break;
    }
    return out;
}

}  // namespace

TEST(SocketChannel, PushFlushReceiveInOrder)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    for (int i = 0; i < 1000; i++)
        ASSERT_TRUE(a.push(3, static_cast<uint64_t>(i), -i, "msg" + std::to_string(i)));
    EXPECT_GT(a.pending(), 0u);
    ASSERT_EQ(a.flush(), 1);
    EXPECT_EQ(a.pending(), 0u);
    std::vector<Msg> got = drain(b);
    ASSERT_EQ(got.size(), 1000u);
    for (int i = 0; i < 1000; i++) {
        EXPECT_EQ(got[static_cast<size_t>(i)].kind, 3);
        EXPECT_EQ(got[static_cast<size_t>(i)].id, static_cast<uint64_t>(i));
        EXPECT_EQ(got[static_cast<size_t>(i)].arg, -i);
        EXPECT_EQ(got[static_cast<size_t>(i)].data, "msg" + std::to_string(i));
    }
}

TEST(SocketChannel, BatchesManyFramesPerRecord)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    for (int i = 0; i < 100; i++)
        a.push(1, 0, 0, "0123456789");
    ASSERT_EQ(a.flush(), 1);
    // 100 small frames fit in one record: one receive of one record gets all.
    std::vector<Msg> got;
    int r = b.receive([&](const zan::FrameHeader&, std::string_view d) { got.push_back(Msg{0, 0, 0, std::string(d)}); }, 1);
    EXPECT_EQ(r, 1);
    EXPECT_EQ(got.size(), 100u);
}

TEST(SocketChannel, LargeMessagesAreFragmentedAndReassembled)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    std::vector<size_t> sizes = {0, 1, zan::SocketChannel::kMaxRecord - sizeof(zan::FrameHeader),
                                 zan::SocketChannel::kMaxRecord - sizeof(zan::FrameHeader) + 1,
                                 zan::SocketChannel::kMaxRecord * 3 + 17, 1000000};
    for (size_t i = 0; i < sizes.size(); i++) {
        std::string s(sizes[i], 'a');
        for (size_t j = 0; j < s.size(); j++)
            s[j] = static_cast<char>('a' + (j * 7 + i) % 26);
        ASSERT_TRUE(a.push2(2, i, 0, s.substr(0, s.size() / 3), s.substr(s.size() / 3)));
    }
    std::vector<Msg> got;
    while (got.size() < sizes.size()) {
        int f = a.flush();
        ASSERT_GE(f, 0);
        std::vector<Msg> more = drain(b);
        got.insert(got.end(), more.begin(), more.end());
        if (f == 1 && more.empty())
            break;
    }
    ASSERT_EQ(got.size(), sizes.size());
    for (size_t i = 0; i < sizes.size(); i++) {
        ASSERT_EQ(got[i].data.size(), sizes[i]) << i;
        for (size_t j = 0; j < sizes[i]; j++)
            ASSERT_EQ(got[i].data[j], static_cast<char>('a' + (j * 7 + i) % 26));
    }
}

TEST(SocketChannel, FullQueueRefusesPush)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    a.set_max_pending(1000);
    int accepted = 0;
    while (a.push(1, 0, 0, std::string(100, 'x')))
        accepted++;
    EXPECT_GE(accepted, 8);
    EXPECT_TRUE(a.full());
    EXPECT_EQ(a.flush(), 1);
    EXPECT_FALSE(a.full());
    EXPECT_TRUE(a.push(1, 0, 0, "ok"));
}

TEST(SocketChannel, FlushReportsWouldBlockAndKeepsData)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    std::string chunk(60000, 'q');
    int r = 1;
    int pushed = 0;
    while (r == 1 && pushed < 100000) {
        a.push(1, static_cast<uint64_t>(pushed++), 0, chunk);
        r = a.flush();
    }
    ASSERT_EQ(r, 0) << "socket never filled";
    EXPECT_GT(a.pending(), 0u);
    size_t total = 0;
    while (total < static_cast<size_t>(pushed)) {
        std::vector<Msg> got = drain(b);
        for (size_t i = 0; i < got.size(); i++)
            ASSERT_EQ(got[i].id, total + i);
        total += got.size();
        a.flush();
    }
    EXPECT_EQ(total, static_cast<size_t>(pushed));
}

TEST(SocketChannel, ManyWritersRecordsStayWhole)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    const int kProcs = 4, kMsgs = 300;
    std::vector<pid_t> kids;
    for (int p = 0; p < kProcs; p++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            b.reset();
            for (int i = 0; i < kMsgs; i++) {
                a.push(1, static_cast<uint64_t>(p), i, std::string(static_cast<size_t>(100 + i * 300), static_cast<char>('a' + p)));
                if (!a.flush_wait(5000))
                    _exit(1);
            }
            _exit(0);
        }
        kids.push_back(pid);
    }
    a.reset();
    std::vector<int> next(kProcs, 0);
    int total = 0;
    while (total < kProcs * kMsgs) {
        ASSERT_TRUE(zt::wait_fd(b.fd(), POLLIN, 5000));
        for (const Msg& m : drain(b)) {
            int p = static_cast<int>(m.id);
            ASSERT_EQ(m.arg, next[static_cast<size_t>(p)]++) << "writer " << p;
            ASSERT_EQ(m.data, std::string(static_cast<size_t>(100 + m.arg * 300), static_cast<char>('a' + p)));
            total++;
        }
    }
    for (pid_t k : kids) {
        int st;
        ASSERT_EQ(waitpid(k, &st, 0), k);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

TEST(SocketChannel, ContinuationOfADeadWriterIsDropped)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    // A writer that died after its first fragment: write that record by hand.
    std::string rec(sizeof(zan::FrameHeader) + 10, 'z');
    zan::FrameHeader h{};
    h.len = 10;
    h.kind = 1;
    h.flags = zan::FrameCodec::kFragPart | zan::FrameCodec::kFragFirst | zan::FrameCodec::kFragMore;
    h.src = 999999;
    memcpy(&rec[0], &h, sizeof(h));
    ASSERT_EQ(::send(a.fd(), rec.data(), rec.size(), 0), static_cast<ssize_t>(rec.size()));
    // ...and an orphan continuation from another dead writer.
    h.flags = zan::FrameCodec::kFragPart;
    h.src = 999998;
    memcpy(&rec[0], &h, sizeof(h));
    ASSERT_EQ(::send(a.fd(), rec.data(), rec.size(), 0), static_cast<ssize_t>(rec.size()));
    a.push(1, 5, 0, "after");
    ASSERT_EQ(a.flush(), 1);
    std::vector<Msg> got = drain(b);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, "after");
}

TEST(SocketChannel, EofWhenPeerCloses)
{
    zan::SocketChannel a, b;
    ASSERT_TRUE(zan::SocketChannel::make_pair(&a, &b));
    a.reset();
    int r = b.receive([](const zan::FrameHeader&, std::string_view) {});
    EXPECT_EQ(r, -1);
    EXPECT_EQ(errno, ECONNRESET);
}
