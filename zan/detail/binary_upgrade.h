// BinaryUpgrade: the old Master's side of a zero-downtime binary upgrade.
// At construction it records what to start: the program file on disk
// (/proc/self/exe resolved now, so a package that replaces the file
// later gets the new version run), the command line (/proc/self/cmdline)
// and the environment. start() forks and execs that program with the
// listening sockets at fd 3 onward, as systemd passes them
// (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES; see ListenFds), and with
// ZAN_UPGRADE_SOCKET naming a private abstract datagram socket of this
// Master. The new Master sends READY=1 there (SdNotify) once it serves;
// only a datagram whose SCM_CREDENTIALS name the new process counts.
// Without READY=1 within the timeout the new process is stopped (SIGTERM,
// SIGKILL after a grace period); so is one that exits first. The Master
// reaps it (exited()). Owns the private socket (until the outcome) and
// the new process until the outcome; after a success the new Master is on
// its own. Used in the Master only; a child forked from the Master calls
// close_after_fork().
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_BINARY_UPGRADE_H
#define ZAN_DETAIL_BINARY_UPGRADE_H

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "zan/event_loop.h"
#include "zan/fd.h"
#include "zan/detail/process.h"

namespace zan {

class BinaryUpgrade {
public:
    // The outcome: ok with the new Master's READY datagram in `detail`,
    // or not ok with the reason.
    using Done = std::function<void(bool ok, pid_t pid, const std::string& detail)>;

    // The variable naming the private socket in the new Master's environment.
    static constexpr const char* kEnv = "ZAN_UPGRADE_SOCKET";

    explicit BinaryUpgrade(EventLoop& loop);
    ~BinaryUpgrade();
    BinaryUpgrade(const BinaryUpgrade&) = delete;
    BinaryUpgrade& operator=(const BinaryUpgrade&) = delete;

    // In a Master that an upgrade started: the address to send READY=1
    // to, read from the environment and removed from it; "" otherwise.
    static std::string take_parent_address();

    // A new process exists and is not reaped yet (starting, or stopping
    // after a failure).
    bool busy() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    const std::string& program() const { return exe_; }

    // Starts the new binary with `listeners`; waits timeout_s for READY=1,
    // stops a failed one with SIGKILL grace_s after SIGTERM. Returns its
    // pid, or 0 with *err when it could not be started (nothing to undo).
    // `done` runs once, from the loop.
    pid_t start(const std::vector<Listener>& listeners, int timeout_s, int grace_s, Done done,
                std::string* err);
    // The Master reaped pid() with `status`.
    void exited(int status);
    // Gives up on a pending upgrade (the Master stops): the new process is
    // stopped as after a failure; `done` runs with `why`.
    void abort(const std::string& why);
    // In a child forked from the Master: closes the private socket without
    // touching the loop.
    void close_after_fork() { sock_.reset(); }

private:
    void on_message();
    void fail(const std::string& why);
    void finish(bool ok, const std::string& detail);
    std::vector<std::string> child_env(size_t n_listeners, const std::string& names) const;

    EventLoop& loop_;
    std::string exe_;
    std::vector<std::string> argv_;
    std::vector<std::string> env_;
    Fd sock_;               // private SOCK_DGRAM, SO_PASSCRED; open while waiting
    pid_t pid_ = 0;
    bool waiting_ = false;  // no outcome yet
    int grace_s_ = 1;
    EventLoop::TimerId timer_ = 0;
    Done done_;
};

}  // namespace zan

#endif
