// NetRequests: the request path of a NetWorker, from client bytes to
// Worker channels. It reads a connection's input, finds each complete
// message (the protocol's ConnProtocol, e.g. HTTP, or the package_*
// framing settings, or a raw stream), answers what the protocol refuses
// itself, and hands each message to the Worker the dispatch policy
// picks; a connection whose Worker channel is full is paused until it
// drains, and a half-closed one asks its home Worker for an ack. It owns
// no state of its own: connections are in NetConnTable.
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_REQUESTS_H
#define ZAN_DETAIL_NET_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include <string>

#include "zan/event_loop.h"
#include "zan/detail/net_channels.h"
#include "zan/detail/net_conn_table.h"
#include "zan/detail/net_dispatch_policy.h"
#include "zan/detail/process.h"

namespace zan {

class NetRequests {
public:
    NetRequests(Runtime& rt, EventLoop& loop, NetConnTable& table, NetChannels& chans,
                NetDispatchPolicy& policy)
        : rt_(rt), loop_(loop), table_(table), chans_(chans), policy_(policy)
    {
    }

    // The connection's socket is readable (wall_sec: time(2) of the wake-up).
    void read(uint32_t slot, int64_t wall_sec);
    // Dispatches the complete messages buffered, while it may.
    void process_input(uint32_t slot);
    // The Worker channel the paused connection waited on has room.
    void resume(uint32_t slot);
    // The Worker of the connection's streamed message processed n bytes
    // of its parts.
    void acknowledged(uint32_t slot, size_t n);

private:
    void end_of_input(uint32_t slot);
    void half_close(uint32_t slot);
    long next_request(uint32_t slot, bool* part);
    void queue_early_reply(uint32_t slot, const std::string& interim);
    void reject(uint32_t slot, const std::string& reply);
    long next_frame(uint32_t slot);
    long frame_len(const char* p, size_t n) const;
    long length_field(const char* p, size_t n) const;
    bool dispatch(uint32_t slot, size_t len);
    bool dispatch_part(uint32_t slot, size_t len);
    int next_flags(const NetConn& c) const;
    void started(uint32_t slot, int w);
    bool finish_message(uint32_t slot, int flags);

    Runtime& rt_;
    EventLoop& loop_;
    NetConnTable& table_;
    NetChannels& chans_;
    NetDispatchPolicy& policy_;
};

}  // namespace zan

#endif
