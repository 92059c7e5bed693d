// Processes a test starts or watches: Proc (a program with its output
// captured), /proc queries about a process tree, the guards that leave
// no process or SysV message queue behind when a test fails, and
// run_command() for a shell pipeline under timeout(1).
#ifndef ZAN_T_PROC_HELPERS_H
#define ZAN_T_PROC_HELPERS_H

#include <sys/types.h>

#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace zt {

// A program started by a test. Its stdout and stderr are drained by a
// thread into a string, so a chatty program never blocks on a full pipe.
// The destructor sends SIGTERM, waits up to 5 s, then SIGKILLs the program
// and every descendant it still has.
class Proc {
public:
    Proc() = default;
    ~Proc();
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;

    bool spawn(const std::vector<std::string>& argv);
    pid_t pid() const { return pid_; }
    // Waits until a line of output contains `needle`; returns that line.
    bool wait_for(const std::string& needle, int timeout_ms, std::string* line = nullptr);
    // Counts output lines containing `needle`.
    int count(const std::string& needle);
    std::string output();
    // Waits for the program to exit (and then, up to 2 s, for the end of its
    // output); returns the wait status or -1 on timeout.
    int wait_exit(int timeout_ms);
    // True once every holder of the output pipe's write end has closed it.
    bool output_closed();
    bool running() const { return pid_ > 0 && !reaped_; }
    void signal(int sig);

private:
    void drain();

    pid_t pid_ = -1;
    bool reaped_ = false;
    int status_ = 0;
    int out_fd_ = -1;
    std::thread reader_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::string out_;
    bool eof_ = false;
};

// /proc helpers.
std::vector<pid_t> children_of(pid_t parent);
std::vector<pid_t> descendants_of(pid_t root);
std::string comm_of(pid_t pid);  // /proc/pid/comm without newline
// Finds a descendant of root whose comm is exactly `name`; 0 when none.
pid_t find_by_name(pid_t root, const std::string& name);
// Waits until a descendant of root named `name` other than `not_pid`
// exists; returns it, 0 on timeout.
pid_t wait_for_name(pid_t root, const std::string& name, pid_t not_pid, int timeout_ms);
bool pid_alive(pid_t pid);
// Waits until pid is gone (or a zombie); true if it went within timeout_ms.
// Sleeps on a pidfd, so it works for any process, not only our children.
bool wait_gone(pid_t pid, int timeout_ms);
// Reaps our child pid, sleeping on a pidfd (readable once it exits) until
// `deadline` (a now_ms() time, already scaled). True with *status set
// when it was reaped; false on timeout (errno ETIMEDOUT) or error.
bool reap_by(pid_t pid, int* status, long long deadline);
// Waits until pid is stopped (state T in /proc/pid/stat), as it is some
// time after a SIGSTOP; true if it was within timeout_ms.
bool wait_stopped(pid_t pid, int timeout_ms);
// Waits until pid sleeps in one of the system calls `nrs` (SYS_msgrcv,
// SYS_epoll_wait, ...), as /proc/pid/syscall shows: a process blocked
// there has done everything before it. Its first argument goes to *arg0.
// pid must be ours or a descendant (ptrace access). False on timeout.
bool wait_in_syscall(pid_t pid, std::initializer_list<long> nrs, int timeout_ms, unsigned long* arg0 = nullptr);
// utime+stime of pid in clock ticks from /proc/pid/stat; -1 when gone.
long long cpu_ticks(pid_t pid);
// CPU time (user + system, ms) a process has used so far, from
// /proc/PID/stat; -1 if it cannot be read.
long cpu_ms(pid_t pid);
// comm -> pid of every live descendant of root.
std::vector<std::pair<std::string, pid_t>> named_descendants(pid_t root);
// Descriptors a process has open (entries of /proc/PID/fd), -1 if gone.
int open_fds(pid_t pid);
// Lifts the soft RLIMIT_NOFILE to at least `want` (children inherit it);
// false when the hard limit does not allow it.
bool raise_fd_limit(unsigned long want);

// Ids of the SysV message queues in /proc/sysvipc/msg.
std::set<int> sysv_queues();
// Ids of those whose last sender or last receiver (lspid, lrpid) is one
// of `pids`.
std::set<int> sysv_queues_used_by(const std::set<pid_t>& pids);

// Records the SysV message queues that exist when constructed. capture()
// remembers those created since whose last sender or receiver (lspid,
// lrpid) is `master` or one of its descendants: the server's queues, and
// never another program's (so run one task through the server first).
// The destructor removes any of them still present, so a failed test
// leaks no IPC object. Declare it before the Proc so that it runs after
// the Proc has stopped the server.
class QueueGuard {
public:
    QueueGuard();
    ~QueueGuard();
    QueueGuard(const QueueGuard&) = delete;
    QueueGuard& operator=(const QueueGuard&) = delete;
    void capture(pid_t master);
    const std::set<int>& ours() const { return ours_; }
    // Queues of ours that still exist.
    std::set<int> leftover() const;

private:
    std::set<int> before_;
    std::set<int> ours_;
};

// SIGKILLs, at scope exit, every recorded pid that is still alive and
// still a zan-* process: children orphaned when a test kills the Master,
// or a process a test has SIGSTOPped.
class PidGuard {
public:
    PidGuard() = default;
    ~PidGuard();
    PidGuard(const PidGuard&) = delete;
    PidGuard& operator=(const PidGuard&) = delete;
    void add(pid_t pid) { pids_.push_back(pid); }
    void add(const std::vector<pid_t>& pids) { pids_.insert(pids_.end(), pids.begin(), pids.end()); }

private:
    std::vector<pid_t> pids_;
};

// Runs `cmd` with /bin/sh under timeout(1) (SIGKILL 2 s after timeout_s);
// stdout goes to *out. Returns the exit code, or -1 if it could not run
// or was killed by a signal (124/137 mean timeout(1) stopped it).
int run_command(const std::string& cmd, std::string* out, int timeout_s = 30);
// `s` quoted for /bin/sh.
std::string shell_quote(const std::string& s);

}  // namespace zt

#endif
