// Test helpers: spawn real programs, wait for their readiness line, talk
// to them over loopback, and clean up every process we started (by pid)
// even when a test fails. Used by t/server_*_test.cc; the unit tests that
// fork use the helpers at the end (Child, Gate, wait_child, read_byte).
#ifndef ZAN_T_HELPERS_H
#define ZAN_T_HELPERS_H

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "zan/fd.h"

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
// poll(2) one fd for `events` (POLLIN, POLLOUT) until timeout_ms passes,
// retrying EINTR; true when it is ready.
bool wait_fd(int fd, short events, int timeout_ms);
// Lifts the soft RLIMIT_NOFILE to at least `want` (children inherit it);
// false when the hard limit does not allow it.
bool raise_fd_limit(unsigned long want);

long long now_ms();


// ---- Helpers for t/server_*_test.cc (zan-echod integration tests) ----

// Owns one client socket and closes it once.
class Sock {
public:
    explicit Sock(int fd = -1) : fd_(fd) {}
    Sock(Sock&& o) noexcept : fd_(o.release()) {}
    Sock& operator=(Sock&& o) noexcept { reset(o.release()); return *this; }
    Sock(const Sock&) = delete;
    Sock& operator=(const Sock&) = delete;
    ~Sock() { reset(); }
    int get() const { return fd_; }
    bool ok() const { return fd_ >= 0; }
    int release() { int f = fd_; fd_ = -1; return f; }
    void reset(int fd = -1);

private:
    int fd_;
};

// Starts build_dir()/tools/zan-echod on 127.0.0.1 with --port 0 plus
// `args`; returns the port, or 0 on failure.
int start_echod(Proc* p, const std::vector<std::string>& args, int timeout_ms = 10000);
// The same for build_dir()/tools/zan-httpd.
int start_httpd(Proc* p, const std::vector<std::string>& args = {}, int timeout_ms = 10000);

// 127.0.0.1:port, for a test that makes its own socket.
struct sockaddr_in loopback_addr(int port);

// Connects to 127.0.0.1:port from the local address src_ip (any 127.x.y.z
// works on loopback); one attempt with a timeout. -1 on failure.
int connect_from(int port, const std::string& src_ip, int timeout_ms = 3000);
// Sends "whoami" and parses "worker <id> pid <pid>"; returns the id or -1.
int whoami(int fd, pid_t* pid = nullptr, int timeout_ms = 5000);
// Integer field `key` of a one-line JSON object; `dflt` when absent.
long long json_int(const std::string& json, const std::string& key, long long dflt = -1);
// Sends "stats" and returns field `key` (-1 on failure).
long long stat_of(int fd, const std::string& key, int timeout_ms = 5000);

// Waits until pid is gone (or a zombie); true if it went within timeout_ms.
bool wait_gone(pid_t pid, int timeout_ms);
// utime+stime of pid in clock ticks from /proc/pid/stat; -1 when gone.
long long cpu_ticks(pid_t pid);
// comm -> pid of every live descendant of root.
std::vector<std::pair<std::string, pid_t>> named_descendants(pid_t root);
// True if 127.0.0.1:port can be bound and listened on (SO_REUSEADDR).
bool port_bindable(int port);
// A fresh directory under /tmp (mkdtemp); removed with remove_tree(),
// with everything below it (symlinks are removed, never followed).
std::string make_temp_dir();
void remove_tree(const std::string& dir);
std::string read_file(const std::string& path);
// Descriptors a process has open (entries of /proc/PID/fd), -1 if gone.
int open_fds(pid_t pid);
// CPU time (user + system, ms) a process has used so far, from
// /proc/PID/stat; -1 if it cannot be read.
long cpu_ms(pid_t pid);
// Creates or truncates path with data; false on any error.
bool write_file(const std::string& path, const std::string& data);
// Sets path's access and modification times to t (links not followed).
bool set_mtime(const std::string& path, time_t t);
// t as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(time_t t);
bool file_exists(const std::string& path);

// Inode of the server-side socket of the loopback connection `client_fd`
// to `port` (from /proc/net/tcp); 0 when not found (e.g. not accepted).
unsigned long server_inode_of(int client_fd, int port);
// True if process pid has socket inode `inode` among its descriptors.
bool has_socket_inode(pid_t pid, unsigned long inode);

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

