// ProcessSetup: what TcpServer::start() does to the Master's own process
// around the server's life, apart from the server itself. Before the
// Master runs: it resolves the configured user and group to ids (from
// /etc/passwd and /etc/group, without the name service, so that -static
// builds link cleanly) for the children to switch to, detaches from the
// terminal (daemonize), hands the task queue to that user and writes the
// pid file (a Master started by a binary upgrade writes it once it is
// ready). After the Master returns: it removes the pid file, unless it
// names another process (the Master that replaced this one), and the
// task files left under task_tmpdir. Used in the Master process only:
// before the first fork, after the last child is gone, and for the pid
// file around a binary upgrade; it owns no descriptor and refers to the
// Runtime it was given.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_PROCESS_SETUP_H
#define ZAN_DETAIL_PROCESS_SETUP_H

#include <string>

#include "zan/detail/process.h"

namespace zan {

class ProcessSetup {
public:
    explicit ProcessSetup(Runtime& rt) : rt_(rt) {}
    ProcessSetup(const ProcessSetup&) = delete;
    ProcessSetup& operator=(const ProcessSetup&) = delete;

    // Resolves cfg.user and cfg.group (names or numbers) into rt.uid and
    // rt.gid and sets rt.set_ids; nothing to do when neither is set.
    bool resolve_user_group();
    // Forks; the parent _exit(0)s, the child starts a new session with
    // stdin on /dev/null and stdout and stderr on the log file (or
    // /dev/null) and returns.
    bool daemonize();
    // With a user or group set: makes them the owner of the task queue,
    // so that a child can remove it when the Master dies.
    void give_task_queue_to_user();
    // Writes the Master's pid to cfg.pid_file, when one is set.
    bool write_pid_file();
    // After the Master returned: removes the task files of this server
    // and the pid file if it still names this Master.
    void clean_up();

    // Why the last call that returned false failed.
    const std::string& error() const { return error_; }

private:
    Runtime& rt_;
    std::string error_;
};

}  // namespace zan

#endif
