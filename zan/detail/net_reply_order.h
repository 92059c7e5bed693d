// NetReplyOrder: puts the replies of each connection back in request
// order. With a counted protocol (HTTP) the pipelined requests of one
// connection may go to different Workers (dispatch modes 1, 3, 5), which
// answer in any order; a reply that comes before the ones due ahead of
// it waits here. It owns those early replies, by connection slot and
// request sequence number, until their turn or the connection's close.
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_REPLY_ORDER_H
#define ZAN_DETAIL_NET_REPLY_ORDER_H

#include <stdint.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "zan/detail/net_conn_table.h"

namespace zan {

class NetReplyOrder {
public:
    // A reply frame that arrived before the replies due ahead of it.
    struct Held {
        uint8_t kind;
        int flags;
        std::string data;
    };

    bool empty() const { return held_.empty(); }
    // Keeps a frame of the reply to request `seq` of connection `slot`.
    void hold(uint32_t slot, uint32_t seq, uint8_t kind, int flags, std::string_view data);
    // Moves out the frames held for request `seq` of `slot`, in arrival
    // order; false when there are none.
    bool take(uint32_t slot, uint32_t seq, std::vector<Held>* out);
    // Drops what is held for `slot` (its connection closed).
    void drop(uint32_t slot);

    // The reply now due on `slot` may have arrived early: hands
    // deliver(const Held&) what is held for it, in order, and so on for
    // the replies after it (deliver() moves NetConn::reply_seq on). A call
    // made from inside deliver() returns at once: the loop running picks
    // up what that delivery made due.
    template <class Deliver>
    void release(NetConnTable& table, uint32_t slot, Deliver deliver)
    {
        if (releasing_)
            return;
        releasing_ = true;
        std::vector<Held> pieces;
        while (table.at(slot).used && !held_.empty() && take(slot, table.at(slot).reply_seq, &pieces)) {
            for (const Held& p : pieces) {
                if (!table.at(slot).used)
                    break;
                deliver(p);
            }
        }
        releasing_ = false;
    }

private:
    static uint64_t key(uint32_t slot, uint32_t seq) { return static_cast<uint64_t>(slot) << 32 | seq; }

    std::map<uint64_t, std::vector<Held>> held_;  // by key(slot, sequence number)
    bool releasing_ = false;
};

}  // namespace zan

#endif