// Sets `stop` and joins every thread still joinable at scope exit, so an
// assertion that returns early never leaves a client thread running (nor
// destroys a joinable std::thread). Declare it after both.
class JoinGuard {
public:
    JoinGuard(std::atomic<bool>& stop, std::vector<std::thread>& threads) : stop_(stop), threads_(threads) {}
    ~JoinGuard();
    JoinGuard(const JoinGuard&) = delete;
    JoinGuard& operator=(const JoinGuard&) = delete;

private:
    std::atomic<bool>& stop_;
    std::vector<std::thread>& threads_;
};


// Buffered line reader for big or pipelined replies (read_line() reads one
// byte per syscall). Lines are returned without the '\n'.
class LineReader {
public:
    explicit LineReader(int fd) : fd_(fd) {}
    // false on EOF, error or timeout.
    bool next(std::string* line, int timeout_ms = 5000);

private:
    int fd_;
    std::string buf_;
};

// A directory from make_temp_dir(), removed with all it holds at scope exit.
struct TempDir {
    std::string path = make_temp_dir();
    ~TempDir() { remove_tree(path); }
};


// ---- HTTP clients for t/server_http_test.cc and t/http_live_conformance_test.cc ----

// One HTTP/1.x response as read off the wire.
struct HttpReply {
    std::string version;  // "HTTP/1.1"
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;  // in order, values trimmed
    std::string body;  // de-chunked
    size_t wire_bytes = 0;  // bytes the response took on the wire
    // First header with this name (case-insensitive), or nullptr.
    const std::string* header(const std::string& name) const;
    int count(const std::string& name) const;
    // The Connection header holds the token "close".
    bool closes() const;
};

// Parses one response at buf[pos]. `head`: it answers a HEAD request (no
// body whatever the headers say); `eof`: the peer has closed (ends a
// close-delimited body). Returns the bytes it took, 0 when buf does not
// hold all of it yet, -1 when the bytes are not an HTTP response.
long parse_http_reply(const std::string& buf, size_t pos, bool head, bool eof, HttpReply* out);

// Reads responses off one connection; it does not own the descriptor.
class HttpReader {
public:
    explicit HttpReader(int fd) : fd_(fd) {}
    // The next response, interim (1xx) ones included. False on EOF,
    // reset, timeout or bytes that are not a response (see eof(), bad()).
    bool next(HttpReply* r, bool head = false, int timeout_ms = 5000);
    // True once the peer closed (EOF or ECONNRESET).
    bool eof() const { return eof_; }
    bool reset() const { return reset_; }
    bool bad() const { return bad_; }
    // Bytes received and not (yet) part of a response.
    const std::string& pending() const { return buf_; }
    // Waits until the peer closes; true if it did within timeout_ms.
    // Anything received meanwhile is kept in pending().
    bool closed(int timeout_ms);
    // True if for ms nothing arrives and the peer does not close.
    bool quiet(int ms);

private:
    bool fill(long long deadline);  // one recv; false on EOF/error/timeout
    int fd_;
    std::string buf_;
    bool eof_ = false, reset_ = false, bad_ = false;
};

// A connection to 127.0.0.1:port that reads responses as an HttpReader;
// it owns the socket and closes it at scope exit.
class HttpClient : public HttpReader {
public:
    HttpClient() : HttpReader(-1) {}  // not connected: assign one later
    explicit HttpClient(int port, int timeout_ms = 3000)
        : HttpClient(Sock(connect_local(port, timeout_ms))) {}
    bool ok() const { return sock_.ok(); }
    int fd() const { return sock_.get(); }
    bool send(const std::string& raw) { return send_str(sock_.get(), raw); }
    // Sends `raw` and reads the next response into *r.
    bool request(const std::string& raw, HttpReply* r, bool head = false, int timeout_ms = 5000)
    {
        return send(raw) && next(r, head, timeout_ms);
    }

private:
    explicit HttpClient(Sock s) : HttpReader(s.get()), sock_(std::move(s)) {}
    Sock sock_;
};

// Runs `cmd` with /bin/sh under timeout(1) (SIGKILL 2 s after timeout_s);
// stdout goes to *out. Returns the exit code, or -1 if it could not run
// or was killed by a signal (124/137 mean timeout(1) stopped it).
int run_command(const std::string& cmd, std::string* out, int timeout_s = 30);
// `s` quoted for /bin/sh.
std::string shell_quote(const std::string& s);


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


