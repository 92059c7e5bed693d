// NetAcceptor: accepting for one NetWorker. It watches the listening
// sockets (Runtime::listeners, which it closes when the server stops),
// takes the robust accept lock for one burst of accept4() (when
// accept_lock is set), leaves new connections to the other NetWorkers
// while it holds more than its share (nginx's ngx_accept_disabled, by
// count), refuses connections past max_connection, and stops watching
// the listeners for a while when it is out of descriptors (EMFILE,
// ENFILE) or lost the lock. Each accepted socket goes to the
// new-connection callback, which owns it from then on.
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_NET_ACCEPTOR_H
#define ZAN_NET_ACCEPTOR_H

#include <functional>

#include "zan/event_loop.h"
#include "zan/inet_addr.h"
#include "zan/process.h"

namespace zan {

class NetConnTable;

class NetAcceptor {
public:
    using NewConnCallback = std::function<void(int fd, const InetAddr& peer, int listener)>;

    NetAcceptor(Runtime& rt, EventLoop& loop, const NetConnTable& table);

    void set_new_conn_callback(NewConnCallback cb) { new_conn_ = std::move(cb); }
    // Watches the listening sockets.
    void listen();
    // A connection closed: descriptors may be free again, accept at once.
    void resume();
    // The server stops: unwatches and closes the listening sockets.
    void stop();

private:
    void on_accept(int li);
    // False when this turn is left to the other NetWorkers; *forced when
    // we take it even though over our share.
    bool my_turn(int lfd, bool* forced);
    // 1: locked, 0: no lock to take, -1: not now.
    int lock();
    void accept_one(int fd, const InetAddr& peer, int li);
    bool over_share(int lfd) const;
    void pause(int ms);

    Runtime& rt_;
    EventLoop& loop_;
    const NetConnTable& table_;
    NewConnCallback new_conn_;
    bool paused_ = false;
    bool stopped_ = false;
    EventLoop::TimerId timer_ = 0;
    long long share_wait_since_ = 0;  // ms: first time we stepped aside
    long long last_limit_log_ = 0;
};

}  // namespace zan

#endif
