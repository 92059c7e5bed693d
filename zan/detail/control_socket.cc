#include "zan/detail/control_socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/sys.h"

namespace zan {

static const size_t kMaxCommand = 256;

ControlSocket::ControlSocket(EventLoop& loop, Handler handler)
    : loop_(loop), handler_(std::move(handler))
{
}

ControlSocket::~ControlSocket()
{
    for (auto& kv : clients_) {
        loop_.unwatch(kv.first);
        if (kv.second.timer)
            loop_.cancel(kv.second.timer);
    }
    clients_.clear();
    if (listen_) {
        loop_.unwatch(listen_.get());
        listen_.reset();
        struct stat st;
        if (creator_ == ::getpid() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ &&
            st.st_ino == ino_)
            ::unlink(path_.c_str());
    }
}

void ControlSocket::close_after_fork()
{
    for (auto& kv : clients_)
        kv.second.fd.reset();
    clients_.clear();
    listen_.reset();
    creator_ = 0;
}

bool ControlSocket::open(const std::string& path, bool take_over, std::string* err)
{
    // A take-over binds beside the path first and renames over it.
    std::string bind_path = take_over ? path + "." + std::to_string(::getpid()) : path;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (bind_path.size() >= sizeof(sun.sun_path)) {
        *err = "control socket path " + bind_path + " is longer than " +
               std::to_string(sizeof(sun.sun_path) - 1) + " bytes";
        return false;
    }
    memcpy(sun.sun_path, bind_path.c_str(), bind_path.size());
    const struct sockaddr* sa = reinterpret_cast<const struct sockaddr*>(&sun);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        *err = std::string("socket(AF_UNIX) failed: ") + strerror(errno);
        return false;
    }
    // A socket left by a server that died is replaced; a live one is not.
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!take_over && probe && ::connect(probe.get(), sa, sizeof(sun)) == 0) {
        *err = "a running server answers on " + path;
        return false;
    }
    probe.reset();
    struct stat st;
    if (::lstat(bind_path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *err = bind_path + " exists and is not a socket";
            return false;
        }
        ::unlink(bind_path.c_str());
    }
    // Created 0600 (no window with wider permissions): the Master is
    // single-threaded, so the umask may change for the bind.
    mode_t old = ::umask(0177);
    int r = ::bind(fd.get(), sa, sizeof(sun));
    int e = errno;
    ::umask(old);
    if (r < 0 || ::listen(fd.get(), kMaxClients) < 0) {
        *err = "bind()/listen() on " + bind_path + " failed: " + strerror(r < 0 ? e : errno);
        if (r == 0)
            ::unlink(bind_path.c_str());
        return false;
    }
    if (take_over && ::rename(bind_path.c_str(), path.c_str()) < 0) {
        *err = "rename() of " + bind_path + " to " + path + " failed: " + strerror(errno);
        ::unlink(bind_path.c_str());
        return false;
    }
    if (::lstat(path.c_str(), &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
    listen_ = std::move(fd);
    path_ = path;
    creator_ = ::getpid();
    loop_.watch(listen_.get(), kReadable, [this](uint32_t) { on_accept(); });
    return true;
}

void ControlSocket::on_accept()
{
    for (;;) {
        int c = ::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                log_errno(Level::warn, errno, "accept4() on control socket %s", path_.c_str());
            return;
        }
        if (clients_.size() >= static_cast<size_t>(kMaxClients)) {
            ::close(c);
            continue;
        }
        Client& cl = clients_[c];
        cl.fd.reset(c);
        cl.timer = loop_.run_after(kClientTimeoutMs, [this, c] {
            clients_[c].timer = 0;
            drop(c);
        });
        loop_.watch(c, kReadable, [this, c](uint32_t ev) { on_client(c, ev); });
    }
}

void ControlSocket::on_client(int fd, uint32_t ev)
{
    auto it = clients_.find(fd);
    if (it == clients_.end())
        return;
    Client& cl = it->second;
    if (cl.out.empty() && (ev & kReadable)) {
        char buf[256];
        ssize_t n = read_some(fd, buf, sizeof(buf));
        if (n < 0 && errno == EAGAIN)
            return;
        if (n > 0)
            cl.in.append(buf, static_cast<size_t>(n));
        size_t eol = cl.in.find('\n');
        if (eol == std::string::npos && n > 0 && cl.in.size() <= kMaxCommand)
            return;  // more to come
        if (eol == std::string::npos && n != 0) {
            drop(fd);  // too long, or a read error
            return;
        }
        std::string cmd = cl.in.substr(0, eol == std::string::npos ? cl.in.size() : eol);
        if (!cmd.empty() && cmd.back() == '\r')
            cmd.pop_back();
        cl.out = handler_(cmd);
        if (cl.out.empty()) {
            drop(fd);
            return;
        }
    }
    while (cl.sent < cl.out.size()) {
        ssize_t n = ::send(fd, cl.out.data() + cl.sent, cl.out.size() - cl.sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            loop_.update(fd, kWritable);
            return;
        }
        if (n <= 0)
            break;
        cl.sent += static_cast<size_t>(n);
    }
    drop(fd);
}

void ControlSocket::drop(int fd)
{
    auto it = clients_.find(fd);
    if (it == clients_.end())
        return;
    loop_.unwatch(fd);
    if (it->second.timer)
        loop_.cancel(it->second.timer);
    clients_.erase(it);  // closes fd
}

}  // namespace zan
