// NetWorker: the process that owns client connections. It runs the event
// loop and wires its parts together: NetAcceptor (accepting), a flat
// NetConnTable of NetConn (connections, their output, timeouts),
// NetRequests (client bytes to messages to Workers, the Worker picked
// by NetDispatchPolicy), NetReplies (Worker replies back to clients, in
// request order by NetReplyOrder) and NetChannels (the Worker channels,
// flushed once per loop iteration). It owns all of them and the loop,
// reads the Master's control channel and signals, and stops (begin_stop):
// it stops accepting, answers what is in flight, ends every connection
// (NetConnTable::set_stopping), and exits when the last one is gone.
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_WORKER_H
#define ZAN_DETAIL_NET_WORKER_H

#include <stdint.h>

#include "zan/event_loop.h"
#include "zan/inet_addr.h"
#include "zan/detail/net_acceptor.h"
#include "zan/detail/net_channels.h"
#include "zan/detail/net_conn_table.h"
#include "zan/detail/net_dispatch_policy.h"
#include "zan/detail/net_replies.h"
#include "zan/detail/net_reply_order.h"
#include "zan/detail/net_requests.h"
#include "zan/detail/process.h"

namespace zan {

class NetWorker {
public:
    explicit NetWorker(Runtime& rt);
    ~NetWorker();
    NetWorker(const NetWorker&) = delete;
    NetWorker& operator=(const NetWorker&) = delete;

    int run();
    EventLoop& loop() { return loop_; }

private:
    void watch();
    void before_poll();
    void start_timers();
    void new_conn(int fd, const InetAddr& peer, int listener);
    void on_conn(uint32_t slot, uint32_t ev);
    void on_ctl();
    // The drain. hand_over: the listening sockets stay open in another
    // server (a binary upgrade) and are simply let go; otherwise they
    // close for good, without resetting a connection (NetAcceptor::stop).
    void begin_stop(bool hand_over);
    void check_drained();

    Runtime& rt_;
    EventLoop loop_;
    NetChannels chans_;
    NetReplyOrder order_;
    NetDispatchPolicy policy_;
    NetConnTable table_;
    NetAcceptor acceptor_;
    NetRequests requests_;
    NetReplies replies_;
    int64_t wall_sec_ = 0;  // time(2) at the last wake-up
    bool stopping_ = false;
};

}  // namespace zan

#endif
