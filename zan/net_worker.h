// NetWorker: owns client connections. Accepts on the shared listening
// sockets while holding the robust accept lock, reads and frames client
// bytes, dispatches each complete message to a Worker (dispatch_mode), and
// writes the Workers' replies back. All frames for one Worker produced in
// one loop iteration are copied into its ring at once (one eventfd write
// if it sleeps); all replies for one connection received in one iteration
// leave in one write(2).
// Connections live in a flat table; a session id carries the slot's
// generation so a late reply to a reused slot is dropped.
// Lives in a NetWorker process only. The code is in three files:
// net_worker.cc (loop, accepting, timers, stopping), net_worker_clients.cc
// (client I/O and dispatch) and net_worker_replies.cc (Worker replies).
// This is an internal header file, you should not include this.
#ifndef ZAN_NET_WORKER_H
#define ZAN_NET_WORKER_H

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zan/buffer.h"
#include "zan/event_loop.h"
#include "zan/process.h"

namespace zan {

class NetWorker {
public:
    explicit NetWorker(Runtime& rt);
    ~NetWorker();
    int run();
    EventLoop& loop() { return loop_; }

private:
    // Output waiting behind Conn::out: more bytes, or a file region sent
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

    // A reply frame that arrived before the replies due ahead of it.
    struct Held {
        uint8_t kind;
        int flags;
        std::string data;
    };

    struct ConnIo {
        std::map<uint32_t, std::vector<Held>> held;  // by request sequence number
        Buffer in{0};
        Buffer out{0};
        std::vector<Segment> segs;  // few at a time; a deque would allocate per connection
        std::string deferred;       // interim/reject reply held until inflight == 0
        long long out_since = 0;    // ms: output waiting and not a byte taken since
    };

    struct Conn {
        Fd fd;
        uint32_t gen = 0;
        bool used = false;
        bool awaiting = false;           // a message was dispatched and no reply came yet
        bool read_closed = false;        // the peer half-closed (EOF)
        bool ack_wait = false;           // waiting for the home Worker's close ack
        bool close_after_flush = false;  // close once the output is written
        bool paused = false;             // not reading: its Worker's channel is full
        bool half_close_due = false;     // EOF read: ask the home Worker for its ack
        bool dirty = false;              // in dirty_ (output to write)
        bool want_write = false;
        bool reject_after = false;       // `deferred` is a final reply: close after it
        bool last_seen = false;          // max_messages reached: read no more
        int home = 0;         // Worker for connect/close (and data in mode 2/4)
        int last_worker = -1;
        int inflight = 0;     // messages without their end-marked reply (counted protocols)
        int messages = 0;
        uint32_t reply_seq = 0;  // sequence number of the request answered next
        uint64_t uid = 0;
        long long partial_since = 0;  // ms: first byte of the unfinished message
        long long last_active = 0;    // ms: last read or write
        // Buffers and protocol state exist only while the connection is
        // busy; an idle keep-alive connection costs this struct alone.
        std::unique_ptr<ConnIo> io;
        std::unique_ptr<ConnProtocol> proto;

        ConnIo& x()
        {
            if (!io)
                io.reset(new ConnIo);
            return *io;
        }
        bool no_input() const { return !io || io->in.empty(); }
        bool no_output() const { return !io || (io->out.empty() && io->segs.empty()); }
        bool no_deferred() const { return !io || io->deferred.empty(); }
    };

    void on_accept(int li);
    void sweep();
    void trim_idle();
    ConnProtocol* proto(Conn& c);
    void append_out(Conn& c, std::string_view data);
    bool write_segments(uint32_t slot, int* err, size_t* wrote);
    void queue_file(uint32_t slot, std::string_view payload, int flags);
    void reply_done(uint32_t slot, int flags);
    void deliver(uint32_t slot, uint8_t kind, int flags, std::string_view data);
    void release_held(uint32_t slot);
    bool over_share(int lfd) const;
    void pause_accept(int ms);
    void resume_accept();
    void new_conn(int fd, const InetAddr& peer, int li);
    void on_conn(uint32_t slot, uint32_t ev);
    void read_conn(uint32_t slot);
    void process_input(uint32_t slot);
    void half_close(uint32_t slot);
    long next_request(uint32_t slot);
    long next_frame(uint32_t slot);
    bool dispatch(uint32_t slot, size_t len);
    long frame_len(const char* p, size_t n) const;
    int home_worker();
    int choose_worker(Conn& c);
    void on_channel(int w, uint32_t ev);
    void read_replies();
    void on_reply(const FrameHeader& h, std::string_view data);
    void mark_dirty(uint32_t slot);
    void write_conn(uint32_t slot);
    void set_interest(uint32_t slot);
    void close_conn(uint32_t slot, const char* why);
    void flush_channels();
    void flush_conns();
    void on_ctl();
    void fail_waiting_on(int w);
    void begin_stop();
    void check_drained();
    SessionId session_of(uint32_t slot) const;
    Channel& chan(int w) { return rt_.net_end[static_cast<size_t>(rt_.index * rt_.W() + w)]; }

    Runtime& rt_;
    EventLoop loop_;
    std::vector<Conn> conns_;
    std::vector<uint32_t> free_;
    std::vector<uint32_t> dirty_;
    std::vector<std::vector<uint32_t>> waiters_;  // per Worker: paused connections
    std::vector<bool> chan_dirty_;
    int64_t wall_sec_ = 0;  // time(2) at the last wake-up
    std::vector<int64_t> undispatched_;  // messages sent to each Worker, not yet in its ProcSlot
    // Channels of the Workers handed messages since we last blocked, and
    // which ones are listed (see Channel::yield_to_peers).
    std::vector<Channel*> handed_;
    std::vector<bool> handed_listed_;
    std::vector<int> chan_list_;
    size_t live_ = 0;
    unsigned rr_ = 0;
    bool accept_paused_ = false;
    EventLoop::TimerId accept_timer_ = 0;
    bool stopping_ = false;
    long long last_limit_log_ = 0;
    bool releasing_ = false;
    long long share_wait_since_ = 0;  // ms: first time we stepped aside
};

}  // namespace zan

#endif
