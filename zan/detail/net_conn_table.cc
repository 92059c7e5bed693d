#include "zan/detail/net_conn_table.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "zan/log.h"
#include "zan/detail/net_acceptor.h"
#include "zan/detail/net_channels.h"
#include "zan/detail/net_reply_order.h"
#include "zan/socket.h"
#include "zan/sys.h"

namespace zan {

static const long long kTrimIdleMs = 250;  // idle this long: buffers go back
// While stopping, the quiet time of an idle keep-alive connection before
// it is closed, and the longest lingering close (both at most a quarter
// of max_wait_time, so that the stop ends well within it).
static const int kDrainQuietMs = 500;
static const int kLingerMs = 1000;

NetConnTable::NetConnTable(Runtime& rt, EventLoop& loop, NetChannels& chans, NetReplyOrder& order,
                           NetAcceptor& acceptor)
    : rt_(rt), loop_(loop), chans_(chans), order_(order), acceptor_(acceptor)
{
}

uint32_t NetConnTable::take_slot()
{
    if (!free_.empty()) {
        uint32_t slot = free_.back();
        free_.pop_back();
        return slot;
    }
    conns_.emplace_back();
    return static_cast<uint32_t>(conns_.size() - 1);
}

uint32_t NetConnTable::open(int fd, const InetAddr& peer, int listener, int home)
{
    uint32_t slot = take_slot();
    SessionSlot* ss = rt_.slot_at(rt_.index, slot);
    conns_[slot].open(fd, atomic_load(&ss->generation), home, loop_.now_ms());
    if (rt_.cfg.open_tcp_nodelay)
        set_tcp_nodelay(fd, true);
    fill_session(slot, fd, peer, listener);
    atomic_add(&rt_.stats->connection_num, static_cast<int64_t>(1));
    atomic_add(&rt_.stats->accept_count, static_cast<int64_t>(1));
    counter_add(&rt_.counters().accepted, static_cast<int64_t>(1));
    live_++;
    return slot;
}

// The shared SessionSlot other processes read (TcpServer::get_client_info).
void NetConnTable::fill_session(uint32_t slot, int fd, const InetAddr& peer, int listener)
{
    SessionSlot* ss = rt_.slot_at(rt_.index, slot);
    int64_t now = static_cast<int64_t>(::time(nullptr));
    ss->fd = fd;
    ss->worker = conns_[slot].home;
    ss->listener = listener;
    ss->connect_time = now;
    ss->last_time = now;
    ss->out_bytes = 0;
    ss->uid = 0;
    ss->addr_len = peer.len() <= sizeof(ss->addr) ? peer.len() : sizeof(ss->addr);
    memcpy(ss->addr, peer.sa(), ss->addr_len);
    atomic_store(&ss->active, 1);
}

void NetConnTable::close(uint32_t slot, const char* why)
{
    NetConn& c = conns_[slot];
    if (!c.used)
        return;
    SessionId s = session_of(slot);
    loop_.unwatch(c.fd.get());
    c.fd.reset();
    c.used = false;
    SessionSlot* ss = rt_.slot_at(rt_.index, slot);
    atomic_store(&ss->active, 0);
    atomic_store(&ss->out_bytes, static_cast<int64_t>(0));
    atomic_store(&ss->generation, c.gen + 1);
    atomic_add(&rt_.stats->connection_num, static_cast<int64_t>(-1));
    atomic_add(&rt_.stats->close_count, static_cast<int64_t>(1));
    counter_add(&rt_.counters().closed, static_cast<int64_t>(1));
    if (c.streaming) {
        // The Worker of a message streamed in parts learns that it ends
        // here, whichever Worker is the connection's home.
        chans_.push_control(c.stream_worker, kFrameData, s, c.stream_flags | kDataPart | kDataEnd | kDataCut);
        c.streaming = c.stream_full = false;
    }
    if (c.drain_worker >= 0) {
        // Its Worker waits for the output to drain: it never will.
        chans_.push_control(c.drain_worker, kFrameDrained, s, 0);
        c.drain_worker = -1;
    }
    if (!c.ack_wait)
        chans_.push_control(c.home, kFrameClose, s, 0);
    c.gen++;
    c.io.reset();
    c.protocol.reset();
    order_.drop(slot);
    c.dirty = false;
    free_.push_back(slot);
    live_--;
    log(Level::debug, "session %llu closed: %s", static_cast<unsigned long long>(s), why);
    acceptor_.resume();
}

void NetConnTable::check_drain(uint32_t slot)
{
    NetConn& c = conns_[slot];
    if (!c.used || c.drain_worker < 0 || c.queued() > c.drain_below)
        return;
    chans_.push_control(c.drain_worker, kFrameDrained, session_of(slot), 0);
    c.drain_worker = -1;
}

void NetConnTable::touch(uint32_t slot, int64_t wall_sec)
{
    conns_[slot].last_active = conns_[slot].last_read = loop_.now_ms();
    int64_t* last = &rt_.slot_at(rt_.index, slot)->last_time;
    if (atomic_load(last) != wall_sec)  // one store per second, not per read
        atomic_store(last, wall_sec);
}

void NetConnTable::write_dirty()
{
    // write() may close connections but never lists one: write a swapped
    // list, then hand its capacity back.
    std::vector<uint32_t> list;
    list.swap(dirty_);
    in_write_pass_ = true;
    write_pass_us_ = 0;
    for (uint32_t slot : list) {
        conns_[slot].dirty = false;
        write(slot);
    }
    in_write_pass_ = false;
    list.clear();
    if (dirty_.empty())
        dirty_.swap(list);  // keep the capacity
}

void NetConnTable::write(uint32_t slot)
{
    NetConn& c = conns_[slot];
    if (!c.used)
        return;
    int err = 0;
    size_t wrote = 0;
    if (!c.write_out(&err, &wrote)) {
        if (err != EPIPE && err != ECONNRESET)
            log_errno(Level::debug, err, "write to client");
        close(slot, "write error");
        return;
    }
    after_write(slot, wrote);
}

// Bookkeeping after a write that took `wrote` bytes: the send timeout,
// the shared out_bytes, closing a finished connection, write interest.
void NetConnTable::after_write(uint32_t slot, size_t wrote)
{
    NetConn& c = conns_[slot];
    c.last_active = loop_.now_ms();
    if (wrote > 0)
        counter_add(&rt_.counters().bytes_out, static_cast<int64_t>(wrote));
    size_t queued = 0;
    if (c.io) {
        queued = c.queued();
        // The send timeout counts from the last byte the client took.
        if (queued == 0)
            c.io->out_since = 0;
        else if (wrote > 0 || c.io->out_since == 0)
            c.io->out_since = c.last_active;
    }
    // Stored only when it changes: the Workers read this line for every
    // reply, and a store would pull it away from them each time.
    int64_t* ob = &rt_.slot_at(rt_.index, slot)->out_bytes;
    if (atomic_load(ob) != static_cast<int64_t>(queued))
        atomic_store(ob, static_cast<int64_t>(queued));
    if (c.drain_worker >= 0 && queued <= c.drain_below)
        check_drain(slot);
    bool more = queued > 0;
    if (!more && c.replies_done > 0)
        count_replies_written(c);
    if (!more && c.close_after_flush) {
        finish(slot, "closed after flush");
        return;
    }
    if (!more && c.last_seen && c.inflight == 0 && !c.awaiting) {
        finish(slot, "last message answered");
        return;
    }
    if (more != c.want_write) {
        c.want_write = more;
        set_interest(slot);
    }
    if (!more && c.io && c.io->out.capacity() > 65536)
        c.io->out.shrink_if_empty();  // small buffers stay until the connection idles
}

// The replies ended since the last call are all written: each request
// took from its receipt (the wake-up that read its batch) until now.
void NetConnTable::count_replies_written(NetConn& c)
{
    if (c.recv_us > 0) {  // else not a reply to a request (nothing to time)
        ProcCounters& m = rt_.counters();
        // One clock read per write pass serves every reply it finishes.
        if (!write_pass_us_ || !in_write_pass_)
            write_pass_us_ = monotonic_us();
        int64_t us = static_cast<int64_t>(write_pass_us_ - c.recv_us);
        if (us < 0)
            us = 0;
        counter_add(&m.duration[duration_bucket(us)], static_cast<int64_t>(c.replies_done));
        counter_add(&m.duration_sum_us, us * c.replies_done);
    }
    c.replies_done = 0;
    if (!c.awaiting)
        c.recv_us = 0;  // the next request starts a new batch
}

// Publishes how many connections are reading a request, busy with one
// (handled or its reply written) and idle, as stub_status reports them.
void NetConnTable::count_states()
{
    int64_t reading = 0, writing = 0, waiting = 0;
    for (const NetConn& c : conns_) {
        if (!c.used)
            continue;
        if (c.awaiting || c.inflight > 0 || !c.no_output())
            writing++;
        else if (c.partial_since || !c.no_input())
            reading++;
        else
            waiting++;
    }
    ProcCounters& m = rt_.counters();
    atomic_store(&m.conn_reading, reading);
    atomic_store(&m.conn_writing, writing);
    atomic_store(&m.conn_waiting, waiting);
}

// Closes connections whose partial message is too old (with the
// protocol's timeout reply, e.g. 408), that sat idle too long, or whose
// client stopped taking its output.
void NetConnTable::sweep()
{
    const int send_timeout = rt_.cfg.send_timeout_ms;
    long long now = loop_.now_ms();
    for (uint32_t slot = 0; slot < conns_.size(); slot++) {
        NetConn& c = conns_[slot];
        if (!c.used || c.lingering)
            continue;
        if (send_timeout > 0 && c.io && c.io->out_since && now - c.io->out_since > send_timeout) {
            close(slot, "send timeout");
            continue;
        }
        if (c.close_after_flush)
            continue;
        if (c.streaming && !c.stream_full && rt_.protocol.idle_timeout_ms > 0 &&
            now - c.last_active > rt_.protocol.idle_timeout_ms) {
            // The rest of a message its Worker is handling stopped coming
            // (no reply can go out before its end: just close).
            close(slot, "streamed message stopped coming");
            continue;
        }
        if (c.awaiting || c.inflight > 0 || !c.no_output())
            continue;  // waiting for us, not for the client
        if (!timed_out(slot, now))
            continue;
        // A header section too slow, or a body that stopped coming.
        ConnProtocol* pr = c.proto(rt_.protocol, session_of(slot));
        std::string r = pr ? pr->timeout_reply() : std::string();
        if (r.empty()) {
            close(slot, "message timeout");
            continue;
        }
        c.read_closed = true;
        c.close_after_flush = true;
        c.append_out(r);
        set_interest(slot);
        mark_dirty(slot);
    }
}

// True when the connection's unfinished message is too late (the header
// timeout, or the idle timeout while input waits). A quiet keep-alive
// connection past the idle timeout is closed here.
bool NetConnTable::timed_out(uint32_t slot, long long now)
{
    const ProtocolSpec& ps = rt_.protocol;
    const NetConn& c = conns_[slot];
    bool header_late = ps.header_timeout_ms > 0 && c.partial_since &&
                       now - c.partial_since > ps.header_timeout_ms;
    bool idle = ps.idle_timeout_ms > 0 && now - c.last_active > ps.idle_timeout_ms;
    if (header_late || (idle && !c.no_input()))
        return true;
    if (idle)
        close(slot, "idle timeout");
    return false;
}

// The client must show it is alive by sending: output it takes proves
// nothing (the kernel takes bytes for a dead peer until its buffer is
// full). A connection is spared while its output is being written (the
// send timeout watches that), while a reply to it is due where every
// message has one (an HTTP request at its Worker), and while it waits to
// close.
void NetConnTable::check_heartbeat()
{
    long long limit = rt_.cfg.heartbeat_idle_time * 1000LL;
    long long now = loop_.now_ms();
    bool counted = rt_.protocol.counted_replies;
    for (uint32_t slot = 0; slot < conns_.size(); slot++) {
        NetConn& c = conns_[slot];
        if (!c.used || c.lingering || c.ack_wait || c.close_after_flush || !c.no_output() ||
            now - c.last_read <= limit)
            continue;
        if (counted && (c.awaiting || c.inflight > 0))
            continue;
        close(slot, "idle past heartbeat_idle_time");
    }
}

void NetConnTable::finish(uint32_t slot, const char* why)
{
    if (stopping_)
        linger(slot, why);
    else
        close(slot, why);
}

void NetConnTable::linger(uint32_t slot, const char* why)
{
    NetConn& c = conns_[slot];
    if (c.lingering)
        return;
    if (::shutdown(c.fd.get(), SHUT_WR) < 0) {
        close(slot, why);
        return;
    }
    c.lingering = true;
    c.want_write = false;
    c.linger_until = loop_.now_ms() + linger_ms_;
    if (c.io)
        c.io->in.clear();
    set_interest(slot);
    log(Level::debug, "session %llu lingering: %s",
        static_cast<unsigned long long>(session_of(slot)), why);
}

void NetConnTable::linger_read(uint32_t slot)
{
    char buf[16384];
    for (int i = 0; i < 4; i++) {  // bounded: a client may send without end
        ssize_t n = ::read(conns_[slot].fd.get(), buf, sizeof(buf));
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        close(slot, n == 0 ? "closed by the client" : "read error while lingering");
        return;
    }
}

void NetConnTable::set_stopping(bool keep_reading)
{
    stopping_ = true;
    keep_reading_ = keep_reading;
    long long quarter = rt_.cfg.max_wait_time * 1000LL / 4;
    quiet_ms_ = kDrainQuietMs < quarter ? kDrainQuietMs : static_cast<int>(quarter);
    linger_ms_ = kLingerMs < quarter ? kLingerMs : static_cast<int>(quarter);
    for (uint32_t slot = 0; slot < conns_.size(); slot++) {
        NetConn& c = conns_[slot];
        if (!c.used)
            continue;
        if (!keep_reading && !c.awaiting)
            c.close_after_flush = true;  // its output is the last of it
        set_interest(slot);
    }
}

void NetConnTable::drain()
{
    long long now = loop_.now_ms();
    for (uint32_t slot = 0; slot < conns_.size(); slot++)
        if (conns_[slot].used && drain_one(slot, now))
            finish(slot, "server stopping");
}

// True when the connection may close now (a pass of drain()).
bool NetConnTable::drain_one(uint32_t slot, long long now)
{
    NetConn& c = conns_[slot];
    if (c.lingering) {
        if (now >= c.linger_until)
            close(slot, "lingering close timed out");
        return false;
    }
    if (c.awaiting || c.inflight > 0 || c.ack_wait || !c.no_output() || c.dirty)
        return false;  // a reply is due, or being written
    if (!keep_reading_)
        return true;
    if (!c.no_input() || c.partial_since || !c.no_deferred() || now - c.last_active < quiet_ms_)
        return false;
    // A request arrived since the last poll: read and answer it first.
    return unread_bytes(c.fd.get()) == 0;
}

// Gives back the memory of connections idle for kTrimIdleMs: buffers and
// protocol state are made again when the next bytes arrive.
void NetConnTable::trim_idle()
{
    long long now = loop_.now_ms();
    size_t freed = 0;
    for (NetConn& c : conns_) {
        if (!c.used || c.awaiting || c.inflight > 0 || c.partial_since || c.dirty || c.streaming ||
            now - c.last_active < kTrimIdleMs)
            continue;
        freed += static_cast<size_t>(c.trim());
    }
    // After a burst, hand the freed heap back to the system (free() alone
    // keeps it in the process).
    if (freed >= 256)
        ::malloc_trim(64 * 1024);
}

}  // namespace zan
