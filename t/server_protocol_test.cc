// A protocol of the application's own through the public interface only
// (zan/tcp_server.h, zan/protocol.h): a ConnProtocol that frames lines,
// installed with TcpServer::set_protocol(), and a Worker that answers
// with TcpServer::reply() and the MessageInfo of each message. Replies
// come back in message order although a later one is sent first, the
// last message a connection may send is flagged and ends it, and bad or
// slow input gets the protocol's own replies. A protocol that streams
// large messages in parts (kPart) gets them to one Worker in order, with
// their MessagePart, is read no further while the Worker holds a window
// unacknowledged, and a client that leaves mid-message shows as a cut
// part. The server is a TcpServer in a forked Master (t/forked_server.h).
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "t/forked_server.h"
#include "t/net_helpers.h"
#include "t/test_env.h"
#include "zan/protocol.h"
#include "zan/tcp_server.h"

namespace {

using zt::ForkedServer;
using zt::Sock;
using zt::report;

// Lines of at most 64 bytes; a partial line times out.
class LineProtocol : public zan::ConnProtocol {
public:
    Verdict next(const char* data, size_t n, size_t* len, std::string* reply, std::string*) override
    {
        const void* nl = memchr(data + seen_, '\n', n - seen_);
        if (nl) {
            *len = static_cast<size_t>(static_cast<const char*>(nl) - data) + 1;
            return kMessage;
        }
        seen_ = n;
        if (n > 64) {
            *reply = "error line too long\n";
            return kReject;
        }
        return kNeedMore;
    }
    void consumed() override { seen_ = 0; }
    std::string timeout_reply() override { return "error timeout\n"; }

private:
    size_t seen_ = 0;
};

// "slow <word>" is answered 200 ms later, in two frames; anything else at
// once: "<word> seq=<n> last=<0|1>".
void setup_line_server(zan::TcpServer& s, const ForkedServer::Ends&)
{
    zan::ProtocolSpec spec;
    spec.make = [](zan::SessionId) { return std::unique_ptr<zan::ConnProtocol>(new LineProtocol); };
    spec.counted_replies = true;
    spec.header_timeout_ms = 300;
    spec.max_messages = 3;
    s.set_protocol(spec);
    s.on_receive([](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
        zan::MessageInfo m = s.message_info();
        std::string line(msg.substr(0, msg.size() - 1));
        bool slow = line.compare(0, 5, "slow ") == 0;
        std::string word = slow ? line.substr(5) : line;
        std::string answer = word + " seq=" + std::to_string(m.seq) + " last=" + (m.last ? "1" : "0") + "\n";
        if (!slow) {
            s.reply(id, m, answer);
            return;
        }
        s.run_after(200, [&s, id, m, answer] {
            s.reply(id, m, answer.substr(0, 2), zan::ReplyMark::more);
            s.reply(id, m, answer.substr(2), zan::ReplyMark::end);
        });
    });
}

TEST(ServerProtocol, RepliesInMessageOrderAndLastMessageEndsConnection)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(zt::forked_server_config(1), setup_line_server));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "slow alpha\nbeta\ngamma\n"));
    // Everything up to end of file: the third message is the last one.
    EXPECT_EQ(zt::read_all(c.get()), "alpha seq=0 last=0\nbeta seq=1 last=0\ngamma seq=2 last=1\n");
}

TEST(ServerProtocol, RejectAndTimeoutRepliesComeFromTheProtocol)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(zt::forked_server_config(1), setup_line_server));
    Sock a = srv.connect();
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(zt::send_str(a.get(), "one\n" + std::string(100, 'x')));
    EXPECT_EQ(zt::read_all(a.get()), "one seq=0 last=0\nerror line too long\n");

    Sock b = srv.connect();
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(zt::send_str(b.get(), "partial"));
    EXPECT_EQ(zt::read_all(b.get()), "error timeout\n");
}

// "<n>\n" then n bytes: a message of any size, streamed as it comes.
// next() may see the same bytes again (a full channel): it only computes,
// and consumed() moves on.
class BlobProtocol : public zan::ConnProtocol {
public:
    Verdict next(const char* data, size_t n, size_t* len, std::string* reply, std::string*) override
    {
        size_t head = 0;
        uint64_t left = left_;
        if (!started_) {
            const void* nl = memchr(data, '\n', n);
            if (!nl) {
                if (n > 20) {
                    *reply = "error\n";
                    return kReject;
                }
                return kNeedMore;
            }
            head = static_cast<size_t>(static_cast<const char*>(nl) - data) + 1;
            left = strtoull(data, nullptr, 10);
        }
        uint64_t body = left < n - head ? left : n - head;
        next_left_ = left - body;
        *len = head + static_cast<size_t>(body);
        if (next_left_ == 0)
            return kMessage;
        return *len ? kPart : kNeedMore;
    }
    void consumed() override
    {
        started_ = next_left_ != 0;
        left_ = next_left_;
    }

private:
    bool started_ = false;
    uint64_t left_ = 0, next_left_ = 0;
};

constexpr size_t kBlobWindow = 64u << 10;

