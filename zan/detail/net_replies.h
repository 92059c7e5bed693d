// NetReplies: the reply path of a NetWorker, from Worker channels to
// client connections. It takes the Workers' frames off the channels
// (replies, file regions to send with sendfile(2), close requests and
// acks, uid bindings), puts replies in request order (NetReplyOrder),
// queues them on their connection for NetConnTable to write, and does the
// bookkeeping at the end of each reply (deferred replies, pipelined input
// waiting behind it). It also fails the clients waiting on a Worker that
// died. It owns no state of its own.
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_REPLIES_H
#define ZAN_DETAIL_NET_REPLIES_H

#include <stdint.h>

#include <string_view>

#include "zan/detail/net_channels.h"
#include "zan/detail/net_conn_table.h"
#include "zan/detail/net_reply_order.h"
#include "zan/detail/net_requests.h"
#include "zan/detail/process.h"

namespace zan {

class NetReplies {
public:
    NetReplies(Runtime& rt, NetConnTable& table, NetChannels& chans, NetReplyOrder& order,
               NetRequests& requests)
        : rt_(rt), table_(table), chans_(chans), order_(order), requests_(requests)
    {
    }

    // Worker w's channel is readable and/or has room (ev: kReadable, kWritable).
    void on_channel(int w, uint32_t ev);
    // Reads what every Worker channel holds.
    void read_all();
    // Fails the connections waiting on Worker w (it died, or its channel
    // broke): a protocol failure reply (e.g. 503) after what is queued, or
    // a plain close.
    void fail_waiting_on(int w);

private:
    void on_frame(int w, const FrameHeader& h, std::string_view data);
    void deliver(uint32_t slot, uint8_t kind, int flags, std::string_view data);
    void queue_file(uint32_t slot, std::string_view payload, int flags);
    void reply_done(uint32_t slot, int flags);
    bool reply_end(uint32_t slot);
    bool fail(uint32_t slot);

    Runtime& rt_;
    NetConnTable& table_;
    NetChannels& chans_;
    NetReplyOrder& order_;
    NetRequests& requests_;
};

}  // namespace zan

#endif
