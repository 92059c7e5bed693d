// ForkedServer: a library server (zan::TcpServer) run in a forked child
// that becomes its Master, for tests that need callbacks of their own in
// the server processes. The callbacks write report lines to a pipe, which
// is the readiness signal the test waits on; the server's log goes to a
// file the test reads afterwards. Every wait has a deadline, and the
// server and every process it had are gone at the end of a test, also
// when an assertion fails. Plus the small helpers those tests share.
#ifndef ZAN_T_FORKED_SERVER_H
#define ZAN_T_FORKED_SERVER_H

#include <gtest/gtest.h>
#include <sys/types.h>

#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/tmp_helpers.h"
#include "zan/tcp_server.h"

namespace zt {

// AddressSanitizer holds freed memory back (its quarantine), so a heap
// that does not shrink proves nothing there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizedHeap = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitizedHeap = true;
#else
constexpr bool kSanitizedHeap = false;
#endif
#else
constexpr bool kSanitizedHeap = false;
#endif

// A TcpServer in a forked child, which becomes its Master. setup() adds the
// callbacks there; they report through Ends::report, and the test can poke
// the server processes through Ends::trigger (non-blocking, read by
// whichever callback the test's setup polls it from). The Master reports
// "port <n>" from on_start, once every process is up. The destructor stops
// the server (SIGTERM, then SIGKILL for every process of the tree) and
// removes its log directory.
class ForkedServer {
public:
    struct Ends {
        int report;   // write end of the report pipe
        int trigger;  // read end of the trigger pipe (O_NONBLOCK)
    };
    using Setup = std::function<void(zan::TcpServer&, const Ends&)>;

    ForkedServer() = default;
    ~ForkedServer() { kill_all(); }
    ForkedServer(const ForkedServer&) = delete;
    ForkedServer& operator=(const ForkedServer&) = delete;

    ::testing::AssertionResult start(zan::ServerConfig cfg, const Setup& setup);

    pid_t pid() const { return pid_; }
    int port() const { return port_; }
    std::string log() const { return read_file(log_path_); }
    Sock connect() const { return Sock(connect_local(port_)); }
    // The pid of the child named `name` (zan-net-0, ...), 0 when none.
    pid_t child(const std::string& name) const { return find_by_name(pid_, name); }
    // Processes to SIGKILL at the end should they outlive the Master.
    void guard(pid_t p) { guard_.add(p); }
    void guard(const std::vector<pid_t>& ps) { guard_.add(ps); }
    bool trigger(char c);

    // True when line starts with the words of prefix: "close 1" matches
    // "close 1" and "close 1 x", not "close 12"; "close " any close line.
    static bool matches(const std::string& line, const std::string& prefix);
    // Takes the first report line not taken yet that starts with prefix,
    // waiting for it at most timeout_ms; false on timeout, or when every
    // server process has closed the pipe.
    bool take(const std::string& prefix, std::string* line, int timeout_ms = 5000);
    // Report lines so far (taken or not) that start with prefix (as take()).
    int count(const std::string& prefix);
    std::string reports();

    // SIGTERM to the Master; its wait status once it has exited, with the
    // time it took in *took_ms, or -1 when it is still running after
    // timeout_ms (it is then killed with its whole tree).
    int stop(int timeout_ms, long long* took_ms = nullptr);

private:
    bool fill(long long deadline);
    void kill_all(bool term = true);

    TempDir dir_;  // removed last
    std::string log_path_;
    PidGuard guard_;  // after kill_all(): children that outlived the Master
    pid_t pid_ = -1;
    int port_ = 0;
    Sock report_rd_, trigger_wr_;
    std::string buf_;
    std::vector<std::string> all_;
    std::deque<std::string> unread_;
    bool eof_ = false;
};

// Settings shared by the ForkedServer tests: one NetWorker, no
// TaskWorker, lines ending in '\n', and a short max_wait_time (1 s, the
// smallest).
zan::ServerConfig forked_server_config(int workers);

// One report line from a server process: a single write(2) of less than
// PIPE_BUF bytes, so lines of different processes never interleave.
void report(int fd, const std::string& line);
std::vector<std::string> words(const std::string& line);
// Word i of line as a number (0 when missing).
long long word_num(const std::string& line, size_t i);
// A message without its trailing '\n'.
std::string line_of(std::string_view msg);
int occurrences(const std::string& text, const std::string& what);
// n bytes that depend on their offset and on seed, so that a lost,
// repeated or misplaced fragment shows.
std::string pattern(size_t n, unsigned seed);

// A field of /proc/pid/status in kB ("RssAnon:"), -1 when unknown.
long status_kb(pid_t pid, const char* field);
// The state letter of /proc/pid/stat (R, S, T, Z, ...), 0 when gone.
char proc_state(pid_t pid);
// TCP state (the st column of /proc/net/tcp: 1 established, 3 SYN_RECV,
// ...) of the server side of the loopback connection from client port
// `cport` to `port`; -1 when the kernel lists no such socket (closed).
int server_side_state(int port, int cport);
int local_port(int fd);
// Closes a client socket with a reset (SO_LINGER 0), as a client that
// goes away with replies unread does.
void reset_close(Sock* s);

// Polls `cond` (a state of /proc or of a socket that has no event to wait
// on) every 2 ms until it holds or timeout_ms passes.
bool eventually(const std::function<bool()>& cond, int timeout_ms);

// Sends SIGCONT to a process the test stopped, at the latest at scope exit.
class Resume {
public:
    explicit Resume(pid_t pid) : pid_(pid) {}
    ~Resume() { now(); }
    Resume(const Resume&) = delete;
    Resume& operator=(const Resume&) = delete;
    void now();

private:
    pid_t pid_;
};

// Blocks the calling process for good. SIGTERM is blocked in a Worker (its
// loop reads it from a signalfd), so only SIGKILL ends this.
[[noreturn]] void block_forever();

}  // namespace zt

#endif
