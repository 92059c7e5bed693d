#include "zan/detail/child_process.h"

#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/detail/net_worker.h"
#include "zan/sys.h"
#include "zan/detail/task_worker.h"
#include "zan/detail/user_worker.h"
#include "zan/detail/worker.h"

namespace zan {

// The parent-death signal of every child. Not SIGTERM: a Worker or a
// NetWorker reads SIGTERM from a signalfd, so it stays blocked while a
// callback runs, and a child stuck in one would outlive its Master. This
// one has a handler, which runs even then. Set once per child process,
// before the signal can come.
static pid_t g_master_of_child = 0;
static int g_queue_of_child = -1;
static void on_parent_death(int)
{
    if (::getppid() != g_master_of_child)
        leave_orphaned(g_queue_of_child);  // removes the task queue, _exit(0)
}

static void watch_parent_death(const Runtime& rt)
{
    g_master_of_child = rt.master_pid;
    g_queue_of_child = rt.task_queue.valid() ? rt.task_queue.id() : -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_flags = SA_RESTART;  // sent by someone else, it must not fail a call
    sa.sa_handler = on_parent_death;
    ::sigaction(parent_death_signal(), &sa, nullptr);
    ::prctl(PR_SET_PDEATHSIG, parent_death_signal());
}

// Ctrl-C reaches the whole process group: only the Master acts on it.
static void reset_child_signals()
{
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGUSR1, SIG_IGN);
    ::signal(SIGUSR2, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGCHLD, SIG_DFL);
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int sig : {SIGINT, SIGUSR1, SIGUSR2, SIGHUP, SIGCHLD})
        sigaddset(&unblock, sig);
    ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
}

ChildProcess::ChildProcess(Runtime& rt, int id)
    : rt_(rt), id_(id), role_(rt.role_of(id)), index_(rt.index_of(id))
{
}

void ChildProcess::run(Channel ctl, pid_t predecessor)
{
    rt_.become(role_, index_, std::move(ctl));
    rt_.predecessor = predecessor;
    take_identity();
    // After the identity change, which clears the parent-death signal.
    watch_parent_death(rt_);
    if (::getppid() != rt_.master_pid)
        _exit(1);  // the Master died while we were being born
    atomic_store(&rt_.procs[id_].pid, static_cast<int32_t>(::getpid()));
    atomic_store(&rt_.procs[id_].start_time, static_cast<int64_t>(::time(nullptr)));
    atomic_store(&rt_.procs[id_].request_count, static_cast<int64_t>(0));
    reset_child_signals();
    _exit(run_role());
}

// The configured user and group, with open_cpu_affinity a core for
// Workers and NetWorkers, and a NetWorker's time slice. A failed identity
// change is fatal (exit 2: a configuration error; the Master shuts the
// server down, see Master::on_exit()); the other two are hints.
void ChildProcess::take_identity()
{
    if (rt_.set_ids && (::setgroups(1, &rt_.gid) < 0 || ::setgid(rt_.gid) < 0 || ::setuid(rt_.uid) < 0)) {
        log_errno(Level::error, errno, "switching to uid %d gid %d failed", static_cast<int>(rt_.uid),
                  static_cast<int>(rt_.gid));
        _exit(2);  // fatal configuration error: the server shuts down
    }
    if (rt_.cfg.open_cpu_affinity && (role_ == Role::worker || role_ == Role::net_worker)) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(index_ % cpu_count(), &set);
        if (::sched_setaffinity(0, sizeof(set), &set) < 0)
            log_errno(Level::warn, errno, "sched_setaffinity(cpu %d) failed", index_ % cpu_count());
    }
    if (rt_.cfg.net_worker_slice_us > 0 && role_ == Role::net_worker &&
        set_sched_slice(rt_.cfg.net_worker_slice_us) < 0)
        log_errno(Level::warn, errno, "sched_setattr(slice %d us) failed", rt_.cfg.net_worker_slice_us);
}

// Runs the child's role to its end; the exit code of the process.
int ChildProcess::run_role()
{
    int code = 1;
    try {
        switch (role_) {
        case Role::worker: {
            Worker w(rt_);
            code = w.run();
            break;
        }
        case Role::task_worker: {
            TaskWorker t(rt_);
            code = t.run();
            break;
        }
        case Role::net_worker: {
            NetWorker n(rt_);
            code = n.run();
            break;
        }
        case Role::user_worker: {
            UserWorker u(rt_);
            code = u.run();
            break;
        }
        default:
            break;
        }
    } catch (const std::exception& e) {
        log(Level::error, "uncaught exception: %s", e.what());
        code = 1;
    } catch (...) {
        log(Level::error, "uncaught exception");
        code = 1;
    }
    if (rt_.hooks.exit)
        rt_.hooks.exit();
    return code;
}

}  // namespace zan
