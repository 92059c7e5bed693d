// NetConnTable: the client connections of one NetWorker, in a flat table
// of NetConn indexed by slot, with its free slots and the list of
// connections that have output to write. A session id is (generation <<
// 32) | (NetWorker << 24) | slot; the generation moves on at each close,
// so a late reply to a reused slot is dropped. It owns each connection
// from open() to close(): the socket's interest in the loop (the caller
// watches it), the shared SessionSlot and the server's connection
// counters, the write path's aftermath (send timeout, close after flush),
// the timeouts and idle trimming of the timers, and the closing of every
// connection when the server stops (drain(), with a lingering close).
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_CONN_TABLE_H
#define ZAN_DETAIL_NET_CONN_TABLE_H

#include <stdint.h>

#include <vector>

#include "zan/event_loop.h"
#include "zan/inet_addr.h"
#include "zan/detail/net_conn.h"
#include "zan/detail/process.h"

namespace zan {

class NetAcceptor;
class NetChannels;
class NetReplyOrder;

class NetConnTable {
public:
    NetConnTable(Runtime& rt, EventLoop& loop, NetChannels& chans, NetReplyOrder& order,
                 NetAcceptor& acceptor);

    NetConn& at(uint32_t slot) { return conns_[slot]; }
    const NetConn& at(uint32_t slot) const { return conns_[slot]; }
    uint32_t size() const { return static_cast<uint32_t>(conns_.size()); }
    size_t live() const { return live_; }
    SessionId session_of(uint32_t slot) const
    {
        return make_session(conns_[slot].gen, rt_.index, slot);
    }
    // The open connection of session s, or nullptr when s is not ours or
    // stale (its slot closed since, maybe reused).
    NetConn* find(SessionId s, uint32_t* slot)
    {
        *slot = session_slot(s);
        if (session_net(s) != rt_.index || *slot >= conns_.size())
            return nullptr;
        NetConn& c = conns_[*slot];
        return c.used && c.gen == session_gen(s) ? &c : nullptr;
    }

    // Takes accepted socket fd into a free slot (home: its Worker) and
    // returns the slot. The caller watches fd with the loop.
    uint32_t open(int fd, const InetAddr& peer, int listener, int home);
    // Closes the connection in slot and frees the slot; tells its home
    // Worker unless it already acknowledged a half-close.
    void close(uint32_t slot, const char* why);

    // A read: the connection is active (wall_sec: time(2) of the wake-up).
    void touch(uint32_t slot, int64_t wall_sec);
    // Sets the loop's interest from the connection's state.
    void set_interest(uint32_t slot)
    {
        loop_.update(conns_[slot].fd.get(), conns_[slot].interest(stopping_ && !keep_reading_));
    }
    // Lists the connection for write_dirty() (once per iteration).
    void mark_dirty(uint32_t slot)
    {
        NetConn& c = conns_[slot];
        if (!c.dirty) {
            c.dirty = true;
            dirty_.push_back(slot);
        }
    }
    // Writes the output of every listed connection (before the poll).
    void write_dirty();
    // Writes what the connection has queued, then closes it if it is done.
    void write(uint32_t slot);
    // Tells the Worker watching the connection's output that it fell to
    // the size it waits for, if it has.
    void check_drain(uint32_t slot);

    // The server stops. With keep_reading (a protocol whose every message
    // gets one reply, and whose replies end the connection while the
    // server stops: HTTP's "Connection: close"), connections are still
    // read and each request that comes is answered; a connection closes
    // once its last reply is written, or once it has been idle for the
    // quiet time with nothing on its way in. Without, nothing more is
    // read, and a connection closes once what it sent is answered and
    // written. Either close is lingering (see drain()).
    void set_stopping(bool keep_reading);
    // One pass of the stop: closes the connections that are done (above)
    // and the lingering ones whose client has not closed in time. A
    // stopping server closes its side with shutdown(SHUT_WR) and reads
    // (and drops) what still comes until the client closes too, so that
    // bytes arriving late meet no closed socket: its reset could destroy
    // the last reply before the client has read it, and a client whose
    // request crossed the close sees a clean end of the connection, on
    // which HTTP lets it retry.
    void drain();
    // A lingering connection is readable: drops what came, closes on EOF.
    void linger_read(uint32_t slot);
    // Closes connections past a timeout (partial message, idle, send).
    void sweep();
    // Closes the connections idle past heartbeat_idle_time (ServerConfig).
    void check_heartbeat();
    // Gives back the buffers of connections idle for a while.
    void trim_idle();
    // Publishes the connections' states (ProcCounters::conn_*).
    void count_states();

private:
    uint32_t take_slot();
    void fill_session(uint32_t slot, int fd, const InetAddr& peer, int listener);
    void after_write(uint32_t slot, size_t wrote);
    bool timed_out(uint32_t slot, long long now);
    void count_replies_written(NetConn& c);
    // The connection is done: closed, or lingering while stopping.
    void finish(uint32_t slot, const char* why);
    void linger(uint32_t slot, const char* why);
    bool drain_one(uint32_t slot, long long now);

    Runtime& rt_;
    EventLoop& loop_;
    NetChannels& chans_;
    NetReplyOrder& order_;
    NetAcceptor& acceptor_;
    std::vector<NetConn> conns_;
    std::vector<uint32_t> free_;
    std::vector<uint32_t> dirty_;
    size_t live_ = 0;
    bool stopping_ = false;
    bool in_write_pass_ = false;   // inside write_dirty()
    long long write_pass_us_ = 0;  // its clock read, made by the first reply it finished
    bool keep_reading_ = false;  // while stopping
    int quiet_ms_ = 0;           // while stopping: idle this long, a connection closes
    int linger_ms_ = 0;          // while stopping: longest lingering close
};

}  // namespace zan

#endif
