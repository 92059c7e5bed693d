// Master, the operator's controls: retiring a child, reload (all Workers
// and TaskWorkers, or TaskWorkers only), the binary upgrade and the
// two-phase shutdown, each told to the service manager. Forking, reaping
// and respawning are in master.cc.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/detail/master.h"
#include "zan/detail/process_setup.h"
#include "zan/sys.h"

namespace zan {

// Marks pid as replaced. With now=true it is told to stop at once;
// either way it is killed if still alive after max_wait_time.
void Master::retire(pid_t pid, bool now)
{
    auto it = children_.find(pid);
    if (it == children_.end())
        return;
    Child& ch = it->second;
    ch.retiring = true;
    if (current_[static_cast<size_t>(ch.id)] == pid)
        current_[static_cast<size_t>(ch.id)] = 0;
    if (now)
        ::kill(pid, SIGTERM);
    if (!ch.kill_timer) {
        ch.kill_timer = loop_->run_after(rt_.cfg.max_wait_time * 1000LL, [this, pid] {
            auto it2 = children_.find(pid);
            if (it2 == children_.end())
                return;
            it2->second.kill_timer = 0;
            log(Level::warn, "%s (pid %d) did not finish within max_wait_time: SIGKILL",
                process_name(rt_.role_of(it2->second.id), rt_.index_of(it2->second.id)).c_str(),
                pid);
            ::kill(pid, SIGKILL);
        });
    }
}

void Master::reload(bool tasks_only)
{
    if (shutting_down_)
        return;
    std::string what = tasks_only ? "TaskWorkers" : "Workers and TaskWorkers";
    log(Level::info, "reloading %s", what.c_str());
    notifier_.reloading("Reloading " + what);
    atomic_store(&rt_.stats->last_reload, static_cast<int64_t>(::time(nullptr)));
    atomic_add(&rt_.stats->reload_count, static_cast<int64_t>(1));
    int from = tasks_only ? rt_.first_id(Role::task_worker) : 0;
    int to = rt_.first_id(Role::task_worker) + rt_.T();
    for (int id = from; id < to; id++) {
        pid_t old = current_[static_cast<size_t>(id)];
        if (!old)
            continue;  // being respawned (with back-off) anyway
        pid_t fresh = spawn(id, old);
        auto it = children_.find(old);
        if (it == children_.end())
            continue;
        it->second.retiring = true;
        // The old one keeps serving until its successor is ready.
        pid_t succ = fresh;
        reloads_waiting_++;
        auto wait_ready = std::make_shared<EventLoop::TimerId>(0);
        *wait_ready = loop_->run_every(5, [this, old, succ, wait_ready] {
            auto s = children_.find(succ);
            bool succ_ready = s != children_.end() && s->second.ready;
            bool succ_gone = s == children_.end();
            if (succ_ready || succ_gone || shutting_down_) {
                loop_->cancel(*wait_ready);
                retire(old, true);
                if (--reloads_waiting_ == 0 && !shutting_down_)
                    notifier_.reloaded(serving_status());
            }
        });
    }
    // The reload is over when every successor is ready (or none was due).
    if (reloads_waiting_ == 0)
        notifier_.reloaded(serving_status());
}

// "Serving on 127.0.0.1:8080 with 2 NetWorkers, 4 Workers, 0 TaskWorkers"
std::string Master::serving_status() const
{
    std::string on;
    for (const Listener& l : rt_.listeners)
        on += (on.empty() ? "" : ", ") + l.addr.to_string();
    return "Serving on " + on + " with " + std::to_string(rt_.N()) + " NetWorkers, " +
           std::to_string(rt_.W()) + " Workers, " + std::to_string(rt_.T()) + " TaskWorkers";
}

// Starts the program file on disk as a new Master on our listening
// sockets; we go on serving until it is ready (upgrade_done()).
void Master::upgrade()
{
    if (shutting_down_ || upgrade_.busy()) {
        std::string why = shutting_down_ ? std::string("the server is shutting down")
                                         : "new Master " + std::to_string(upgrade_.pid()) +
                                               " of the last upgrade is still there";
        log(Level::warn, "upgrade: ignored: %s", why.c_str());
        return;
    }
    std::string err;
    pid_t pid = upgrade_.start(
        rt_.listeners, rt_.cfg.upgrade_timeout, rt_.cfg.max_wait_time,
        [this](bool ok, pid_t p, const std::string& detail) { upgrade_done(ok, p, detail); }, &err);
    if (!pid) {
        upgrade_done(false, 0, err);
        return;
    }
    log(Level::info, "upgrade: started %s as new Master %d; waiting up to %d s for it to be ready",
        upgrade_.program().c_str(), pid, rt_.cfg.upgrade_timeout);
    notifier_.status("Upgrading: new Master " + std::to_string(pid) + " is starting");
}

void Master::upgrade_done(bool ok, pid_t pid, const std::string& detail)
{
    if (!ok && shutting_down_) {
        log(Level::warn, "upgrade abandoned: %s", detail.c_str());
        return;
    }
    if (!ok) {
        log(Level::error, "upgrade failed: %s; this Master keeps serving", detail.c_str());
        notifier_.status(serving_status() + " (upgrade failed)");
        // Written again (same pid): zanctl upgrade sees the file change
        // and reports the failure. The new Master may have taken the
        // control socket over before it failed: take it back.
        open_control(true);
        ProcessSetup setup(rt_);
        if (!setup.write_pid_file())
            log(Level::error, "%s", setup.error().c_str());
        return;
    }
    log(Level::info, "upgrade: new Master %d is ready: this Master stops accepting and finishes", pid);
    notifier_.hand_over(detail);
    // The listening sockets live on in the new server: the NetWorkers
    // leave them as they are (no SYN filter, no draining of the queue).
    begin_shutdown(true);
}

void Master::begin_shutdown(bool hand_over)
{
    if (shutting_down_)
        return;
    shutting_down_ = true;
    log(Level::info, "shutting down");
    notifier_.stopping("Stopping: finishing what is in flight");
    if (upgrade_.busy())
        upgrade_.abort("the Master is shutting down");
    for (auto t : respawn_timer_)
        if (t)
            loop_->cancel(t);
    // Phase 1: NetWorkers stop accepting and drain their connections
    // while the Workers still answer them (and end keep-alive).
    int64_t how = hand_over ? kStopHandOver : kStopDrain;
    atomic_store(&rt_.stats->shutting_down, how);
    // The NetWorkers alone hold the listening sockets from now on, so
    // that the last to close one has emptied its queue (NetAcceptor::stop).
    for (Listener& l : rt_.listeners)
        l.fd.reset();
    for (auto& kv : children_)
        if (rt_.role_of(kv.second.id) == Role::net_worker)
            ::kill(kv.first, SIGTERM);
    loop_->run_after(rt_.cfg.max_wait_time * 1000LL, [this] {
        for (auto& kv : children_)
            if (rt_.role_of(kv.second.id) == Role::net_worker) {
                log(Level::warn, "net#%d did not drain within max_wait_time: SIGKILL",
                    rt_.index_of(kv.second.id));
                ::kill(kv.first, SIGKILL);
            }
        shutdown_phase2();
    });
    maybe_finish();
}

void Master::shutdown_phase2()
{
    if (phase2_)
        return;
    phase2_ = true;
    for (auto& kv : children_)
        ::kill(kv.first, SIGTERM);
    loop_->run_after(rt_.cfg.max_wait_time * 1000LL, [this] {
        for (auto& kv : children_) {
            log(Level::warn, "%s (pid %d) did not stop within max_wait_time: SIGKILL",
                process_name(rt_.role_of(kv.second.id), rt_.index_of(kv.second.id)).c_str(),
                kv.first);
            ::kill(kv.first, SIGKILL);
        }
    });
}

void Master::maybe_finish()
{
    if (!phase2_ && live_of_role(Role::net_worker) == 0)
        shutdown_phase2();
    if (children_.empty() && !upgrade_.busy())
        loop_->stop();
}

}  // namespace zan
