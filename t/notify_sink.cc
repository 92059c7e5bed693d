#include "t/notify_sink.h"

#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>

#include "t/test_env.h"

namespace zt {

bool NotifyMessage::has(const std::string& line) const
{
    return ("\n" + text + "\n").find("\n" + line + "\n") != std::string::npos;
}

std::string NotifyMessage::value(const std::string& key) const
{
    std::string t = "\n" + text + "\n";
    size_t p = t.find("\n" + key + "=");
    if (p == std::string::npos)
        return "";
    p += key.size() + 2;
    return t.substr(p, t.find('\n', p) - p);
}

NotifySink::NotifySink(bool abstract)
{
    static std::atomic<int> seq{0};
    address_ = abstract ? "@zan-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(seq++)
                        : dir_.path + "/notify";
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, address_.data(), address_.size());
    if (abstract)
        sa.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + address_.size() +
                                           (abstract ? 0 : 1));
    int one = 1;
    if (!fd_ || ::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
        ::bind(fd_.get(), reinterpret_cast<struct sockaddr*>(&sa), len) < 0)
        fd_.reset();
}

bool NotifySink::next(NotifyMessage* m, int timeout_ms)
{
    if (!wait_fd(fd_.get(), POLLIN, scaled(timeout_ms)))
        return false;
    char buf[4096];
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.space;
    mh.msg_controllen = sizeof(ctl.space);
    ssize_t n = ::recvmsg(fd_.get(), &mh, 0);
    if (n < 0)
        return false;
    m->pid = 0;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(c), sizeof(uc));
            m->pid = uc.pid;
        }
    m->text.assign(buf, static_cast<size_t>(n));
    return true;
}

bool NotifySink::wait_for(const std::string& line, NotifyMessage* m, int timeout_ms,
                          std::vector<NotifyMessage>* skipped)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        long long left = deadline - now_ms();
        // next() scales its limit: hand it what is left, unscaled.
        if (left <= 0 || !next(m, static_cast<int>(left / time_scale()) + 1))
            return false;
        if (m->has(line))
            return true;
        if (skipped)
            skipped->push_back(*m);
    }
}

}  // namespace zt
