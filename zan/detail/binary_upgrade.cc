#include "zan/detail/binary_upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "zan/detail/listen_fds.h"
#include "zan/log.h"

extern char** environ;

namespace zan {

// Variables the new process gets from us, not from our environment.
static bool ours(const std::string& kv)
{
    for (const char* v : {"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "WATCHDOG_PID=", "ZAN_UPGRADE_SOCKET="})
        if (kv.compare(0, strlen(v), v) == 0)
            return true;
    return false;
}

BinaryUpgrade::BinaryUpgrade(EventLoop& loop) : loop_(loop)
{
    char path[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n > 0)
        exe_.assign(path, static_cast<size_t>(n));
    std::ifstream f("/proc/self/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (size_t pos = 0; pos < all.size();) {
        size_t end = all.find('\0', pos);
        if (end == std::string::npos)
            end = all.size();
        argv_.push_back(all.substr(pos, end - pos));
        pos = end + 1;
    }
    for (char** e = environ; e && *e; e++)
        if (!ours(*e))
            env_.push_back(*e);
}

BinaryUpgrade::~BinaryUpgrade()
{
    if (sock_)
        loop_.unwatch(sock_.get());
    if (timer_)
        loop_.cancel(timer_);
}

std::string BinaryUpgrade::take_parent_address()
{
    const char* v = ::getenv(kEnv);
    std::string a = v ? v : "";
    ::unsetenv(kEnv);
    return a;
}

// Our environment for the new process: LISTEN_PID and WATCHDOG_PID
// (when the watchdog is on) name the new process itself; it fills them in
// after fork.
std::vector<std::string> BinaryUpgrade::child_env(size_t n, const std::string& names) const
{
    std::vector<std::string> env = env_;
    env.push_back("LISTEN_FDS=" + std::to_string(n));
    env.push_back("LISTEN_FDNAMES=" + names);
    return env;
}

// An abstract datagram socket with a name the kernel picks (autobind),
// with SO_PASSCRED so that each datagram names its sender. "" on failure.
static std::string bind_private(Fd* sock)
{
    sock->reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int one = 1;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    socklen_t len = sizeof(sa_family_t);
    if (!*sock || ::setsockopt(sock->get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
        ::bind(sock->get(), reinterpret_cast<struct sockaddr*>(&sa), len) < 0)
        return "";
    len = sizeof(sa);
    if (::getsockname(sock->get(), reinterpret_cast<struct sockaddr*>(&sa), &len) < 0)
        return "";
    size_t name_len = len - offsetof(struct sockaddr_un, sun_path);
    if (name_len < 2 || sa.sun_path[0] != '\0')
        return "";
    return "@" + std::string(sa.sun_path + 1, name_len - 1);
}

// In the forked child: the new program starts as a fresh one would, with
// no signal blocked, SIGPIPE back to its default, the listening sockets at
// 3.. and nothing else of ours (everything else is close-on-exec).
[[noreturn]] static void exec_new_master(const std::string& exe, std::vector<std::string> argv,
                                         std::vector<std::string> env,
                                         const std::vector<Listener>& listeners, bool watchdog)
{
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    // Out of the way first (above the targets), then down to 3..: dup2()
    // clears close-on-exec on the copies it makes.
    int n = static_cast<int>(listeners.size());
    std::vector<int> tmp;
    for (const Listener& l : listeners)
        tmp.push_back(::fcntl(l.fd.get(), F_DUPFD_CLOEXEC, ListenFds::kFirstFd + n));
    for (int i = 0; i < n; i++)
        if (tmp[static_cast<size_t>(i)] < 0 || ::dup2(tmp[static_cast<size_t>(i)], ListenFds::kFirstFd + i) < 0)
            _exit(127);
    std::string self = std::to_string(::getpid());
    env.push_back("LISTEN_PID=" + self);
    if (watchdog)
        env.push_back("WATCHDOG_PID=" + self);
    std::vector<char*> av, ev;
    for (std::string& a : argv)
        av.push_back(&a[0]);
    av.push_back(nullptr);
    for (std::string& e : env)
        ev.push_back(&e[0]);
    ev.push_back(nullptr);
    ::execve(exe.c_str(), av.data(), ev.data());
    log_errno(Level::error, errno, "upgrade: execve(%s) failed", exe.c_str());
    _exit(127);
}

pid_t BinaryUpgrade::start(const std::vector<Listener>& listeners, int timeout_s, int grace_s, Done done,
                           std::string* err)
{
    if (pid_ > 0) {
        *err = "an upgrade is already under way (new Master " + std::to_string(pid_) + ")";
        return 0;
    }
    if (exe_.empty() || argv_.empty() || ::access(exe_.c_str(), X_OK) < 0) {
        *err = "cannot run " + (exe_.empty() ? std::string("the program") : exe_) + ": " +
               strerror(exe_.empty() ? ENOENT : errno);
        return 0;
    }
    std::string address = bind_private(&sock_);
    if (address.empty()) {
        *err = std::string("cannot make the upgrade socket: ") + strerror(errno);
        sock_.reset();
        return 0;
    }
    std::string names;
    for (size_t i = 0; i < listeners.size(); i++)
        names += (i ? ":" : "") +
                 (listeners[i].name.empty() ? "zan-listener-" + std::to_string(i) : listeners[i].name);
    std::vector<std::string> env = child_env(listeners.size(), names);
    env.push_back(std::string(kEnv) + "=" + address);
    bool watchdog = ::getenv("WATCHDOG_USEC") != nullptr;

    pid_t pid = ::fork();
    if (pid < 0) {
        *err = std::string("fork() failed: ") + strerror(errno);
        sock_.reset();
        return 0;
    }
    if (pid == 0)
        exec_new_master(exe_, argv_, env, listeners, watchdog);
    pid_ = pid;
    waiting_ = true;
    grace_s_ = grace_s;
    done_ = std::move(done);
    loop_.watch(sock_.get(), kReadable, [this](uint32_t) { on_message(); });
    timer_ = loop_.run_after(timeout_s * 1000LL, [this, timeout_s] {
        timer_ = 0;
        fail("new Master " + std::to_string(pid_) + " was not ready within " + std::to_string(timeout_s) +
             " s (upgrade_timeout)");
    });
    return pid;
}

// Reads every datagram waiting; READY=1 from the new process ends the wait.
void BinaryUpgrade::on_message()
{
    for (;;) {
        char buf[4096];
        union {
            struct cmsghdr align;
            char space[CMSG_SPACE(sizeof(struct ucred))];
        } ctl;
        struct iovec iov = {buf, sizeof(buf) - 1};
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.space;
        mh.msg_controllen = sizeof(ctl.space);
        ssize_t n = ::recvmsg(sock_.get(), &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        pid_t from = 0;
        for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred uc;
                memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                from = uc.pid;
            }
        std::string msg(buf, static_cast<size_t>(n));
        if (from != pid_) {
            log(Level::warn, "upgrade: ignored a message from process %d, not the new Master %d",
                static_cast<int>(from), pid_);
            continue;
        }
        if (("\n" + msg + "\n").find("\nREADY=1\n") != std::string::npos) {
            finish(true, msg);
            return;
        }
    }
}

void BinaryUpgrade::finish(bool ok, const std::string& detail)
{
    waiting_ = false;
    if (timer_) {
        loop_.cancel(timer_);
        timer_ = 0;
    }
    if (sock_) {
        loop_.unwatch(sock_.get());
        sock_.reset();
    }
    pid_t pid = pid_;
    if (ok)
        pid_ = 0;  // the new Master is on its own now
    Done done = std::move(done_);
    done_ = nullptr;
    if (done)
        done(ok, pid, detail);
}

// No READY=1: stop the new process (its NetWorkers may hold connections:
// SIGTERM lets them answer), SIGKILL after the grace period.
void BinaryUpgrade::fail(const std::string& why)
{
    if (!waiting_)
        return;
    pid_t pid = pid_;
    ::kill(pid, SIGTERM);
    finish(false, why);
    timer_ = loop_.run_after(grace_s_ * 1000LL, [this, pid] {
        timer_ = 0;
        if (pid_ == pid) {
            log(Level::warn, "upgrade: new Master %d did not stop: SIGKILL", pid);
            ::kill(pid, SIGKILL);
        }
    });
}

void BinaryUpgrade::abort(const std::string& why) { fail(why); }

void BinaryUpgrade::exited(int status)
{
    if (waiting_) {
        std::string how = WIFSIGNALED(status)
                              ? "was killed by signal " + std::to_string(WTERMSIG(status))
                              : "exited with code " + std::to_string(WEXITSTATUS(status));
        finish(false, "new Master " + std::to_string(pid_) + " " + how + " before it was ready");
    }
    pid_ = 0;
    if (timer_) {  // the SIGKILL of a failed one
        loop_.cancel(timer_);
        timer_ = 0;
    }
}

}  // namespace zan