// Stops a server gracefully: SIGTERM, then waits up to timeout_ms for it
// to exit. Returns "" when it exited with status 0 and its output holds no
// sanitizer report (ASan, LSan, UBSan, from the Master or any child);
// otherwise a description of what went wrong.
std::string stop_and_check(Proc* p, int timeout_ms = 10000);
// The first sanitizer report in `out` (a few lines), or "".
std::string sanitizer_report(const std::string& out);


// Fixture of the integration tests: one zan-echod or zan-httpd per test,
// e.g. `using ServerBasic = zt::ServerTest;` then TEST_F(ServerBasic, ...).
// A test's locals (client sockets) go before the fixture's members, so the
// server is stopped after its clients have closed; then queues_ removes
// any SysV queue the test capture()d. All of it also when a test fails.
class ServerTest : public ::testing::Test {
protected:
    // Starts build_dir()/tools/zan-echod (zan-httpd) on 127.0.0.1 with
    // --port 0 plus `args`; sets port_. The failure shows the output.
    ::testing::AssertionResult start_echod(const std::vector<std::string>& args);
    ::testing::AssertionResult start_httpd(const std::vector<std::string>& args = {});
    // A new connection to the server (check ok()).
    Sock connect(int timeout_ms = 3000) const { return Sock(connect_local(port_, timeout_ms)); }
    // zt::find_by_name() and zt::wait_for_name() below the Master.
    pid_t find_by_name(const std::string& name) const { return zt::find_by_name(server_.pid(), name); }
    pid_t wait_for_name(const std::string& name, pid_t not_pid, int timeout_ms = 5000) const
    {
        return zt::wait_for_name(server_.pid(), name, not_pid, timeout_ms);
    }
    // SIGSTOPs pid; guard_ SIGKILLs it at the end should it still be there.
    bool freeze(pid_t pid);
    // zt::stop_and_check() of the server: "" when it stopped cleanly.
    std::string stop_and_check(int timeout_ms = 10000) { return zt::stop_and_check(&server_, timeout_ms); }

    QueueGuard queues_;  // runs last: after the server has stopped
    Proc server_;
    PidGuard guard_;  // runs first: a frozen Worker would hold up the stop
    int port_ = 0;
};


// ---- Helpers for the unit tests that fork ----

// A forked child that runs `body` and _exit()s with its return value (120
// if the parent died before it got going). The destructor SIGKILLs and
// reaps it by pid if the test did not, so a failed assertion never leaves
// a process behind.
class Child {
public:
    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child();

    bool start(const std::function<int()>& body);
    // Exit code of the child (128+signal if killed), or -1 if it is still
    // running after timeout_ms.
    int wait(int timeout_ms);
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// A one-byte signal across fork, over a pipe made by the constructor: one
// process open()s the gate, the other wait()s for it. wait() first closes
// its own copy of the write end, so that it ends at once (false) when the
// other process dies without opening the gate.
class Gate {
public:
    Gate();
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;
    bool open();
    // False on timeout, EOF, or when the pipe could not be made.
    bool wait(int timeout_ms);
    // A number (a port, a pid) instead of the byte, as often as needed:
    // put() in one process, get() in the other (which, like wait(), first
    // closes its own write end).
    bool put(int32_t v);
    bool get(int32_t* v, int timeout_ms);

private:
    zan::Fd rd_, wr_;
};

// Waits for the forked child pid. Returns its wait status, or kills it and
// returns -1 when it has not exited within timeout_ms.
int wait_child(pid_t pid, int timeout_ms);

// Reads one byte with a deadline; false on timeout or EOF.
bool read_byte(int fd, int timeout_ms, char* c);

// Points the process Logger at a temporary file for the life of the object
// (keeps expected warn lines out of the test output); text() reads it.
class CapturedLog {
public:
    explicit CapturedLog(const char* prefix = "zan_test");
    ~CapturedLog();
    CapturedLog(const CapturedLog&) = delete;
    CapturedLog& operator=(const CapturedLog&) = delete;
    std::string text() const;

private:
    std::string path_;
};

}  // namespace zt

#endif
