#include "zan/net_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/socket.h"
#include "zan/sys.h"

namespace zan {

static const int kAcceptBurst = 64;
static const int kAcceptRetryMs = 100;   // after EMFILE/ENFILE (or sooner, on a close)
static const int kAcceptBusyDelayMs = 5;  // after losing the accept lock
static const int kShareWaitMs = 20;       // longest step-aside when over our share

NetWorker::NetWorker(Runtime& rt)
    : rt_(rt),
      waiters_(static_cast<size_t>(rt.W())),
      chan_dirty_(static_cast<size_t>(rt.W()), false),
      undispatched_(static_cast<size_t>(rt.W()), 0)
{
    rt_.net_worker = this;
}

NetWorker::~NetWorker() { rt_.net_worker = nullptr; }

SessionId NetWorker::session_of(uint32_t slot) const
{
    return make_session(conns_[slot].gen, rt_.index, slot);
}

int NetWorker::run()
{
    for (size_t li = 0; li < rt_.listeners.size(); li++)
        loop_.watch(rt_.listeners[li].fd.get(), kReadable,
                    [this, li](uint32_t) { on_accept(static_cast<int>(li)); });
    // The Workers write our eventfd when they publish replies while we
    // sleep, or when they free room we wait for: look at every channel.
    loop_.watch(rt_.wake_of(rt_.id), kReadable | kEdge, [this](uint32_t) {
        for (int w = 0; w < rt_.W(); w++)
            on_channel(w, kReadable | kWritable);
    });
    loop_.watch(rt_.ctl.fd(), kReadable, [this](uint32_t) { on_ctl(); });
    loop_.watch_signal(SIGTERM, [this](const signalfd_siginfo&) {
        if (rt_.master_gone())
            rt_.exit_orphaned();
        begin_stop();
    });
    loop_.watch_signal(SIGRTMIN, [](const signalfd_siginfo&) { Logger::instance().reopen(); });
    loop_.add_before_poll([this] {
        flush_conns();
        flush_channels();
        // Tell the Workers we may block, then look at the rings once more:
        // replies published before they could see it are read now.
        Channel::prepare_sleep(rt_.sleeping_word());
        for (int w = 0; w < rt_.W(); w++) {
            if (chan(w).ready()) {
                Channel::end_sleep(rt_.sleeping_word());
                loop_.defer([this] {
                    for (int v = 0; v < rt_.W(); v++)
                        on_channel(v, kReadable);
                });
                break;
            }
        }
    });
    loop_.add_after_poll([this] {
        Channel::end_sleep(rt_.sleeping_word());
        wall_sec_ = static_cast<int64_t>(::time(nullptr));
    });
    const ProtocolSpec& ps = rt_.protocol;
    int shortest = 0;
    for (int t : {ps.header_timeout_ms, ps.idle_timeout_ms})
        if (t > 0 && (shortest == 0 || t < shortest))
            shortest = t;
    if (shortest > 0) {
        long long every = shortest / 4;
        every = every < 50 ? 50 : (every > 1000 ? 1000 : every);
        loop_.run_every(every, [this] { sweep(); });
    }
    loop_.run_every(250, [this] { trim_idle(); });
    rt_.ctl.push(kCtlReady, 0, 0, std::string_view());
    rt_.ctl.flush_wait(1000);
    loop_.run();
    return 0;
}

ConnProtocol* NetWorker::proto(Conn& c)
{
    if (!c.proto && rt_.protocol.make)
        c.proto = rt_.protocol.make();
    return c.proto.get();
}

// Gives back the memory of connections idle for 250 ms: buffers and
// protocol state are made again when the next bytes arrive.
void NetWorker::trim_idle()
{
    long long now = loop_.now_ms();
    size_t freed = 0;
    for (Conn& c : conns_) {
        if (!c.used || c.awaiting || c.inflight > 0 || c.partial_since || c.dirty ||
            now - c.last_active < 250)
            continue;
        if (c.io && c.no_input() && c.no_output() && c.no_deferred()) {
            c.io.reset();
            freed++;
        }
        if (c.proto && c.no_input()) {
            c.proto.reset();
            freed++;
        }
    }
    // After a burst, hand the freed heap back to the system (free() alone
    // keeps it in the process).
    if (freed >= 256)
        ::malloc_trim(64 * 1024);
}

// Closes connections whose partial message is too old (with the
// protocol's timeout reply, e.g. 408) or that sat idle too long.
void NetWorker::sweep()
{
    const ProtocolSpec& ps = rt_.protocol;
    long long now = loop_.now_ms();
    for (uint32_t slot = 0; slot < conns_.size(); slot++) {
        Conn& c = conns_[slot];
        if (!c.used || c.close_after_flush)
            continue;
        if (c.awaiting || c.inflight > 0 || !c.no_output())
            continue;  // waiting for us, not for the client
        bool header_late = ps.header_timeout_ms > 0 && c.partial_since &&
                           now - c.partial_since > ps.header_timeout_ms;
        bool idle = ps.idle_timeout_ms > 0 && now - c.last_active > ps.idle_timeout_ms;
        if (!header_late && !(idle && !c.no_input())) {
            if (idle)
                close_conn(slot, "idle timeout");  // a quiet keep-alive connection
            continue;
        }
        // A header section too slow, or a body that stopped coming.
        ConnProtocol* pr = proto(c);
        std::string r = pr ? pr->timeout_reply() : std::string();
        if (r.empty()) {
            close_conn(slot, "message timeout");
            continue;
        }
        c.read_closed = true;
        c.close_after_flush = true;
        append_out(c, r);
        set_interest(slot);
        mark_dirty(slot);
    }
}

// ---- accepting ---------------------------------------------------------

// True when this NetWorker holds more than its share of the server's
// connections (nginx's ngx_accept_disabled, by count): it then leaves the
// next ones to the others, so that the load spreads over the NetWorkers.
bool NetWorker::over_share() const
{
    int64_t n = rt_.N();
    if (n < 2)
        return false;
    int64_t total = atomic_load(&rt_.stats->connection_num);
    return static_cast<int64_t>(live_) > total / n + 1;
}

void NetWorker::on_accept(int li)
{
    if (stopping_ || accept_paused_)
        return;
    // Over our share: step aside, but never for longer than kShareWaitMs
    // (another NetWorker may be stuck, and the backlog must not wait).
    bool forced = false;
    if (over_share()) {
        long long now = loop_.now_ms();
        if (!share_wait_since_)
            share_wait_since_ = now;
        if (now - share_wait_since_ < kShareWaitMs) {
            pause_accept(1);
            return;
        }
        forced = true;
    }
    share_wait_since_ = 0;
    bool locked = false;
    if (rt_.cfg.accept_lock) {
        ShmMutex::Result r = rt_.accept_lock->try_lock();
        if (r == ShmMutex::kBusy) {
            // Another NetWorker is accepting. The socket stays readable
            // (level-triggered), so look away for a moment instead of
            // spinning on it (nginx's accept_mutex_delay).
            pause_accept(kAcceptBusyDelayMs);
            return;
        }
        if (r == ShmMutex::kError) {
            log_errno(Level::error, errno, "accept lock");
            return;
        }
        if (r == ShmMutex::kRecovered)
            log(Level::warn, "accept lock recovered from a NetWorker that died holding it");
        locked = true;
    }
    int lfd = rt_.listeners[static_cast<size_t>(li)].fd.get();
    for (int i = 0; i < kAcceptBurst; i++) {
        InetAddr peer;
        int fd = accept_conn(lfd, &peer);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                log_errno(Level::warn, errno, "accept4() failed: pausing accepts");
                pause_accept(kAcceptRetryMs);
            } else if (errno != EAGAIN) {
                log_errno(Level::error, errno, "accept4() failed");
            }
            break;
        }
        new_conn(fd, peer, li);
        if (!forced && over_share())
            break;  // the rest of the burst is for the other NetWorkers
    }
    if (locked)
        rt_.accept_lock->unlock();
}

