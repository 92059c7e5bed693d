// A protocol of the application's own through the public interface only
// (zan/tcp_server.h, zan/protocol.h): a ConnProtocol that frames lines,
// installed with TcpServer::set_protocol(), and a Worker that answers
// with TcpServer::reply() and the MessageInfo of each message. Replies
// come back in message order although a later one is sent first, the
// last message a connection may send is flagged and ends it, and bad or
// slow input gets the protocol's own replies. The server is a TcpServer
// in a forked Master (t/forked_server.h).
#include <string.h>

#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "t/forked_server.h"
#include "t/net_helpers.h"
#include "zan/protocol.h"
#include "zan/tcp_server.h"

namespace {

using zt::ForkedServer;
using zt::Sock;

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

}  // namespace
