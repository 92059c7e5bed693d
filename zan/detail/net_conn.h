// NetConn: one client connection of a NetWorker, an entry of its flat
// connection table (NetConnTable, indexed by slot). It owns the client
// socket, the connection's state flags and counters, and, only while the
// connection is busy, its ConnIo: the input buffer and the output queue
// (bytes, then file regions sent with sendfile(2)). An idle keep-alive
// connection costs this struct alone. The write path (write_out) is
// here; what to do after it (close, interest) is the table's.
// Lives in a NetWorker process only, made after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_NET_CONN_H
#define ZAN_DETAIL_NET_CONN_H

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zan/buffer.h"
#include "zan/fd.h"
#include "zan/protocol.h"

namespace zan {

// Output waiting behind ConnIo::out: more bytes, or a file region sent
// with sendfile(2) (never read into memory). The file is opened only
// when its turn comes, so replies queued for a client that does not
// read hold no descriptors.
struct Segment {
    std::string bytes;
    std::string path;  // a file region when set
    Fd file;
    off_t offset = 0;
    size_t left = 0;
    bool is_file() const { return !path.empty(); }
};

// The buffers of a busy connection (made on its first bytes, given back
// by NetConn::trim once it idles).
struct ConnIo {
    Buffer in{0};
    Buffer out{0};
    std::vector<Segment> segs;  // few at a time; a deque would allocate per connection
    std::string deferred;       // interim/reject reply held until inflight == 0
    long long out_since = 0;    // ms: output waiting and not a byte taken since
};

class NetConn {
public:
    Fd fd;
    uint32_t gen = 0;
    bool used = false;
    bool awaiting = false;           // a message was dispatched and no reply came yet
    bool read_closed = false;        // the peer half-closed (EOF)
    bool ack_wait = false;           // waiting for the home Worker's close ack
    bool close_after_flush = false;  // close once the output is written
    bool paused = false;             // not reading: its Worker's channel is full
    bool half_close_due = false;     // EOF read: ask the home Worker for its ack
    bool dirty = false;              // listed for writing (NetConnTable::mark_dirty)
    bool want_write = false;
    bool reject_after = false;       // `deferred` is a final reply: close after it
    bool last_seen = false;          // max_messages reached: read no more
    bool lingering = false;          // our side is shut down: reading until the client's EOF
    // A message streamed to its Worker in parts (ConnProtocol::kPart) is
    // under way: its parts all go to stream_worker with stream_flags
    // (sequence number, kDataLast); stream_unacked bytes of them are not
    // acknowledged, and at the window (stream_full) reading stops.
    bool streaming = false;
    bool stream_full = false;
    int stream_worker = -1;
    int stream_flags = 0;
    size_t stream_unacked = 0;
    // A Worker waits for the output to fall to drain_below bytes
    // (TcpServer::watch_output()): it gets a drained frame then, or when
    // the connection closes.
    int drain_worker = -1;
    size_t drain_below = 0;
    int home = 0;         // Worker for connect/close (and data in mode 2/4)
    int last_worker = -1;
    int inflight = 0;     // messages without their end-marked reply (counted protocols)
    int messages = 0;
    uint32_t reply_seq = 0;  // sequence number of the request answered next
    uint64_t uid = 0;
    long long partial_since = 0;  // ms: first byte of the unfinished message
    long long last_active = 0;    // ms: last read or write
    long long recv_us = 0;        // monotonic us: receipt of the oldest request unanswered
    int replies_done = 0;         // replies ended and not yet written out
    long long last_read = 0;      // ms: last byte from the client (the heartbeat's clock)
    long long linger_until = 0;   // ms: a lingering connection closes then at the latest
    // Buffers and protocol state exist only while the connection is
    // busy; an idle keep-alive connection costs this struct alone.
    std::unique_ptr<ConnIo> io;
    std::unique_ptr<ConnProtocol> protocol;

    // Takes fd for a fresh connection in this (free) entry.
    void open(int sock, uint32_t generation, int home_worker, long long now);

    ConnIo& x()
    {
        if (!io)
            io.reset(new ConnIo);
        return *io;
    }
    // The protocol state, made on first use (nullptr without a protocol);
    // s is this connection's session id.
    ConnProtocol* proto(const ProtocolSpec& ps, SessionId s)
    {
        if (!protocol && ps.make)
            protocol = ps.make(s);
        return protocol.get();
    }
    bool no_input() const { return !io || io->in.empty(); }
    bool no_output() const { return !io || (io->out.empty() && io->segs.empty()); }
    bool no_deferred() const { return !io || io->deferred.empty(); }

    // The event mask the connection wants (no reading while stopping).
    uint32_t interest(bool stopping) const;

    // Queues bytes behind the output already queued.
    void append_out(std::string_view data);
    // Queues a file region of `left` bytes at `offset` of path.
    void append_file(std::string_view path, off_t offset, size_t left);
    // Writes the output queue in order, adding the bytes taken to *wrote.
    // Returns false on a write error (in *err); true when done or the
    // socket is full.
    bool write_out(int* err, size_t* wrote);
    // Bytes still queued (file regions counted by what is left).
    size_t queued() const;

    // Gives back the buffers and protocol state of an idle connection;
    // returns how many of the two were freed.
    int trim();
};

}  // namespace zan

#endif