// Out of descriptors: stop watching the listeners (no busy loop) until a
// connection closes or a short timer passes.
void NetWorker::pause_accept(int ms)
{
    if (accept_paused_)
        return;
    accept_paused_ = true;
    for (auto& l : rt_.listeners)
        loop_.update(l.fd.get(), 0);
    accept_timer_ = loop_.run_after(ms, [this] {
        accept_timer_ = 0;
        resume_accept();
    });
}

void NetWorker::resume_accept()
{
    if (!accept_paused_ || stopping_)
        return;
    accept_paused_ = false;
    if (accept_timer_) {
        loop_.cancel(accept_timer_);
        accept_timer_ = 0;
    }
    for (auto& l : rt_.listeners)
        loop_.update(l.fd.get(), kReadable);
}

void NetWorker::new_conn(int fd, const InetAddr& peer, int li)
{
    if (atomic_load(&rt_.stats->connection_num) >= rt_.cfg.max_connection) {
        ::close(fd);
        long long now = monotonic_ms();
        if (now - last_limit_log_ > 1000) {
            last_limit_log_ = now;
            log(Level::warn, "max_connection (%d) reached: refusing %s", rt_.cfg.max_connection,
                peer.to_string().c_str());
        }
        return;
    }
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        slot = static_cast<uint32_t>(conns_.size());
        conns_.emplace_back();
    }
    Conn& c = conns_[slot];
    SessionSlot* ss = rt_.slot_at(rt_.index, slot);
    c.fd.reset(fd);
    c.gen = atomic_load(&ss->generation);
    c.used = true;
    c.awaiting = c.read_closed = c.ack_wait = c.close_after_flush = c.paused = false;
    c.dirty = c.want_write = false;
    c.last_worker = -1;
    c.uid = 0;
    c.reject_after = c.last_seen = false;
    c.inflight = c.messages = 0;
    c.reply_seq = 0;
    c.partial_since = 0;
    c.last_active = loop_.now_ms();
    if (rt_.cfg.dispatch_mode == 4)
        c.home = static_cast<int>(peer.ip_hash() % static_cast<uint32_t>(rt_.W()));
    else
        c.home = home_worker();
    if (rt_.cfg.open_tcp_nodelay)
        set_tcp_nodelay(fd, true);

    int64_t now = static_cast<int64_t>(::time(nullptr));
    ss->fd = fd;
    ss->worker = c.home;
    ss->listener = li;
    ss->connect_time = now;
    ss->last_time = now;
    ss->out_bytes = 0;
    ss->uid = 0;
    ss->addr_len = peer.len() <= sizeof(ss->addr) ? peer.len() : sizeof(ss->addr);
    memcpy(ss->addr, peer.sa(), ss->addr_len);
    atomic_store(&ss->active, 1);
    atomic_add(&rt_.stats->connection_num, static_cast<int64_t>(1));
    atomic_add(&rt_.stats->accept_count, static_cast<int64_t>(1));
    live_++;

    loop_.watch(fd, kReadable, [this, slot](uint32_t ev) { on_conn(slot, ev); });
    Channel& ch = chan(c.home);
    ch.push(kFrameConnect, session_of(slot), rt_.index, std::string_view());
    chan_dirty_[static_cast<size_t>(c.home)] = true;
}

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
        c.ack_wait = true;
        chan(c.home).push(kFrameClose, session_of(slot), 1, std::string_view());
        chan_dirty_[static_cast<size_t>(c.home)] = true;
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

