// ConnProtocol: per-connection protocol state kept by a NetWorker, for
// protocols that need more than a stateless frame hook (HTTP/1.1). It
// finds message boundaries incrementally, answers bad input itself (the
// Worker never sees it), and supplies interim and timeout replies.
// ProtocolSpec describes the protocol to the NetWorker; a server takes
// it with TcpServer::set_protocol(). Both live in NetWorker processes
// only. MessageInfo and ReplyMark are the Worker's side: what it learns
// of a message, and how its reply frames end one (see zan_protocol(3)).
#ifndef ZAN_PROTOCOL_H
#define ZAN_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <memory>
#include <string>

#include "zan/session_id.h"

namespace zan {

class ConnProtocol {
public:
    enum Verdict { kNeedMore = 0, kMessage = 1, kReject = 2, kPart = 3 };
    virtual ~ConnProtocol() = default;
    // data[0,n) is the unconsumed input of the connection, starting at the
    // current message; after kNeedMore the same bytes come again followed
    // by new ones (the protocol remembers how far it got). kMessage: a
    // complete message of *len bytes. kReject: send *reply, then close.
    // *interim may be set with bytes to send ahead of the Worker's reply
    // (e.g. "100 Continue"). kPart (with ProtocolSpec::stream_window
    // set): the first *len bytes are the next part of a message too large
    // to hold whole; they go to the Worker now and the message goes on,
    // its last part returned as kMessage.
    virtual Verdict next(const char* data, size_t n, size_t* len, std::string* reply,
                         std::string* interim) = 0;
    // The last message or part returned was dispatched (its bytes left
    // the input): after a message start the next one, after a part go on
    // with the same message.
    virtual void consumed() = 0;
    // True when the message just returned must be the last one on its
    // connection (e.g. HTTP "Connection: close"): the NetWorker reads no
    // more and closes once it is answered.
    virtual bool ends_connection() const { return false; }
    // True while the current message's header is complete and its body is
    // still arriving (the header timeout no longer applies).
    virtual bool in_body() const { return false; }
    // Reply when a partial message times out (empty: just close).
    virtual std::string timeout_reply() { return std::string(); }
    // Reply when the Worker handling a message died (empty: just close).
    virtual std::string failure_reply() { return std::string(); }
};

struct ProtocolSpec {
    // Makes the state of a new connection; the argument names it (as
    // the Worker callbacks do), e.g. for log lines about it.
    std::function<std::unique_ptr<ConnProtocol>(SessionId)> make;
    // Every message gets exactly one reply, whose last frame carries the
    // end mark (HTTP): lets the NetWorker keep interim and error replies
    // in order behind the replies still due.
    bool counted_replies = false;
    int header_timeout_ms = 0;  // a partial message older than this times out
    int idle_timeout_ms = 0;    // an idle connection is closed after this
    int max_messages = 0;       // per connection (0: no limit); the last is flagged
    // Bytes of a message's parts (kPart) a Worker may hold without
    // acknowledging them (TcpServer::acknowledge()); the connection is
    // not read further until it does. 0: no message is ever streamed.
    size_t stream_window = 0;
};

// Which piece of a message on_receive is handed.
enum class MessagePart : uint8_t {
    whole,  // the message, complete
    first,  // the first part of a streamed message (kPart)
    more,   // a later part; more follow
    last,   // its last part
    cut,    // no data: the message ends here unfinished (the connection
            // closed, or its input was refused); no reply can reach it
};

// What a Worker learns of the message its on_receive is handling
// (TcpServer::message_info()).
struct MessageInfo {
    // The message's number on its connection, counted from 0 and
    // wrapping at 2^24; a reply names its message by it (counted_replies).
    uint32_t seq = 0;
    // The last message the connection may send (max_messages): the
    // connection is closed once it is answered.
    bool last = false;
    // Whole, or which part of a streamed message; every part of one
    // message has its seq and goes to the same Worker.
    MessagePart part = MessagePart::whole;
};

// Where a frame sent with TcpServer::reply() stands in its reply.
enum class ReplyMark {
    more,   // more frames of this reply follow
    end,    // the last frame of the reply
    close,  // the last frame; close the connection once it is written
};

}  // namespace zan

#endif
