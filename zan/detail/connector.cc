#include "zan/detail/connector.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <utility>

#include "zan/socket.h"

namespace zan {

// A connect to a local port nobody listens on can pick that very port as
// its own and connect to itself (TCP simultaneous open); nobody meant
// that, so it counts as refused.
// Compares the two ends' addresses as bytes (no text: this runs for
// every connection made).
static bool self_connected(int fd)
{
    InetAddr local = local_addr(fd), peer = peer_addr(fd);
    if (local.family() != peer.family() || local.port() != peer.port())
        return false;
    if (local.family() == AF_INET6)
        return memcmp(&reinterpret_cast<const struct sockaddr_in6*>(local.sa())->sin6_addr,
                      &reinterpret_cast<const struct sockaddr_in6*>(peer.sa())->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return reinterpret_cast<const struct sockaddr_in*>(local.sa())->sin_addr.s_addr ==
           reinterpret_cast<const struct sockaddr_in*>(peer.sa())->sin_addr.s_addr;
}

bool Connector::start(const InetAddr& addr, long long timeout_ms, DoneCallback cb)
{
    if (pending() || !cb) {
        errno = pending() ? EALREADY : EINVAL;
        return false;
    }
    done_ = std::move(cb);
    int err = 0;
    fd_ = connect_tcp(addr, &err);
    if (fd_ && !loop_.watch(fd_.get(), kWritable, [this](uint32_t) {
            int e = socket_error(fd_.get());
            finish(e == 0 && self_connected(fd_.get()) ? ECONNREFUSED : e);
        })) {
        err = errno;
        fd_.reset();
    }
    if (!fd_) {
        // Reported from the loop like any other outcome, so the caller
        // has one path for failures and start() never re-enters it.
        early_err_ = err;
        timer_ = loop_.run_after(0, [this] {
            timer_ = 0;
            finish(early_err_);
        });
        return true;
    }
    if (timeout_ms > 0)
        timer_ = loop_.run_after(timeout_ms, [this] {
            timer_ = 0;
            finish(ETIMEDOUT);
        });
    return true;
}

void Connector::cancel()
{
    if (fd_)
        loop_.unwatch(fd_.get());
    fd_.reset();
    if (timer_)
        loop_.cancel(timer_);
    timer_ = 0;
    done_ = nullptr;
}

// Clears every bit of state before the callback runs: it may start a new
// connect or destroy this object.
void Connector::finish(int err)
{
    if (fd_)
        loop_.unwatch(fd_.get());
    if (timer_)
        loop_.cancel(timer_);
    timer_ = 0;
    Fd fd = std::move(fd_);
    if (err != 0)
        fd.reset();
    DoneCallback done = std::move(done_);
    done_ = nullptr;
    done(std::move(fd), err);
}

}  // namespace zan
