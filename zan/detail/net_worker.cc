#include "zan/detail/net_worker.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>

#include "zan/log.h"

namespace zan {

static const int kDrainCheckMs = 50;  // while stopping

NetWorker::NetWorker(Runtime& rt)
    : rt_(rt),
      chans_(rt, loop_),
      policy_(rt, chans_),
      table_(rt, loop_, chans_, order_, acceptor_),
      acceptor_(rt, loop_, table_),
      requests_(rt, loop_, table_, chans_, policy_),
      replies_(rt, table_, chans_, order_, requests_)
{
    chans_.set_callbacks([this](uint32_t slot) { requests_.resume(slot); },
                         [this](int w) { replies_.fail_waiting_on(w); });
    acceptor_.set_new_conn_callback(
        [this](int fd, const InetAddr& peer, int li) { new_conn(fd, peer, li); });
    rt_.net_worker = this;
}

NetWorker::~NetWorker() { rt_.net_worker = nullptr; }

int NetWorker::run()
{
    watch();
    loop_.add_before_poll([this] { before_poll(); });
    loop_.add_after_poll([this] {
        chans_.after_wake();
        wall_sec_ = static_cast<int64_t>(::time(nullptr));
        rt_.wake_us = loop_.now_us();
    });
    start_timers();
    rt_.ctl.push(kCtlReady, 0, 0, std::string_view());
    rt_.ctl.flush_wait(1000);
    if (rt_.hooks.loop_start)
        rt_.hooks.loop_start(loop_);
    loop_.run();
    return 0;
}

void NetWorker::watch()
{
    acceptor_.listen();
    // The Workers write our eventfd when they publish replies while we
    // sleep, or when they free room we wait for: look at every channel.
    loop_.watch(rt_.wake_of(rt_.id), kReadable | kEdge, [this](uint32_t) {
        for (int w = 0; w < rt_.W(); w++)
            replies_.on_channel(w, kReadable | kWritable);
    });
    loop_.watch(rt_.ctl.fd(), kReadable, [this](uint32_t) { on_ctl(); });
    loop_.watch_signal(SIGTERM, [this](const signalfd_siginfo&) {
        if (rt_.master_gone())
            rt_.exit_orphaned();
        begin_stop(atomic_load(&rt_.stats->shutting_down) == kStopHandOver);
    });
    loop_.watch_signal(SIGRTMIN, [this](const signalfd_siginfo&) {
        Logger::instance().reopen();
        if (rt_.hooks.reopen)
            rt_.hooks.reopen();
    });
}

// Once per loop iteration: write the clients' output, hand the Workers
// their batches, then wait for replies due or tell the Workers we sleep.
void NetWorker::before_poll()
{
    table_.write_dirty();
    if (stopping_)
        check_drained();
    chans_.flush();
    if (chans_.before_sleep())
        loop_.defer([this] { replies_.read_all(); });
}

void NetWorker::start_timers()
{
    const ProtocolSpec& ps = rt_.protocol;
    int shortest = 0;
    for (int t : {ps.header_timeout_ms, ps.idle_timeout_ms, rt_.cfg.send_timeout_ms})
        if (t > 0 && (shortest == 0 || t < shortest))
            shortest = t;
    if (shortest > 0) {
        long long every = shortest / 4;
        every = every < 50 ? 50 : (every > 1000 ? 1000 : every);
        loop_.run_every(every, [this] { table_.sweep(); });
    }
    loop_.run_every(250, [this] {
        table_.trim_idle();
        table_.count_states();
    });
    if (rt_.cfg.heartbeat_check_interval > 0)
        loop_.run_every(rt_.cfg.heartbeat_check_interval * 1000LL,
                        [this] { table_.check_heartbeat(); });
}

void NetWorker::new_conn(int fd, const InetAddr& peer, int listener)
{
    int home = policy_.home(peer);
    uint32_t slot = table_.open(fd, peer, listener, home);
    loop_.watch(fd, kReadable, [this, slot](uint32_t ev) { on_conn(slot, ev); });
    chans_.push_control(home, kFrameConnect, table_.session_of(slot), rt_.index);
}

void NetWorker::on_conn(uint32_t slot, uint32_t ev)
{
    if (table_.at(slot).lingering) {
        table_.linger_read(slot);
        return;
    }
    if (ev & kWritable)
        table_.write(slot);
    const NetConn& c = table_.at(slot);
    if ((ev & kReadable) && c.used && !c.read_closed && !c.paused)
        requests_.read(slot, wall_sec_);
}

void NetWorker::on_ctl()
{
    int r = rt_.ctl.receive([this](const FrameHeader& h, std::string_view) {
        if (h.kind != kCtlWorkerDied)
            return;
        // What the dead Worker had read is lost: fail those clients now.
        replies_.fail_waiting_on(h.arg);
    });
    if (r < 0 && errno != EAGAIN) {
        log(Level::warn, "master is gone: exiting");
        rt_.exit_orphaned();
    }
}

// The stop: accepting ends first (the load balancer's next connections
// go to other servers), then every connection is answered and closed. A
// protocol whose every message gets one reply (HTTP) is still read: the
// Master marked the stop in shared memory before telling us, so each
// request that comes now is answered with the connection's end
// ("Connection: close"), and a connection closes after that reply or
// once quiet. A byte stream cannot be ended at a message boundary: it is
// read no more, and closes once what it sent is answered.
void NetWorker::begin_stop(bool hand_over)
{
    if (stopping_)
        return;
    stopping_ = true;
    if (hand_over)
        acceptor_.hand_over();
    else
        acceptor_.stop();
    table_.set_stopping(rt_.protocol.counted_replies);
    // Quiet and lingering times pass without any event: look again.
    loop_.run_every(kDrainCheckMs, [this] { check_drained(); });
    check_drained();
}

void NetWorker::check_drained()
{
    table_.drain();
    if (table_.live() > 0 || !acceptor_.closed())
        return;
    // Hand the close notices to the Workers before leaving.
    chans_.flush_all(1000);
    loop_.stop();
}

}  // namespace zan