void NetWorker::process_input(uint32_t slot)
{
    for (;;) {
        Conn& c = conns_[slot];
        if (!c.used || c.no_input() || c.paused || c.last_seen || c.reject_after)
            return;
        ConnIo& io = *c.io;
        long len;
        if (ConnProtocol* pr = proto(c)) {
            size_t mlen = 0;
            std::string reply, interim;
            ConnProtocol::Verdict v =
                pr->next(io.in.peek(), io.in.readable(), &mlen, &reply, &interim);
            if (!interim.empty()) {
                if (c.inflight == 0) {
                    append_out(c, interim);
                    mark_dirty(slot);
                } else {
                    io.deferred += interim;  // after the replies still due
                }
            }
            if (v == ConnProtocol::kReject) {
                // Answer bad input here, after the replies still due, and
                // close: the Worker never sees it.
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
                return;
            }
            len = v == ConnProtocol::kMessage ? static_cast<long>(mlen) : 0;
            if (len == 0) {
                // The header timeout covers the header section; a body
                // is timed by the idle timeout between reads instead.
                if (pr->in_body())
                    c.partial_since = 0;
                else if (!c.partial_since)
                    c.partial_since = loop_.now_ms();
                return;
            }
        } else {
            len = frame_len(io.in.peek(), io.in.readable());
            if (len == 0) {
                if (io.in.readable() > rt_.cfg.package_max_length) {
                    log(Level::warn, "message larger than package_max_length (%zu): closing",
                        rt_.cfg.package_max_length);
                    close_conn(slot, "message too large");
                }
                return;
            }
            if (len < 0) {
                log(Level::info, "bad message from client: closing");
                close_conn(slot, "bad message");
                return;
            }
        }
        int w = choose_worker(c);
        Channel& ch = chan(w);
        int flags = static_cast<int>((static_cast<uint32_t>(c.messages) & kSeqMask) << kSeqShift);
        int max = rt_.protocol.max_messages;
        if (max > 0 && c.messages + 1 >= max)
            flags |= kDataLast;
        if (!ch.push(kFrameData, session_of(slot), flags,
                     std::string_view(io.in.peek(), static_cast<size_t>(len)))) {
            // The Worker is saturated: stop reading this client until the
            // channel drains (back-pressure instead of unbounded memory).
            c.paused = true;
            set_interest(slot);
            waiters_[static_cast<size_t>(w)].push_back(slot);
            return;
        }
        undispatched_[static_cast<size_t>(w)]++;  // published in flush_channels()
        chan_dirty_[static_cast<size_t>(w)] = true;
        c.awaiting = true;
        c.last_worker = w;
        c.messages++;
        c.partial_since = 0;
        if (rt_.protocol.counted_replies)
            c.inflight++;
        io.in.consume(static_cast<size_t>(len));
        bool ends = false;
        if (c.proto) {
            ends = c.proto->ends_connection();
            c.proto->consumed();
        }
        if ((flags & kDataLast) || ends) {
            c.last_seen = true;  // read nothing more; close once answered
            io.in.clear();
            set_interest(slot);
            return;
        }
    }
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
    } else if (!io.segs.back().file) {
        io.segs.back().bytes.append(data.data(), data.size());
    } else {
        io.segs.emplace_back();
        io.segs.back().bytes.assign(data.data(), data.size());
    }
}

