// NetWorker, the client side: reading from clients, framing messages and
// dispatching them to Workers (dispatch_mode), buffering and writing the
// replies, and closing connections. Accepting, the loop, timers and
// stopping are in net_worker.cc; the replies coming in from Workers are in
// net_worker_replies.cc.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/net_worker.h"
#include "zan/sys.h"

namespace zan {
// ---- client I/O --------------------------------------------------------

void NetWorker::on_conn(uint32_t slot, uint32_t ev)
{
    if (ev & kWritable)
        write_conn(slot);
    if ((ev & kReadable) && conns_[slot].used && !conns_[slot].read_closed && !conns_[slot].paused)
        read_conn(slot);
}

void NetWorker::read_conn(uint32_t slot)
{
    Conn& c = conns_[slot];
    int err = 0;
    ssize_t n = c.x().in.read_fd(c.fd.get(), &err);
    if (n < 0) {
        if (err == EAGAIN)
            return;
        if (err != ECONNRESET)
            log_errno(Level::debug, err, "read from client");
        close_conn(slot, "read error");
        return;
    }
    if (n == 0) {
        // Half-close: answer what was asked, then close. The home Worker
        // acknowledges after the frames before it (same channel, in order).
        c.read_closed = true;
        set_interest(slot);
        if (!c.no_input())
            process_input(slot);
        if (!conns_[slot].used)
            return;
        log(Level::debug, "session %llu: end of input", static_cast<unsigned long long>(session_of(slot)));
        c.half_close_due = true;
        half_close(slot);
        return;
    }
    c.last_active = loop_.now_ms();
    int64_t* last = &rt_.slot_at(rt_.index, slot)->last_time;
    if (atomic_load(last) != wall_sec_)  // one store per second, not per read
        atomic_store(last, wall_sec_);
    process_input(slot);
}

long NetWorker::frame_len(const char* p, size_t n) const
{
    const ServerConfig& cfg = rt_.cfg;
    if (rt_.frame_hook)
        return rt_.frame_hook(p, n);
    if (cfg.open_eof_check) {
        const void* hit = ::memmem(p, n, cfg.package_eof.data(), cfg.package_eof.size());
        if (hit)
            return static_cast<const char*>(hit) - p + static_cast<long>(cfg.package_eof.size());
        return n > cfg.package_max_length ? -1 : 0;
    }
    if (cfg.open_length_check) {
        int sz = ServerConfig::length_size(cfg.package_length_type);
        size_t need = static_cast<size_t>(cfg.package_length_offset + sz);
        if (n < need)
            return 0;
        const unsigned char* q = reinterpret_cast<const unsigned char*>(p + cfg.package_length_offset);
        uint64_t v = 0;
        char t = cfg.package_length_type;
        bool little = (t == 'v' || t == 'V' || t == 'P' ||
                       ((t == 's' || t == 'S' || t == 'l' || t == 'L' || t == 'q' || t == 'Q') &&
                        __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__));
        for (int i = 0; i < sz; i++)
            v |= static_cast<uint64_t>(little ? q[i] : q[sz - 1 - i]) << (8 * i);
        bool is_signed = (t == 'c' || t == 's' || t == 'l' || t == 'q');
        if (is_signed && sz < 8 && (v >> (8 * sz - 1)) & 1)
            return -1;  // negative length
        uint64_t total = static_cast<uint64_t>(cfg.package_body_offset) + v;
        if (total > cfg.package_max_length)
            return -1;
        return n >= total ? static_cast<long>(total) : 0;
    }
    return static_cast<long>(n);  // raw stream: every read is a message
}

// The Worker a new connection belongs to (dispatch modes 1, 2, 3, 5).
// NetWorker k takes turns over the Workers k, k+N, k+2N, ... first, so
// that with as many Workers as NetWorkers each pair talks over one
// channel (bigger batches, fewer wake-ups); Workers beyond that share.
int NetWorker::home_worker()
{
    unsigned W = static_cast<unsigned>(rt_.W()), N = static_cast<unsigned>(rt_.N());
    unsigned k = static_cast<unsigned>(rt_.index);
    if (W < N)
        return static_cast<int>((k + rr_++) % W);
    unsigned mine = (W - k + N - 1) / N;  // Workers k, k+N, ... below W
    return static_cast<int>(k + N * (rr_++ % mine));
}

int NetWorker::choose_worker(Conn& c)
{
    unsigned W = static_cast<unsigned>(rt_.W());
    switch (rt_.cfg.dispatch_mode) {
    case 1:
        return static_cast<int>(rr_++ % W);
    case 3: {
        // Idle Worker first: the one with the smallest backlog right now.
        int best = -1;
        int64_t best_load = 0;
        unsigned start = rr_++;
        for (unsigned i = 0; i < W; i++) {
            int w = static_cast<int>((start + i) % W);
            const ProcSlot& p = rt_.procs[w];
            int64_t load = atomic_load(&p.dispatched) + undispatched_[static_cast<size_t>(w)] -
                           atomic_load(&p.handled);
            if (best < 0 || load < best_load) {
                best = w;
                best_load = load;
                if (load <= 0)
                    break;
            }
        }
        return best;
    }
    case 5:
        return c.uid ? static_cast<int>(c.uid % W) : c.home;
    default:  // 2 (connection) and 4 (client IP, fixed at connect)
        return c.home;
    }
}

// The client half-closed. Once the messages read before its end of file
// are queued (not while the connection waits for room in a full channel),
// ask the home Worker to acknowledge after them; the connection closes
// when the ack comes back.
void NetWorker::half_close(uint32_t slot)
{
    Conn& c = conns_[slot];
    if (!c.used || !c.half_close_due || c.paused)
        return;
    c.half_close_due = false;
    c.ack_wait = true;
    chan(c.home).push_control(kFrameClose, session_of(slot), 1);
    chan_dirty_[static_cast<size_t>(c.home)] = true;
}

void NetWorker::process_input(uint32_t slot)
{
    for (;;) {
        Conn& c = conns_[slot];
        if (!c.used || c.no_input() || c.paused || c.last_seen || c.reject_after)
            return;
        long len = proto(c) ? next_request(slot) : next_frame(slot);
        if (len <= 0 || !dispatch(slot, static_cast<size_t>(len)))
            return;
    }
}

// The length of the next complete request (protocol layer, e.g. HTTP), or
// 0 when there is none yet or the input was refused: a refusal is answered
// here, after the replies still due, and the Worker never sees it.
long NetWorker::next_request(uint32_t slot)
{
    Conn& c = conns_[slot];
    ConnIo& io = *c.io;
    ConnProtocol* pr = c.proto.get();
    size_t mlen = 0;
    std::string reply, interim;
    ConnProtocol::Verdict v = pr->next(io.in.peek(), io.in.readable(), &mlen, &reply, &interim);
    if (!interim.empty()) {
        if (c.inflight == 0) {
            append_out(c, interim);
            mark_dirty(slot);
        } else {
            io.deferred += interim;  // after the replies still due
        }
    }
    if (v == ConnProtocol::kReject) {
        io.in.clear();
        c.read_closed = true;
        c.reject_after = true;
        io.deferred += reply;
        set_interest(slot);
        if (c.inflight == 0) {
            append_out(c, io.deferred);
            io.deferred.clear();
            c.close_after_flush = true;
            mark_dirty(slot);
        }
        return 0;
    }
    if (v == ConnProtocol::kMessage && mlen > 0)
        return static_cast<long>(mlen);
    // The header timeout covers the header section; a body is timed by
    // the idle timeout between reads instead.
    if (pr->in_body())
        c.partial_since = 0;
    else if (!c.partial_since)
        c.partial_since = loop_.now_ms();
    return 0;
}

// The length of the next complete frame (package_* framing or a raw
// stream), or 0 when there is none yet or the connection was closed for
// bad or oversized input.
long NetWorker::next_frame(uint32_t slot)
{
    ConnIo& io = *conns_[slot].io;
    long len = frame_len(io.in.peek(), io.in.readable());
    if (len == 0 && io.in.readable() > rt_.cfg.package_max_length) {
        log(Level::warn, "message larger than package_max_length (%zu): closing",
            rt_.cfg.package_max_length);
        close_conn(slot, "message too large");
    } else if (len < 0) {
        log(Level::info, "bad message from client: closing");
        close_conn(slot, "bad message");
        return 0;
    }
    return len;
}

// Queues the first len input bytes for their Worker. False when reading
// must stop: the Worker's channel is full (back-pressure: the client is
// paused until it drains) or this was the connection's last message.
bool NetWorker::dispatch(uint32_t slot, size_t len)
{
    Conn& c = conns_[slot];
    ConnIo& io = *c.io;
    int w = choose_worker(c);
    Channel& ch = chan(w);
    int flags = static_cast<int>((static_cast<uint32_t>(c.messages) & kSeqMask) << kSeqShift);
    int max = rt_.protocol.max_messages;
    if (max > 0 && c.messages + 1 >= max)
        flags |= kDataLast;
    if (!ch.push(kFrameData, session_of(slot), flags, std::string_view(io.in.peek(), len))) {
        c.paused = true;
        set_interest(slot);
        waiters_[static_cast<size_t>(w)].push_back(slot);
        return false;
    }
    undispatched_[static_cast<size_t>(w)]++;  // published in flush_channels()
    chan_dirty_[static_cast<size_t>(w)] = true;
    c.awaiting = true;
    c.last_worker = w;
    c.messages++;
    c.partial_since = 0;
    if (rt_.protocol.counted_replies)
        c.inflight++;
    io.in.consume(len);
    bool ends = false;
    if (c.proto) {
        ends = c.proto->ends_connection();
        c.proto->consumed();
    }
    if ((flags & kDataLast) || ends) {
        c.last_seen = true;  // read nothing more; close once answered
        io.in.clear();
        set_interest(slot);
        return false;
    }
    return true;
}

void NetWorker::set_interest(uint32_t slot)
{
    Conn& c = conns_[slot];
    uint32_t m = 0;
    if (!c.read_closed && !c.paused && !c.last_seen && !stopping_)
        m |= kReadable;
    if (c.want_write)
        m |= kWritable;
    loop_.update(c.fd.get(), m);
}

void NetWorker::mark_dirty(uint32_t slot)
{
    Conn& c = conns_[slot];
    if (!c.dirty) {
        c.dirty = true;
        dirty_.push_back(slot);
    }
}

void NetWorker::append_out(Conn& c, std::string_view data)
{
    ConnIo& io = c.x();
    if (io.segs.empty()) {
        io.out.append(data);
    } else if (!io.segs.back().is_file()) {
        io.segs.back().bytes.append(data.data(), data.size());
    } else {
        io.segs.emplace_back();
        io.segs.back().bytes.assign(data.data(), data.size());
    }
}

// Writes Conn::out, then the queued segments in order, adding the bytes
// taken to *wrote. Returns false on a write error (in *err); true when
// done or the socket is full.
bool NetWorker::write_segments(uint32_t slot, int* err, size_t* wrote)
{
    Conn& c = conns_[slot];
    if (!c.io)
        return true;
    ConnIo& io = *c.io;
    for (;;) {
        if (!io.out.empty()) {
            ssize_t n = io.out.write_fd(c.fd.get(), err);
            if (n < 0)
                return *err == EAGAIN;
            *wrote += static_cast<size_t>(n);
            if (!io.out.empty())
                return true;  // short write: the socket is full
        }
        if (io.segs.empty())
            return true;
        Segment& sg = io.segs.front();
        if (!sg.is_file()) {
            io.out.append(sg.bytes);
            io.segs.erase(io.segs.begin());
            continue;
        }
        if (!sg.file && sg.left > 0) {
            sg.file = Fd(::open(sg.path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!sg.file) {
                // The Worker promised these bytes (its headers are sent):
                // cut the connection rather than send a short body.
                *err = errno;
                log_errno(Level::warn, errno, "sendfile: open(%s)", sg.path.c_str());
                return false;
            }
        }
        while (sg.left > 0) {
            ssize_t n = ::sendfile(c.fd.get(), sg.file.get(), &sg.offset,
                                   sg.left < (1u << 20) ? sg.left : (1u << 20));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                *err = errno;
                return errno == EAGAIN;
            }
            if (n == 0) {  // the file shrank under us: the reply is cut short
                *err = EIO;
                return false;
            }
            sg.left -= static_cast<size_t>(n);
            *wrote += static_cast<size_t>(n);
        }
        io.segs.erase(io.segs.begin());
    }
}

void NetWorker::write_conn(uint32_t slot)
{
    Conn& c = conns_[slot];
    if (!c.used)
        return;
    int err = 0;
    size_t wrote = 0;
    if (!write_segments(slot, &err, &wrote)) {
        if (err != EPIPE && err != ECONNRESET)
            log_errno(Level::debug, err, "write to client");
        close_conn(slot, "write error");
        return;
    }
    c.last_active = loop_.now_ms();
    size_t queued = 0;
    if (c.io) {
        queued = c.io->out.readable();
        for (const Segment& sg : c.io->segs)
            queued += sg.is_file() ? sg.left : sg.bytes.size();
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
    bool more = queued > 0;
    if (!more && c.close_after_flush) {
        close_conn(slot, "closed after flush");
        return;
    }
    if (!more && c.last_seen && c.inflight == 0 && !c.awaiting) {
        close_conn(slot, "last message answered");
        return;
    }
    if (more != c.want_write) {
        c.want_write = more;
        set_interest(slot);
    }
    if (!more && c.io && c.io->out.capacity() > 65536)
        c.io->out.shrink_if_empty();  // small buffers stay until the connection idles
}

void NetWorker::flush_conns()
{
    // dirty_ may grow while we write (it does not: writes only shrink), but
    // close_conn may run; iterate by index over a swapped list.
    std::vector<uint32_t> list;
    list.swap(dirty_);
    for (uint32_t slot : list) {
        conns_[slot].dirty = false;
        write_conn(slot);
    }
    list.clear();
    if (dirty_.empty())
        dirty_.swap(list);  // keep the capacity
    if (stopping_)
        check_drained();
}

// ---- closing -----------------------------------------------------------

void NetWorker::close_conn(uint32_t slot, const char* why)
{
    Conn& c = conns_[slot];
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
    if (!c.ack_wait) {
        chan(c.home).push_control(kFrameClose, s, 0);
        chan_dirty_[static_cast<size_t>(c.home)] = true;
    }
    c.gen++;
    c.io.reset();
    c.proto.reset();
    c.dirty = false;
    free_.push_back(slot);
    live_--;
    log(Level::debug, "session %llu closed: %s", static_cast<unsigned long long>(s), why);
    resume_accept();
}

}  // namespace zan
