#include "zan/net_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
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
      undispatched_(static_cast<size_t>(rt.W()), 0),
      handed_listed_(static_cast<size_t>(rt.W()), false)
{
    rt_.net_worker = this;
}

NetWorker::~NetWorker() { rt_.net_worker = nullptr; }

// Reads what every Worker channel holds (replies published while we
// were about to block).
void NetWorker::read_replies()
{
    for (int w = 0; w < rt_.W(); w++)
        on_channel(w, kReadable);
}

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
        // A Worker we handed messages to is still awake: its replies are
        // due, so give up the CPU (hop_yield times at most) before blocking.
        if (!handed_.empty()) {
            int turns = 0;
            bool ready = Channel::yield_to_peers(rt_.cfg.hop_yield, handed_, &turns);
            if (turns > 0)
                atomic_add(&rt_.procs[rt_.id].hop_yields, static_cast<int64_t>(turns));
            if (ready) {
                loop_.defer([this] { read_replies(); });
                return;
            }
            handed_.clear();
            handed_listed_.assign(handed_listed_.size(), false);
        }
        // Tell the Workers we may block, then look at the rings once more:
        // replies published before they could see it are read now.
        Channel::prepare_sleep(rt_.sleeping_word());
        for (int w = 0; w < rt_.W(); w++) {
            if (chan(w).ready()) {
                Channel::end_sleep(rt_.sleeping_word());
                loop_.defer([this] { read_replies(); });
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
    for (int t : {ps.header_timeout_ms, ps.idle_timeout_ms, rt_.cfg.send_timeout_ms})
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
// protocol's timeout reply, e.g. 408), that sat idle too long, or whose
// client stopped taking its output.
void NetWorker::sweep()
{
    const ProtocolSpec& ps = rt_.protocol;
    const int send_timeout = rt_.cfg.send_timeout_ms;
    long long now = loop_.now_ms();
    for (uint32_t slot = 0; slot < conns_.size(); slot++) {
        Conn& c = conns_[slot];
        if (!c.used)
            continue;
        if (send_timeout > 0 && c.io && c.io->out_since && now - c.io->out_since > send_timeout) {
            close_conn(slot, "send timeout");
            continue;
        }
        if (c.close_after_flush)
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
// The share counts the connections waiting in the listen queue too, so a
// burst is split at once (each takes its part in one go) rather than by
// turns of a connection or two, each turn ending in a pause; and a queue
// more than half full is never left waiting (the kernel would drop SYNs).
bool NetWorker::over_share(int lfd) const
{
    int64_t n = rt_.N();
    if (n < 2)
        return false;
    int64_t total = atomic_load(&rt_.stats->connection_num);
    int64_t live = static_cast<int64_t>(live_);
    if (live <= total / n + 1)
        return false;
    int limit = 0;
    int queued = accept_queue(lfd, &limit);
    if (queued <= 0)
        return true;
    if (2 * static_cast<int64_t>(queued) >= limit)
        return false;
    return live >= (total + queued + n - 1) / n;
}

void NetWorker::on_accept(int li)
{
    if (stopping_ || accept_paused_)
        return;
    // Over our share: step aside, but never for longer than kShareWaitMs
    // (another NetWorker may be stuck, and the backlog must not wait).
    int lfd = rt_.listeners[static_cast<size_t>(li)].fd.get();
    bool forced = false;
    if (over_share(lfd)) {
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
        if (!forced && over_share(lfd))
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
    c.half_close_due = false;
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
    ch.push_control(kFrameConnect, session_of(slot), rt_.index);
    chan_dirty_[static_cast<size_t>(c.home)] = true;
}

// ---- control and stopping ---------------------------------------------

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
