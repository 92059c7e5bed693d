#include "t/syscall_trap.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t/test_env.h"

namespace zt {

bool SyscallTrap::fail(const std::string& what)
{
    err_ = what + ": " + strerror(errno);
    release();
    return false;
}

// Waits for the next trace stop (or the death) of pid_; polls because
// waitpid() has no timeout.
bool SyscallTrap::wait_stop(int* status, long long deadline)
{
    for (;;) {
        pid_t r = ::waitpid(pid_, status, __WALL | WNOHANG);
        if (r == pid_) {
            if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
                attached_ = stopped_ = false;
                errno = ESRCH;
                return false;
            }
            stopped_ = true;
            return true;
        }
        if (r < 0 && errno != EINTR)
            return false;
        if (now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return false;
        }
        ::usleep(100);
    }
}

bool SyscallTrap::stop_at(long nr, int timeout_ms, const std::function<void()>& poke)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    if (::ptrace(PTRACE_SEIZE, pid_, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) < 0)
        return fail("PTRACE_SEIZE");
    attached_ = true;
    int st = 0;
    if (::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr) < 0)
        return fail("PTRACE_INTERRUPT");
    if (!wait_stop(&st, deadline))
        return fail("waiting for the first stop");
    long long next_poke = 0;
    int inject = 0;
    for (;;) {
        if (::ptrace(PTRACE_SYSCALL, pid_, nullptr, reinterpret_cast<void*>(static_cast<long>(inject))) < 0)
            return fail("PTRACE_SYSCALL");
        stopped_ = false;
        inject = 0;
        for (;;) {
            pid_t r = ::waitpid(pid_, &st, __WALL | WNOHANG);
            if (r == pid_)
                break;
            if (r < 0 && errno != EINTR)
                return fail("waitpid");
            long long now = now_ms();
            if (now >= deadline) {
                // Stop it again so that it can be detached.
                ::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr);
                int st2;
                wait_stop(&st2, now + 2000);
                errno = ETIMEDOUT;
                return fail("waiting for the system call");
            }
            if (now >= next_poke) {
                if (poke)
                    poke();
                next_poke = now + 5;
            }
            ::usleep(50);
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            attached_ = stopped_ = false;
            errno = ESRCH;
            return fail("the process died");
        }
        stopped_ = true;
        int sig = WSTOPSIG(st);
        if (sig == (SIGTRAP | 0x80)) {
            struct __ptrace_syscall_info info;
            memset(&info, 0, sizeof(info));
            if (::ptrace(PTRACE_GET_SYSCALL_INFO, pid_, reinterpret_cast<void*>(sizeof(info)), &info) > 0 &&
                info.op == PTRACE_SYSCALL_INFO_ENTRY && static_cast<long>(info.entry.nr) == nr)
                return true;
        } else if ((st >> 16) == 0) {
            inject = sig;  // a signal-delivery stop: deliver it
        }
    }
}

void SyscallTrap::release()
{
    if (!attached_)
        return;
    if (!stopped_) {
        ::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr);
        int st;
        wait_stop(&st, now_ms() + 2000);
    }
    if (attached_)
        ::ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
    attached_ = stopped_ = false;
}

bool SyscallTrap::kill_and_reap(int timeout_ms)
{
    if (::kill(pid_, SIGKILL) < 0)
        return false;
    if (!attached_)
        return true;
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        int st;
        pid_t r = ::waitpid(pid_, &st, __WALL | WNOHANG);
        if (r == pid_ && (WIFEXITED(st) || WIFSIGNALED(st))) {
            attached_ = stopped_ = false;
            return true;
        }
        if (r < 0 && errno != EINTR) {
            attached_ = stopped_ = false;
            return errno == ECHILD;
        }
        if (now_ms() >= deadline)
            return false;
        ::usleep(200);
    }
}

}  // namespace zt
