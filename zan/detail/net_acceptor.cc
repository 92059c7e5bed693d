#include "zan/detail/net_acceptor.h"

#include <errno.h>
#include <unistd.h>

#include <utility>

#include "zan/log.h"
#include "zan/detail/net_conn_table.h"
#include "zan/socket.h"
#include "zan/sys.h"

namespace zan {

static const int kAcceptBurst = 64;
static const int kAcceptRetryMs = 100;    // after EMFILE/ENFILE (or sooner, on a close)
static const int kAcceptBusyDelayMs = 5;  // after losing the accept lock
static const int kShareWaitMs = 20;       // longest step-aside when over our share
// After refusing new connection requests, the time left to the handshakes
// under way (their SYN-ACK sent, the client's ACK in flight): a round
// trip on any network a load balancer shares with its backends.
static const int kSynGraceMs = 20;

NetAcceptor::NetAcceptor(Runtime& rt, EventLoop& loop, const NetConnTable& table)
    : rt_(rt), loop_(loop), table_(table)
{
}

void NetAcceptor::listen()
{
    for (size_t li = 0; li < rt_.listeners.size(); li++)
        loop_.watch(rt_.listeners[li].fd.get(), kReadable,
                    [this, li](uint32_t) { on_accept(static_cast<int>(li)); });
}

// True when this NetWorker holds more than its share of the server's
// connections (nginx's ngx_accept_disabled, by count): it then leaves the
// next ones to the others, so that the load spreads over the NetWorkers.
// The share counts the connections waiting in the listen queue too, so a
// burst is split at once (each takes its part in one go) rather than by
// turns of a connection or two, each turn ending in a pause; and a queue
// more than half full is never left waiting (the kernel would drop SYNs).
bool NetAcceptor::over_share(int lfd) const
{
    int64_t n = rt_.N();
    if (n < 2)
        return false;
    int64_t total = atomic_load(&rt_.stats->connection_num);
    int64_t live = static_cast<int64_t>(table_.live());
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

// Over our share: step aside, but never for longer than kShareWaitMs
// (another NetWorker may be stuck, and the backlog must not wait).
bool NetAcceptor::my_turn(int lfd, bool* forced)
{
    *forced = false;
    if (over_share(lfd)) {
        long long now = loop_.now_ms();
        if (!share_wait_since_)
            share_wait_since_ = now;
        if (now - share_wait_since_ < kShareWaitMs) {
            pause(1);
            return false;
        }
        *forced = true;
    }
    share_wait_since_ = 0;
    return true;
}

int NetAcceptor::lock()
{
    if (!rt_.cfg.accept_lock)
        return 0;
    ShmMutex::Result r = rt_.accept_lock->try_lock();
    if (r == ShmMutex::kBusy) {
        // Another NetWorker is accepting. The socket stays readable
        // (level-triggered), so look away for a moment instead of
        // spinning on it (nginx's accept_mutex_delay).
        pause(kAcceptBusyDelayMs);
        return -1;
    }
    if (r == ShmMutex::kError) {
        log_errno(Level::error, errno, "accept lock");
        return -1;
    }
    if (r == ShmMutex::kRecovered)
        log(Level::warn, "accept lock recovered from a NetWorker that died holding it");
    return 1;
}

void NetAcceptor::on_accept(int li)
{
    if (closed_ || paused_)
        return;
    int lfd = rt_.listeners[static_cast<size_t>(li)].fd.get();
    bool forced;
    if (!my_turn(lfd, &forced))
        return;
    int locked = lock();
    if (locked < 0)
        return;
    for (int i = 0; i < kAcceptBurst; i++) {
        InetAddr peer;
        int fd = accept_conn(lfd, &peer);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                log_errno(Level::warn, errno, "accept4() failed: pausing accepts");
                pause(kAcceptRetryMs);
            } else if (errno != EAGAIN) {
                log_errno(Level::error, errno, "accept4() failed");
            }
            break;
        }
        accept_one(fd, peer, li);
        if (!forced && over_share(lfd))
            break;  // the rest of the burst is for the other NetWorkers
    }
    if (locked > 0)
        rt_.accept_lock->unlock();
}

void NetAcceptor::accept_one(int fd, const InetAddr& peer, int li)
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
    new_conn_(fd, peer, li);
}

// Stops watching the listeners (no busy loop) until a connection closes
// or a short timer passes.
void NetAcceptor::pause(int ms)
{
    if (paused_)
        return;
    paused_ = true;
    for (auto& l : rt_.listeners)
        loop_.update(l.fd.get(), 0);
    timer_ = loop_.run_after(ms, [this] {
        timer_ = 0;
        resume();
    });
}

void NetAcceptor::resume()
{
    if (!paused_ || closed_)
        return;
    paused_ = false;
    if (timer_) {
        loop_.cancel(timer_);
        timer_ = 0;
    }
    for (auto& l : rt_.listeners)
        loop_.update(l.fd.get(), kReadable);
}

void NetAcceptor::stop()
{
    if (stopped_)
        return;
    stopped_ = true;
    for (auto& l : rt_.listeners)
        if (refuse_new_syns(l.fd.get()) < 0)
            log_errno(Level::warn, errno, "refusing new connections on %s (closing anyway)",
                      l.addr.to_string().c_str());
    // Accepting goes on under the usual rules until the grace ends.
    loop_.run_after(kSynGraceMs, [this] {
        accept_rest();
        close_listeners();
    });
}

void NetAcceptor::hand_over()
{
    stopped_ = true;
    close_listeners();
}

// Takes what the accept queues still hold, lock and share aside: a
// connection left there would be reset when the socket closes.
void NetAcceptor::accept_rest()
{
    for (size_t li = 0; li < rt_.listeners.size(); li++) {
        int lfd = rt_.listeners[li].fd.get();
        if (lfd < 0)
            continue;
        for (;;) {
            InetAddr peer;
            int fd = accept_conn(lfd, &peer);
            if (fd < 0) {
                if (errno != EAGAIN)
                    log_errno(Level::error, errno, "accept4() failed while stopping");
                break;
            }
            accept_one(fd, peer, static_cast<int>(li));
        }
    }
}

void NetAcceptor::close_listeners()
{
    if (closed_)
        return;
    closed_ = true;
    if (timer_) {
        loop_.cancel(timer_);
        timer_ = 0;
    }
    for (auto& l : rt_.listeners) {
        if (!l.fd)
            continue;
        loop_.unwatch(l.fd.get());
        l.fd.reset();
    }
}

}  // namespace zan
