// Master: forks every child (Workers, TaskWorkers, UserWorkers, then
// NetWorkers), runs on_start once all of them are up, and then only
// supervises: reaps every exited child, re-forks it with the same id (with
// exponential back-off for a child that keeps dying young), drives rolling
// reloads and the graceful shutdown, and tells the survivors about deaths
// they must act on. Lives in the Master process only; a child never
// returns into the Master's stack (it _exit()s; see ChildProcess for
// what a child does after fork), keeps the service manager informed
// (MasterNotifier) and drives a binary upgrade (BinaryUpgrade).
// master.cc holds forking and reaping, master_control.cc retire, reload,
// upgrade and shutdown.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_MASTER_H
#define ZAN_DETAIL_MASTER_H

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "zan/detail/binary_upgrade.h"
#include "zan/detail/control_socket.h"
#include "zan/event_loop.h"
#include "zan/detail/master_notifier.h"
#include "zan/detail/process.h"

namespace zan {

class Master {
public:
    explicit Master(Runtime& rt);
    ~Master();
    // Runs until shutdown; returns the process exit status.
    int run();

private:
    struct Child {
        pid_t pid = 0;
        int id = -1;
        Channel ctl;
        long long started_ms = 0;
        bool ready = false;
        bool retiring = false;  // replaced; exits by itself (or is killed)
        EventLoop::TimerId kill_timer = 0;
    };

    // predecessor: the process this one replaces while it still runs
    // (reload, recycling); 0 for a plain start or respawn.
    pid_t spawn(int id, pid_t predecessor = 0);
    // In the new child: drops the Master's loop and channels, then runs
    // the child (ChildProcess) to its _exit().
    [[noreturn]] void child_main(int id, Channel ctl, pid_t predecessor);
    void report_exit(pid_t pid, int id, int status, bool call_error_cb);
    void schedule_respawn(int id);
    void on_ctl(pid_t pid);
    void reap_all();
    void on_exit(pid_t pid, int status);
    void notify(Role role, uint8_t kind, int arg);
    void clear_net_sessions(int net_index);
    void retire(pid_t pid, bool now);
    void reload(bool tasks_only);
    void upgrade();
    void upgrade_done(bool ok, pid_t pid, const std::string& detail);
    std::string serving_status() const;
    // hand_over: the listening sockets stay open in a successor server,
    // which the NetWorkers must leave them to (kStopHandOver).
    void begin_shutdown(bool hand_over = false);
    void shutdown_phase2();
    void maybe_finish();
    void check_all_ready();
    int live_of_role(Role r) const;
    void open_control(bool take_over);


    Runtime& rt_;
    std::unique_ptr<EventLoop> loop_;
    MasterNotifier notifier_;
    BinaryUpgrade upgrade_;
    int reloads_waiting_ = 0;  // reloaded ids whose successor is not ready yet
    std::unique_ptr<ControlSocket> control_;  // beside the pid file, when there is one
    std::map<pid_t, Child> children_;
    std::vector<pid_t> current_;      // per id: the pid serving it now (0 none)
    std::vector<int> quick_deaths_;   // per id: consecutive deaths soon after start
    std::vector<EventLoop::TimerId> respawn_timer_;
    bool started_ = false;      // on_start has run
    bool shutting_down_ = false;
    bool phase2_ = false;
    int exit_status_ = 0;
};

}  // namespace zan

#endif
