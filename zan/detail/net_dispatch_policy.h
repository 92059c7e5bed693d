// NetDispatchPolicy: which Worker gets what, for one NetWorker
// (ServerConfig::dispatch_mode). A new connection gets a home Worker (it
// sees the connect and the close; in modes 2 and 4 it also gets every
// message); each message then goes to choose(): in turn (1), to the
// connection's home (2, 4), to the Worker with the smallest backlog (3),
// or by the uid bound to the connection (5). It owns the turn counter
// only; the loads come from the shared ProcSlots and NetChannels.
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_DISPATCH_POLICY_H
#define ZAN_DETAIL_NET_DISPATCH_POLICY_H

#include "zan/inet_addr.h"
#include "zan/detail/net_channels.h"
#include "zan/detail/net_conn.h"
#include "zan/detail/process.h"

namespace zan {

class NetDispatchPolicy {
public:
    NetDispatchPolicy(const Runtime& rt, const NetChannels& chans) : rt_(rt), chans_(chans) {}

    // The home Worker of a new connection from peer.
    int home(const InetAddr& peer);

    // The Worker for the next message of connection c.
    int choose(const NetConn& c)
    {
        switch (rt_.cfg.dispatch_mode) {
        case 1:
            return static_cast<int>(rr_++ % static_cast<unsigned>(rt_.W()));
        case 3:
            return least_loaded();
        case 5:
            return c.uid ? static_cast<int>(c.uid % static_cast<unsigned>(rt_.W())) : c.home;
        default:  // 2 (connection) and 4 (client IP, fixed at connect)
            return c.home;
        }
    }

private:
    int least_loaded();

    const Runtime& rt_;
    const NetChannels& chans_;
    unsigned rr_ = 0;
};

}  // namespace zan

#endif
