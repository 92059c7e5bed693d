// Loopback clients for the integration tests: a socket owner (Sock),
// connects, line-oriented sends and reads with deadlines, the
// zan-echod commands (whoami, stats), and /proc/net/tcp look-ups that
// tell which process holds the server side of a connection.
#ifndef ZAN_T_NET_HELPERS_H
#define ZAN_T_NET_HELPERS_H

#include <netinet/in.h>
#include <sys/types.h>

#include <string>

namespace zt {

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

// 127.0.0.1:port, for a test that makes its own socket.
struct sockaddr_in loopback_addr(int port);

// Blocking connection to 127.0.0.1:port, retried until timeout_ms; -1
// on failure.
int connect_local(int port, int timeout_ms = 3000);
// Connects to 127.0.0.1:port from the local address src_ip (any 127.x.y.z
// works on loopback); one attempt with a timeout. -1 on failure.
int connect_from(int port, const std::string& src_ip, int timeout_ms = 3000);
bool send_str(int fd, const std::string& s);
// Reads one '\n'-terminated line (without the '\n'); false on EOF/timeout.
bool read_line(int fd, std::string* line, int timeout_ms = 5000);
// Reads until EOF or timeout; returns what was read.
std::string read_all(int fd, int timeout_ms = 5000);
// Sends one line and reads the reply line.
std::string request(int fd, const std::string& line, int timeout_ms = 5000);
// True if the peer closed (EOF or ECONNRESET) within timeout_ms.
bool wait_closed(int fd, int timeout_ms);
// True if 127.0.0.1:port can be bound and listened on (SO_REUSEADDR).
bool port_bindable(int port);

// Sends "whoami" and parses "worker <id> pid <pid>"; returns the id or -1.
int whoami(int fd, pid_t* pid = nullptr, int timeout_ms = 5000);
// Integer field `key` of a one-line JSON object; `dflt` when absent.
long long json_int(const std::string& json, const std::string& key, long long dflt = -1);
// Sends "stats" and returns field `key` (-1 on failure).
long long stat_of(int fd, const std::string& key, int timeout_ms = 5000);

// Inode of the server-side socket of the loopback connection `client_fd`
// to `port` (from /proc/net/tcp); 0 when not found (e.g. not accepted).
unsigned long server_inode_of(int client_fd, int port);
// True if process pid has socket inode `inode` among its descriptors.
bool has_socket_inode(pid_t pid, unsigned long inode);
// Bytes the server side of the established loopback connection
// `client_fd` to `port` has received and not read yet (rx_queue of
// /proc/net/tcp); -1 when no such connection is listed.
long server_unread(int client_fd, int port);
// Waits until the server has read everything sent on client_fd (the
// request is with the server process now, not in the kernel); polls
// /proc/net/tcp, as nothing signals it. False on timeout.
bool wait_server_read(int client_fd, int port, int timeout_ms = 5000);
// True if process pid holds a listening socket on 127.0.0.1:port.
bool holds_listener(pid_t pid, int port);

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

}  // namespace zt

#endif