// Writes Conn::out, then the queued segments in order. Returns false on a
// write error (in *err); true when done or the socket is full.
bool NetWorker::write_segments(uint32_t slot, int* err)
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
            if (!io.out.empty())
                return true;  // short write: the socket is full
        }
        if (io.segs.empty())
            return true;
        Segment& sg = io.segs.front();
        if (!sg.file) {
            io.out.append(sg.bytes);
            io.segs.erase(io.segs.begin());
            continue;
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
    if (!write_segments(slot, &err)) {
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
            queued += sg.file ? sg.left : sg.bytes.size();
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
        chan(c.home).push(kFrameClose, s, 0, std::string_view());
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

// Fails the connections waiting on Worker w (it died, or its channel
// broke): a protocol failure reply (e.g. 503) after what is queued, or a
// plain close.
void NetWorker::on_ctl()
{
    int r = rt_.ctl.receive([this](const FrameHeader& h, std::string_view) {
        if (h.kind != kCtlWorkerDied)
            return;
        // What the dead Worker had read is lost: fail those clients now.
        fail_waiting_on(h.arg);
    });
    if (r < 0 && errno != EAGAIN) {
        log(Level::warn, "master is gone: exiting");
        rt_.exit_orphaned();
    }
}

void NetWorker::begin_stop()
{
    if (stopping_)
        return;
    stopping_ = true;
    for (auto& l : rt_.listeners) {
        loop_.unwatch(l.fd.get());
        l.fd.reset();
    }
    // Idle connections close now; busy ones once answered and flushed.
    for (uint32_t slot = 0; slot < conns_.size(); slot++) {
        Conn& c = conns_[slot];
        if (!c.used)
            continue;
        if (!c.awaiting && c.no_output() && !c.ack_wait)
            close_conn(slot, "shutdown");
        else {
            c.close_after_flush = !c.awaiting;
            set_interest(slot);
        }
    }
    check_drained();
}

void NetWorker::check_drained()
{
    if (live_ > 0) {
        for (uint32_t slot = 0; slot < conns_.size(); slot++) {
            Conn& c = conns_[slot];
            if (c.used && !c.awaiting && !c.ack_wait && c.no_output())
                close_conn(slot, "shutdown");
        }
        if (live_ > 0)
            return;
    }
    // Hand the close notices to the Workers before leaving.
    for (int w = 0; w < rt_.W(); w++)
        if (chan(w).pending())
            chan(w).flush_wait(1000);
    loop_.stop();
}

}  // namespace zan
