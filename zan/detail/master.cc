#include "zan/detail/master.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zan/detail/child_process.h"
#include "zan/log.h"
#include "zan/detail/process_setup.h"
#include "zan/detail/metrics_snapshot.h"
#include "zan/sys.h"

namespace zan {

static const int kQuickDeathMs = 1000;
static const int kMaxBackoffMs = 10000;

Master::Master(Runtime& rt)
    : rt_(rt),
      loop_(new EventLoop),
      notifier_(*loop_, rt.upgrade_parent),
      upgrade_(*loop_),
      current_(static_cast<size_t>(rt.proc_count()), 0),
      quick_deaths_(current_.size(), 0),
      respawn_timer_(current_.size(), 0)
{
}

Master::~Master() = default;

int Master::live_of_role(Role r) const
{
    int n = 0;
    for (const auto& kv : children_)
        if (rt_.role_of(kv.second.id) == r)
            n++;
    return n;
}

int Master::run()
{
    rt_.role = Role::master;
    rt_.master_pid = ::getpid();
    atomic_store(&rt_.stats->start_time, static_cast<int64_t>(::time(nullptr)));
    Logger::instance().set_tag("master");
    set_process_name("zan-master");

    // Signals arrive through the loop; they stay blocked across fork and
    // each child sets up its own.
    loop_->watch_signal(SIGCHLD, [this](const signalfd_siginfo&) { reap_all(); });
    loop_->watch_signal(SIGTERM, [this](const signalfd_siginfo&) { begin_shutdown(); });
    loop_->watch_signal(SIGINT, [this](const signalfd_siginfo&) { begin_shutdown(); });
    loop_->watch_signal(SIGUSR1, [this](const signalfd_siginfo&) { reload(false); });
    loop_->watch_signal(SIGUSR2, [this](const signalfd_siginfo&) { reload(true); });
    loop_->watch_signal(SIGRTMIN, [this](const signalfd_siginfo&) {
        if (!Logger::instance().reopen())
            log_errno(Level::error, errno, "reopening log file %s", Logger::instance().path().c_str());
        if (rt_.hooks.master_files)
            rt_.hooks.master_files(nullptr);
        for (const auto& kv : children_)
            ::kill(kv.first, SIGRTMIN);
    });
    loop_->watch_signal(SIGHUP, [](const signalfd_siginfo&) {});
    loop_->watch_signal(upgrade_signal(), [this](const signalfd_siginfo&) { upgrade(); });
    notifier_.start();
    notifier_.status("Starting " + std::to_string(rt_.proc_count()) + " processes");
    // A Master started by a binary upgrade takes the control socket over
    // once it serves (check_all_ready), as it does the pid file.
    if (rt_.upgrade_parent.empty())
        open_control(false);

    // Fork order of the model: Workers, TaskWorkers, UserWorkers, NetWorkers.
    for (int i = 0; i < rt_.W(); i++)
        spawn(rt_.first_id(Role::worker) + i);
    for (int i = 0; i < rt_.T(); i++)
        spawn(rt_.first_id(Role::task_worker) + i);
    for (int i = 0; i < rt_.U(); i++)
        spawn(rt_.first_id(Role::user_worker) + i);
    for (int i = 0; i < rt_.N(); i++)
        spawn(rt_.first_id(Role::net_worker) + i);

    loop_->run();
    control_.reset();

    if (rt_.cb.on_shutdown) {
        try {
            rt_.cb.on_shutdown(*rt_.server);
        } catch (const std::exception& e) {
            log(Level::error, "on_shutdown threw: %s", e.what());
        } catch (...) {
            log(Level::error, "on_shutdown threw an exception");
        }
    }
    rt_.task_queue.remove();
    log(Level::info, "shutdown complete");
    return exit_status_;
}

// The control socket beside the pid file: `zanctl stats` and `top` read
// the figures through it. Without it the server runs all the same.
// take_over: replace the socket of a live Master (binary upgrade).
void Master::open_control(bool take_over)
{
    if (rt_.cfg.pid_file.empty())
        return;
    control_.reset(new ControlSocket(*loop_, [this](const std::string& cmd) -> std::string {
        if (cmd == "stats")
            return take_metrics(rt_).to_json();
        if (cmd == "metrics")
            return take_metrics(rt_).to_prometheus();
        return "error: unknown command\n";
    }));
    std::string err;
    std::string path = control_socket_path(rt_.cfg.pid_file);
    if (!control_->open(path, take_over, &err)) {
        log(Level::warn, "no control socket: %s", err.c_str());
        control_.reset();
        return;
    }
    // The children's user (user/group settings) may read the figures too.
    if (rt_.set_ids && ::chown(path.c_str(), rt_.uid, rt_.gid) < 0)
        log_errno(Level::warn, errno, "chown() of control socket %s", path.c_str());
}

pid_t Master::spawn(int id, pid_t predecessor)
{
    EventLoop::TimerId& pending = respawn_timer_[static_cast<size_t>(id)];
    if (pending) {  // a back-off respawn was due: this spawn replaces it
        loop_->cancel(pending);
        pending = 0;
    }
    Channel mine, theirs;
    if (!Channel::make_pair(&mine, &theirs)) {
        log_errno(Level::error, errno, "socketpair() failed while spawning %s",
                  process_name(rt_.role_of(id), rt_.index_of(id)).c_str());
        quick_deaths_[static_cast<size_t>(id)]++;
        schedule_respawn(id);
        return 0;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        log_errno(Level::error, errno, "fork() failed while spawning %s",
                  process_name(rt_.role_of(id), rt_.index_of(id)).c_str());
        quick_deaths_[static_cast<size_t>(id)]++;
        schedule_respawn(id);
        return 0;
    }
    if (pid == 0) {
        mine.reset();
        child_main(id, std::move(theirs), predecessor);
    }
    theirs.reset();
    // A reaped pid the kernel gave back to a process of this id is that
    // process's again (see ProcSlot::reaped).
    for (int32_t& r : rt_.procs[id].reaped)
        if (atomic_load(&r) == pid)
            atomic_store(&r, static_cast<int32_t>(0));
    Child& ch = children_[pid];
    ch.pid = pid;
    ch.id = id;
    ch.ctl = std::move(mine);
    ch.started_ms = monotonic_ms();
    current_[static_cast<size_t>(id)] = pid;
    atomic_store(&rt_.procs[id].pid, static_cast<int32_t>(pid));
    loop_->watch(ch.ctl.fd(), kReadable, [this, pid](uint32_t) { on_ctl(pid); });
    return pid;
}

void Master::child_main(int id, Channel ctl, pid_t predecessor)
{
    // Drop the Master's loop and channels without running their owners'
    // logic: this process never returns into the Master's stack.
    loop_->close_after_fork();
    (void)loop_.release();
    if (control_)
        control_->close_after_fork();
    for (auto& kv : children_)
        kv.second.ctl.reset();
    notifier_.close_after_fork();
    upgrade_.close_after_fork();
    ChildProcess(rt_, id).run(std::move(ctl), predecessor);
}

void Master::schedule_respawn(int id)
{
    if (shutting_down_)
        return;
    size_t i = static_cast<size_t>(id);
    int q = quick_deaths_[i];
    if (q == 0) {
        atomic_add(&rt_.stats->worker_respawn_count, static_cast<int64_t>(1));
        atomic_add(&rt_.procs[id].respawns, static_cast<int64_t>(1));
        spawn(id);
        return;
    }
    long long delay = 100LL << (q > 8 ? 7 : q - 1);
    if (delay > kMaxBackoffMs)
        delay = kMaxBackoffMs;
    log(Level::warn, "%s keeps dying at start; respawning in %lld ms",
        process_name(rt_.role_of(id), rt_.index_of(id)).c_str(), delay);
    respawn_timer_[i] = loop_->run_after(delay, [this, id] {
        atomic_add(&rt_.stats->worker_respawn_count, static_cast<int64_t>(1));
        atomic_add(&rt_.procs[id].respawns, static_cast<int64_t>(1));
        spawn(id);
    });
}

void Master::on_ctl(pid_t pid)
{
    auto it = children_.find(pid);
    if (it == children_.end())
        return;
    Child& ch = it->second;
    int r = ch.ctl.receive([&](const FrameHeader& h, std::string_view) {
        if (h.kind == kCtlReady) {
            ch.ready = true;
            check_all_ready();
        } else if (h.kind == kCtlRetire && !ch.retiring && !shutting_down_) {
            // A Worker reached max_request: fork its successor now; the
            // old one finishes what it has and exits by itself.
            int id = ch.id;
            atomic_add(&rt_.procs[id].m.respawn_max_request, static_cast<int64_t>(1));
            retire(pid, false);
            spawn(id, pid);
        }
    });
    if (r < 0) {
        // The child closed its end: it is exiting. SIGCHLD does the rest.
        loop_->unwatch(ch.ctl.fd());
    }
}

void Master::check_all_ready()
{
    if (started_)
        return;
    for (size_t id = 0; id < current_.size(); id++) {
        auto it = children_.find(current_[id]);
        if (it == children_.end() || !it->second.ready)
            return;
    }
    started_ = true;
    if (rt_.cb.on_start) {
        try {
            rt_.cb.on_start(*rt_.server);
        } catch (const std::exception& e) {
            log(Level::error, "on_start threw: %s", e.what());
        } catch (...) {
            log(Level::error, "on_start threw an exception");
        }
    }
    // A Master started by a binary upgrade names itself in the pid file
    // only now, when it serves (the file always names the serving Master).
    if (!rt_.upgrade_parent.empty()) {
        open_control(true);
        ProcessSetup setup(rt_);
        if (!setup.write_pid_file()) {
            log(Level::error, "%s: shutting down", setup.error().c_str());
            exit_status_ = 1;
            begin_shutdown();
            return;
        }
    }
    notifier_.ready(serving_status());
}

void Master::reap_all()
{
    for (;;) {
        int status;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            on_exit(pid, status);
            continue;
        }
        if (pid < 0 && errno == EINTR)
            continue;
        break;  // 0: none left to reap now; ECHILD: no children
    }
    if (shutting_down_)
        maybe_finish();
}

