// Test helpers: spawn real programs, wait for their readiness line, talk
// to them over loopback, and clean up every process we started (by pid)
// even when a test fails. Used by t/server_*_test.cc.
#ifndef ZAN_T_HELPERS_H
#define ZAN_T_HELPERS_H

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace zt {

std::string build_dir();
std::string tool(const std::string& name);  // build_dir()/tools/name

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
    // Waits for the program to exit; returns the wait status or -1 on timeout.
    int wait_exit(int timeout_ms);
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

// Starts `tool` with "--port 0" semantics handled by the tool printing
// "listening on H:P"; returns the port, or 0 on failure.
int start_server(Proc* p, const std::vector<std::string>& argv, int timeout_ms = 10000);

// /proc helpers.
std::vector<pid_t> children_of(pid_t parent);
std::vector<pid_t> descendants_of(pid_t root);
std::string comm_of(pid_t pid);  // /proc/pid/comm without newline
// Finds a descendant of root whose comm is exactly `name`; 0 when none.
pid_t find_by_name(pid_t root, const std::string& name);
// Waits until find_by_name returns a pid other than `not_pid`.
pid_t wait_for_name(pid_t root, const std::string& name, pid_t not_pid, int timeout_ms);
bool pid_alive(pid_t pid);
// Ids of the SysV message queues in /proc/sysvipc/msg.
std::set<int> sysv_queues();

// Loopback clients (blocking sockets with timeouts).
int connect_local(int port, int timeout_ms = 3000);
bool send_str(int fd, const std::string& s);
// Reads one '\n'-terminated line (without the '\n'); false on EOF/timeout.
bool read_line(int fd, std::string* line, int timeout_ms = 5000);
// Reads until EOF or timeout; returns what was read.
std::string read_all(int fd, int timeout_ms = 5000);
// Sends one line and reads the reply line.
std::string request(int fd, const std::string& line, int timeout_ms = 5000);
// True if the peer closed (EOF or ECONNRESET) within timeout_ms.
bool wait_closed(int fd, int timeout_ms);

long long now_ms();

}  // namespace zt

#endif