// Answers "<bytes> <sum>" at a message's end ("whole ..." for one that
// came in one piece) and reports each part's kind. While 'h' (hold) is
// the last trigger, parts are not acknowledged; 'r' acknowledges what
// was held and goes on.
void setup_blob_server(zan::TcpServer& s, const ForkedServer::Ends& e)
{
    zan::ProtocolSpec spec;
    spec.make = [](zan::SessionId) { return std::unique_ptr<zan::ConnProtocol>(new BlobProtocol); };
    spec.counted_replies = true;
    spec.idle_timeout_ms = 5000;
    spec.stream_window = kBlobWindow;
    s.set_protocol(spec);
    int rep = e.report, trg = e.trigger;
    struct State {
        std::map<zan::SessionId, std::pair<uint64_t, uint64_t>> got;  // bytes, sum
        std::map<zan::SessionId, size_t> held;
        bool hold = false;
    };
    auto st = std::make_shared<State>();
    s.on_worker_start([st, trg, rep](zan::TcpServer& s, int) {
        s.run_every(5, [st, trg, rep, &s] {
            char c;
            while (::read(trg, &c, 1) == 1) {
                if (c == 'h')
                    st->hold = true;
                if (c == 'r') {
                    st->hold = false;
                    for (auto& h : st->held)
                        s.acknowledge(h.first, h.second);
                    st->held.clear();
                }
                if (c == 'q') {
                    size_t n = 0;
                    for (auto& g : st->got)
                        n += g.second.first;
                    report(rep, "holding " + std::to_string(n));
                }
            }
        });
    });
    s.on_receive([st, rep](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
        zan::MessageInfo m = s.message_info();
        auto add = [&](std::string_view d) {
            auto& g = st->got[id];
            g.first += d.size();
            for (char c : d)
                g.second += static_cast<unsigned char>(c);
        };
        std::string_view body = msg;
        if (m.part == zan::MessagePart::whole || m.part == zan::MessagePart::first)
            body = msg.substr(msg.find('\n') + 1);
        switch (m.part) {
        case zan::MessagePart::whole:
            add(body);
            s.reply(id, m, "whole " + std::to_string(st->got[id].first) + "\n");
            st->got.erase(id);
            return;
        case zan::MessagePart::cut:
            report(rep, "cut " + std::to_string(st->got[id].first));
            st->got.erase(id);
            return;
        default:
            break;
        }
        if (m.part == zan::MessagePart::first)
            report(rep, "first seq=" + std::to_string(m.seq));
        add(body);
        if (st->hold)
            st->held[id] += msg.size();
        else
            s.acknowledge(id, msg.size());
        if (m.part == zan::MessagePart::last) {
            auto g = st->got[id];
            st->got.erase(id);
            s.reply(id, m, std::to_string(g.first) + " " + std::to_string(g.second) + "\n");
        }
    });
}

std::string blob(size_t n, unsigned seed, uint64_t* sum)
{
    std::string b = zt::pattern(n, seed);
    *sum = 0;
    for (char c : b)
        *sum += static_cast<unsigned char>(c);
    return std::to_string(n) + "\n" + b;
}

TEST(ServerProtocol, StreamedMessagesArriveInPartsInOrder)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(zt::forked_server_config(2), setup_blob_server));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    uint64_t sum1, sum2;
    std::string a = blob(3u << 20, 1, &sum1), b = blob(1u << 20, 2, &sum2);
    ASSERT_TRUE(zt::send_str(c.get(), a + "5\nsmall" + b));
    std::string line;
    ASSERT_TRUE(zt::read_line(c.get(), &line, zt::scaled(10000)));
    EXPECT_EQ(std::to_string(3u << 20) + " " + std::to_string(sum1), line);
    ASSERT_TRUE(zt::read_line(c.get(), &line, zt::scaled(10000)));
    EXPECT_EQ("whole 5", line);
    ASSERT_TRUE(zt::read_line(c.get(), &line, zt::scaled(10000)));
    EXPECT_EQ(std::to_string(1u << 20) + " " + std::to_string(sum2), line);
    std::string first;
    ASSERT_TRUE(srv.take("first seq=0", &first));
    ASSERT_TRUE(srv.take("first seq=2", &first));
}

TEST(ServerProtocol, AStreamedMessageWaitsForItsAcknowledgements)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(zt::forked_server_config(1), setup_blob_server));
    ASSERT_TRUE(srv.trigger('h'));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    uint64_t sum;
    std::string a = blob(8u << 20, 3, &sum);
    // Sent from a thread: with the Worker holding back its
    // acknowledgements, the NetWorker stops reading and send blocks.
    std::atomic<bool> sent{false};
    std::thread t([&] {
        zt::send_str(c.get(), a);
        sent = true;
    });
    std::string line;
    ASSERT_TRUE(srv.take("first", &line));
    // The client's bytes pile up in the kernel, not in the server.
    EXPECT_TRUE(zt::eventually([&] { return zt::server_unread(c.get(), srv.port()) > 0; }, zt::scaled(3000)));
    ASSERT_TRUE(srv.trigger('q'));
    ASSERT_TRUE(srv.take("holding", &line));
    long long held = zt::word_num(line, 1);
    EXPECT_GT(held, 0);
    EXPECT_LE(held, static_cast<long long>(kBlobWindow + (256u << 10))) << "read past the window";
    EXPECT_FALSE(sent);
    ASSERT_TRUE(srv.trigger('r'));
    ASSERT_TRUE(zt::read_line(c.get(), &line, zt::scaled(10000)));
    EXPECT_EQ(std::to_string(8u << 20) + " " + std::to_string(sum), line);
    t.join();
    EXPECT_TRUE(sent);
}

TEST(ServerProtocol, AClientLeavingMidMessageShowsAsACutPart)
{
    ForkedServer srv;
    ASSERT_TRUE(srv.start(zt::forked_server_config(1), setup_blob_server));
    Sock c = srv.connect();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(zt::send_str(c.get(), "1000000\n" + std::string(300000, 'x')));
    std::string line;
    ASSERT_TRUE(srv.take("first", &line));
    c.reset();
    ASSERT_TRUE(srv.take("cut", &line));
    EXPECT_GT(zt::word_num(line, 1), 0);
    EXPECT_LE(zt::word_num(line, 1), 300000);
}

}  // namespace
