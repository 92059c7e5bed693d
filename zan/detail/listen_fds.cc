#include "zan/detail/listen_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "zan/socket.h"
#include "zan/sys.h"

namespace zan {

static bool whole_number(const char* s, long lo, long hi, long* out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char* end = nullptr;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool ListenFds::take_from_env(std::string* err)
{
    std::string pid = ::getenv("LISTEN_PID") ? ::getenv("LISTEN_PID") : "";
    std::string fds = ::getenv("LISTEN_FDS") ? ::getenv("LISTEN_FDS") : "";
    const char* n = ::getenv("LISTEN_FDNAMES");
    std::string names = n ? n : "";
    bool has_names = n != nullptr;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (pid.empty())
        return true;  // sd_listen_fds(3): nothing was passed
    return parse(pid.c_str(), fds.c_str(), has_names ? names.c_str() : nullptr, kFirstFd,
                 ::getpid(), err);
}

bool ListenFds::check(int fd, std::string* err)
{
    std::string what = "LISTEN_FDS: fd " + std::to_string(fd);
    struct stat st;
    if (::fstat(fd, &st) < 0) {
        *err = what + ": " + strerror(errno);
        return false;
    }
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);
    if (!S_ISSOCK(st.st_mode) || ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        *err = what + " is not a socket";
        return false;
    }
    len = sizeof(listening);
    if (type != SOCK_STREAM || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
        !listening) {
        *err = what + " is not a listening stream socket";
        return false;
    }
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) < 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        *err = what + " is not an IPv4 or IPv6 socket";
        return false;
    }
    if (set_cloexec(fd, true) < 0 || set_nonblock(fd, true) < 0) {
        *err = what + ": fcntl() failed: " + strerror(errno);
        return false;
    }
    return true;
}

bool ListenFds::parse(const char* pid, const char* fds, const char* names, int first_fd, pid_t self,
                      std::string* err)
{
    passed_.clear();
    taken_.clear();
    active_ = false;
    long p = 0, n = 0;
    if (!whole_number(pid, 1, 0x7fffffff, &p)) {
        *err = std::string("LISTEN_PID is not a process id: '") + (pid ? pid : "") + "'";
        return false;
    }
    if (p != static_cast<long>(self))
        return true;  // meant for another process (one we were started by)
    if (!whole_number(fds, 0, 4096, &n)) {
        *err = std::string("LISTEN_FDS is not a number of descriptors: '") + (fds ? fds : "") + "'";
        return false;
    }
    std::vector<std::string> name_list;
    if (names) {
        std::string all = names, cur;
        for (char c : all + ":") {
            if (c == ':') {
                name_list.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        // sd_listen_fds_with_names(3): a count that differs makes the
        // names unusable; the sockets still are.
        if (name_list.size() != static_cast<size_t>(n))
            name_list.clear();
    }
    active_ = true;
    for (int i = 0; i < n; i++) {
        int fd = first_fd + i;
        if (!check(fd, err)) {
            passed_.clear();
            return false;
        }
        Passed ps;
        ps.fd = Fd(fd);
        ps.number = fd;
        ps.addr = local_addr(fd);
        if (!name_list.empty())
            ps.name = name_list[static_cast<size_t>(i)];
        passed_.push_back(std::move(ps));
    }
    taken_.assign(passed_.size(), false);
    return true;
}

static bool same_host(const InetAddr& a, const InetAddr& b)
{
    return a.family() == b.family() && a.ip() == b.ip();
}

Fd ListenFds::take(const InetAddr& addr, std::string* name, InetAddr* bound)
{
    for (size_t i = 0; i < passed_.size(); i++) {
        Passed& ps = passed_[i];
        if (taken_[i] || !same_host(ps.addr, addr) || (addr.port() != 0 && addr.port() != ps.addr.port()))
            continue;
        taken_[i] = true;
        *name = ps.name;
        *bound = ps.addr;
        return std::move(ps.fd);
    }
    return Fd();
}

static std::string one(const ListenFds::Passed& ps)
{
    std::string s = "fd " + std::to_string(ps.number) + " (" + ps.addr.to_string();
    if (!ps.name.empty())
        s += " '" + ps.name + "'";
    return s + ")";
}

std::string ListenFds::untaken() const
{
    std::string s;
    for (size_t i = 0; i < passed_.size(); i++)
        if (!taken_[i])
            s += (s.empty() ? "" : ", ") + one(passed_[i]);
    return s;
}

std::string ListenFds::describe() const
{
    std::string s;
    for (size_t i = 0; i < passed_.size(); i++)
        s += (s.empty() ? "" : ", ") + one(passed_[i]);
    return s;
}

}  // namespace zan
