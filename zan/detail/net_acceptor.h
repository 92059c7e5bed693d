// NetAcceptor: accepting for one NetWorker. It watches the listening
// sockets (Runtime::listeners, which it closes when the server stops),
// takes the robust accept lock for one burst of accept4() (when
// accept_lock is set), leaves new connections to the other NetWorkers
// while it holds more than its share (nginx's ngx_accept_disabled, by
// count), refuses connections past max_connection, and stops watching
// the listeners for a while when it is out of descriptors (EMFILE,
// ENFILE) or lost the lock. Each accepted socket goes to the
// new-connection callback, which owns it from then on. It stops in one of
// two ways: stop() when the server goes away (the listening sockets close
// for good, and no connection the kernel completed is reset), or
// hand_over() when another server keeps the same sockets open (a binary
// upgrade).
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_ACCEPTOR_H
#define ZAN_DETAIL_NET_ACCEPTOR_H

#include <functional>

#include "zan/event_loop.h"
#include "zan/inet_addr.h"
#include "zan/detail/process.h"

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
    // The server stops: new connection requests are dropped at once
    // (refuse_new_syns), the handshakes under way get kSynGraceMs to
    // complete, then the accept queues are emptied (every connection
    // goes to the callback, to be served) and this process's copies of
    // the listening sockets are closed. The Master has closed its own
    // copies, so the last NetWorker to close one closes the socket, with
    // an empty queue: nothing is reset.
    void stop();
    // Stops accepting and closes this process's copies of the listening
    // sockets at once, refusing nothing: the connections waiting in
    // their queues, and new ones, are for the other processes that hold
    // the same sockets (a successor server).
    void hand_over();
    // True once this process holds no listening socket any more.
    bool closed() const { return closed_; }

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
    void accept_rest();
    void close_listeners();

    Runtime& rt_;
    EventLoop& loop_;
    const NetConnTable& table_;
    NewConnCallback new_conn_;
    bool paused_ = false;
    bool stopped_ = false;  // stop() or hand_over() was called
    bool closed_ = false;
    EventLoop::TimerId timer_ = 0;
    long long share_wait_since_ = 0;  // ms: first time we stepped aside
    long long last_limit_log_ = 0;
};

}  // namespace zan

#endif
