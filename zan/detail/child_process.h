// ChildProcess: one child of the Master from just after fork() to its
// _exit(). It takes the child's identity (the configured user and group,
// with open_cpu_affinity a core, a NetWorker's time slice), arranges to
// leave when the Master dies (parent-death signal), restores the signals
// the Master blocked or ignores, and runs the role (Worker, TaskWorker,
// NetWorker or UserWorker) to its end. Lives in that child only and never
// returns into the Master's stack; the Master has already dropped its own
// loop and channels (Master::child_main()). It owns nothing but the
// child's control channel, which it hands to Runtime::become().
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_CHILD_PROCESS_H
#define ZAN_DETAIL_CHILD_PROCESS_H

#include <sys/types.h>

#include "zan/detail/process.h"

namespace zan {

class ChildProcess {
public:
    // rt: the child's copy of the Master's runtime; id: the child id.
    ChildProcess(Runtime& rt, int id);
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // Becomes the child, runs its role and _exit()s with the role's exit
    // code (2 when the identity change fails, 1 when the Master died
    // meanwhile). predecessor: the process this one replaces while it
    // still runs (reload, recycling); 0 for a plain start or respawn.
    [[noreturn]] void run(Channel ctl, pid_t predecessor);

private:
    void take_identity();
    int run_role();

    Runtime& rt_;
    int id_;
    Role role_;
    int index_;
};

}  // namespace zan

#endif
