// SyscallTrap: holds another process at the entry of a chosen system call
// with ptrace(2). Used by the failure tests of t/server_*_test.cc.
#ifndef ZAN_T_SYSCALL_TRAP_H
#define ZAN_T_SYSCALL_TRAP_H

#include <sys/types.h>

#include <functional>
#include <string>

namespace zt {

// Holds another process (not necessarily our child) with ptrace(2) at
// the entry of a chosen system call, e.g. a NetWorker at accept4(), which
// it only calls while holding the accept lock. Used to kill or freeze a
// process at a known point instead of hoping a signal lands there.
class SyscallTrap {
public:
    explicit SyscallTrap(pid_t pid) : pid_(pid) {}
    ~SyscallTrap() { release(); }
    SyscallTrap(const SyscallTrap&) = delete;
    SyscallTrap& operator=(const SyscallTrap&) = delete;

    // Attaches and lets the process run until it enters system call `nr`
    // (SYS_accept4, ...); calls poke() about every 5 ms meanwhile (to make
    // it get there). True with the process stopped at that entry; false
    // (and detached) on timeout or when ptrace is not permitted: error().
    bool stop_at(long nr, int timeout_ms, const std::function<void()>& poke);
    // Detaches: the stopped process carries on with its system call.
    void release();
    // SIGKILLs the stopped process and collects the trace notification, so
    // that its real parent sees the death. True once it is gone.
    bool kill_and_reap(int timeout_ms);
    const std::string& error() const { return err_; }

private:
    bool wait_stop(int* status, long long deadline);
    bool fail(const std::string& what);

    pid_t pid_;
    bool attached_ = false;
    bool stopped_ = false;
    std::string err_;
};

}  // namespace zt

#endif