// Logs how child pid (id) ended and counts it; with call_error_cb (an
// abnormal end of a process that was not retiring) runs on_worker_error.
void Master::report_exit(pid_t pid, int id, int status, bool call_error_cb)
{
    std::string name = process_name(rt_.role_of(id), rt_.index_of(id));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    bool abnormal = sig != 0 || code != 0;
    if (sig)
        log(Level::warn, "%s (pid %d) killed by signal %d (%s)%s", name.c_str(), pid, sig,
            strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
    else
        log(abnormal ? Level::warn : Level::info, "%s (pid %d) exited with code %d", name.c_str(),
            pid, code);
    atomic_add(abnormal ? &rt_.stats->worker_abnormal_exit : &rt_.stats->worker_normal_exit,
               static_cast<int64_t>(1));
    if (call_error_cb && rt_.cb.on_worker_error) {
        try {
            rt_.cb.on_worker_error(*rt_.server, id, pid, code, sig);
        } catch (...) {
            log(Level::error, "on_worker_error threw an exception");
        }
    }
}

void Master::on_exit(pid_t pid, int status)
{
    auto it = children_.find(pid);
    if (it == children_.end()) {
        if (pid == upgrade_.pid())
            upgrade_.exited(status);
        return;
    }
    // A child may send its last word (ready, retire) and exit at once: read
    // it before deciding what the exit means.
    if (it->second.ctl.valid())
        on_ctl(pid);
    it = children_.find(pid);
    if (it == children_.end())
        return;
    int id = it->second.id;
    // Reaped: from now on the pid may be reused. Successors must not take
    // it for their predecessor (Runtime::running()).
    ProcSlot& ps = rt_.procs[id];
    atomic_store(&ps.reaped[ps.reaped_next & 3], static_cast<int32_t>(pid));
    ps.reaped_next = (ps.reaped_next + 1) & 3;
    if (atomic_load(&ps.m.task_running)) {  // a TaskWorker died in on_task
        atomic_add(&ps.m.tasks_failed, static_cast<int64_t>(1));
        atomic_store(&ps.m.task_running, static_cast<int64_t>(0));
    }
    bool was_retiring = it->second.retiring;
    long long lived = monotonic_ms() - it->second.started_ms;
    if (it->second.kill_timer)
        loop_->cancel(it->second.kill_timer);
    if (it->second.ctl.valid())
        loop_->unwatch(it->second.ctl.fd());
    children_.erase(it);

    Role role = rt_.role_of(id);
    int index = rt_.index_of(id);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    bool abnormal = sig != 0 || code != 0;
    report_exit(pid, id, status, abnormal && !was_retiring);
    if (shutting_down_)
        return;
    bool current = current_[static_cast<size_t>(id)] == pid;
    // Requests a dead Worker had read are lost: the NetWorkers fail the
    // connections waiting on it instead of leaving them hanging.
    // (A Worker that exits normally handed over all its replies first.)
    if (role == Role::worker && abnormal)
        notify(Role::net_worker, kCtlWorkerDied, index);
    if (!current)
        return;  // a retired process: its successor already runs
    current_[static_cast<size_t>(id)] = 0;
    atomic_store(&rt_.procs[id].pid, static_cast<int32_t>(0));

    if (role == Role::net_worker) {
        clear_net_sessions(index);
        notify(Role::worker, kCtlNetDied, index);
    }
    if (!sig && code == 2) {
        // nginx's convention: a fatal configuration error. Respawning would
        // fail the same way, and the server cannot serve without this id.
        log(Level::error, "%s exited with code 2 (fatal configuration error): shutting down",
            process_name(role, index).c_str());
        exit_status_ = 1;
        begin_shutdown();
        return;
    }
    atomic_add(sig ? &ps.m.respawn_signal : &ps.m.respawn_exit, static_cast<int64_t>(1));
    size_t i = static_cast<size_t>(id);
    quick_deaths_[i] = lived < kQuickDeathMs ? quick_deaths_[i] + 1 : 0;
    schedule_respawn(id);
}

void Master::notify(Role role, uint8_t kind, int arg)
{
    for (auto& kv : children_) {
        Child& ch = kv.second;
        if (rt_.role_of(ch.id) != role || !ch.ctl.valid())
            continue;
        if (ch.ctl.push(kind, 0, arg, std::string_view()))
            ch.ctl.flush_wait(100);
    }
}

void Master::clear_net_sessions(int net)
{
    int64_t closed = 0;
    for (int s = 0; s < rt_.cfg.max_connection; s++) {
        SessionSlot* ss = rt_.slot_at(net, static_cast<uint32_t>(s));
        if (!atomic_load(&ss->active))
            continue;
        atomic_store(&ss->active, 0);
        atomic_store(&ss->generation, ss->generation + 1);
        closed++;
    }
    if (closed) {
        atomic_add(&rt_.stats->connection_num, -closed);
        atomic_add(&rt_.stats->close_count, closed);
        atomic_add(&rt_.procs[rt_.first_id(Role::net_worker) + net].m.closed, closed);
        log(Level::warn, "net#%d died: %lld client connections were cut", net,
            static_cast<long long>(closed));
    }
}

}  // namespace zan
