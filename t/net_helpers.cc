#include "t/net_helpers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "t/test_env.h"

namespace zt {

void Sock::reset(int fd)
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = fd;
}

struct sockaddr_in loopback_addr(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

int connect_local(int port, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = loopback_addr(port);
        if (::connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) == 0)
            return fd;
        ::close(fd);
        if (now_ms() >= deadline)
            return -1;
        ::usleep(10000);
    }
}

bool send_str(int fd, const std::string& s)
{
    size_t done = 0;
    while (done < s.size()) {
        ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

bool read_line(int fd, std::string* line, int timeout_ms)
{
    line->clear();
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd, POLLIN, left))
            return false;
        char c;
        ssize_t n = ::recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        if (c == '\n')
            return true;
        line->push_back(c);
    }
}

std::string read_all(int fd, int timeout_ms)
{
    std::string out;
    long long deadline = now_ms() + scaled(timeout_ms);
    char buf[65536];
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd, POLLIN, left))
            return out;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return out;
        out.append(buf, static_cast<size_t>(n));
    }
}

std::string request(int fd, const std::string& line, int timeout_ms)
{
    if (!send_str(fd, line + "\n"))
        return "<send failed>";
    std::string reply;
    if (!read_line(fd, &reply, timeout_ms))
        return "<no reply>";
    return reply;
}

bool wait_closed(int fd, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    char buf[4096];
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd, POLLIN, left))
            return false;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0 && errno != EINTR)
            return true;
    }
}

int connect_from(int port, const std::string& src_ip, int timeout_ms)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in src;
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    if (::inet_pton(AF_INET, src_ip.c_str(), &src.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<struct sockaddr*>(&src), sizeof(src)) < 0) {
        ::close(fd);
        return -1;
    }
    struct sockaddr_in a = loopback_addr(port);
    int r = ::connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a));
    if (r < 0 && errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    if (r < 0) {
        if (!wait_fd(fd, POLLOUT, scaled(timeout_ms))) {
            ::close(fd);
            return -1;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            ::close(fd);
            return -1;
        }
    }
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int whoami(int fd, pid_t* pid, int timeout_ms)
{
    std::string r = request(fd, "whoami", timeout_ms);
    int id = -1, p = -1;
    if (sscanf(r.c_str(), "worker %d pid %d", &id, &p) != 2)
        return -1;
    if (pid)
        *pid = static_cast<pid_t>(p);
    return id;
}

long long json_int(const std::string& json, const std::string& key, long long dflt)
{
    std::string k = "\"" + key + "\":";
    size_t pos = json.find(k);
    if (pos == std::string::npos)
        return dflt;
    const char* p = json.c_str() + pos + k.size();
    while (*p == ' ')
        p++;
    char* end = nullptr;
    long long v = strtoll(p, &end, 10);
    return end == p ? dflt : v;
}

long long stat_of(int fd, const std::string& key, int timeout_ms)
{
    return json_int(request(fd, "stats", timeout_ms), key, -1);
}

bool port_bindable(int port)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = loopback_addr(port);
    bool ok = ::bind(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) == 0 &&
              ::listen(fd, 16) == 0;
    ::close(fd);
    return ok;
}

// One row of /proc/net/tcp.
struct TcpRow {
    unsigned lport, rport;
    unsigned state;  // 1 established, 10 listen, ...
    unsigned long rx_queue;  // bytes received and not read yet
    unsigned long inode;
};

static std::vector<TcpRow> tcp_rows()
{
    std::vector<TcpRow> rows;
    std::ifstream f("/proc/net/tcp");
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        std::istringstream in(line);
        std::string sl, local, rem, st, q, tr, retr, uid, timeout;
        unsigned long inode = 0;
        if (!(in >> sl >> local >> rem >> st >> q >> tr >> retr >> uid >> timeout >> inode))
            continue;
        size_t lc = local.find(':'), rc = rem.find(':'), qc = q.find(':');
        if (lc == std::string::npos || rc == std::string::npos || qc == std::string::npos)
            continue;
        TcpRow r;
        r.lport = static_cast<unsigned>(strtoul(local.c_str() + lc + 1, nullptr, 16));
        r.rport = static_cast<unsigned>(strtoul(rem.c_str() + rc + 1, nullptr, 16));
        r.state = static_cast<unsigned>(strtoul(st.c_str(), nullptr, 16));
        r.rx_queue = strtoul(q.c_str() + qc + 1, nullptr, 16);
        r.inode = inode;
        rows.push_back(r);
    }
    return rows;
}

static int local_port_of(int fd)
{
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    if (::getsockname(fd, reinterpret_cast<struct sockaddr*>(&me), &len) < 0)
        return -1;
    return ntohs(me.sin_port);
}

unsigned long server_inode_of(int client_fd, int port)
{
    int client_port = local_port_of(client_fd);
    for (const TcpRow& r : tcp_rows())
        if (client_port > 0 && r.lport == static_cast<unsigned>(port) &&
            r.rport == static_cast<unsigned>(client_port) && r.inode != 0)
            return r.inode;
    return 0;
}

long server_unread(int client_fd, int port)
{
    int client_port = local_port_of(client_fd);
    for (const TcpRow& r : tcp_rows())
        if (client_port > 0 && r.lport == static_cast<unsigned>(port) &&
            r.rport == static_cast<unsigned>(client_port) && r.state == 1)
            return static_cast<long>(r.rx_queue);
    return -1;
}

bool holds_listener(pid_t pid, int port)
{
    for (const TcpRow& r : tcp_rows())
        if (r.lport == static_cast<unsigned>(port) && r.state == 10 && has_socket_inode(pid, r.inode))
            return true;
    return false;
}

bool wait_server_read(int client_fd, int port, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        if (server_unread(client_fd, port) == 0)
            return true;
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        wait_fd(-1, 0, static_cast<int>(left < 2 ? left : 2));  // no event for it: poll /proc every 2 ms
    }
}

bool has_socket_inode(pid_t pid, unsigned long inode)
{
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    std::string want = "socket:[" + std::to_string(inode) + "]";
    DIR* d = ::opendir(dir.c_str());
    if (!d)
        return false;
    bool found = false;
    while (struct dirent* e = ::readdir(d)) {
        char buf[128];
        ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), buf, sizeof(buf) - 1);
        if (n > 0) {
            buf[n] = '\0';
            if (want == buf) {
                found = true;
                break;
            }
        }
    }
    ::closedir(d);
    return found;
}

bool LineReader::next(std::string* line, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        size_t eol = buf_.find('\n');
        if (eol != std::string::npos) {
            line->assign(buf_, 0, eol);
            buf_.erase(0, eol + 1);
            return true;
        }
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd_, POLLIN, left))
            return false;
        char tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf_.append(tmp, static_cast<size_t>(n));
    }
}

}  // namespace zt
