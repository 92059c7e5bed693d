#include "zan/socket.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace zan {

static std::string errstr(const char* call)
{
    return std::string(call) + "() failed: " + strerror(errno);
}

Fd listen_tcp(const InetAddr& addr, int backlog, bool reuse_port, std::string* err)
{
    Fd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        *err = errstr("socket");
        return Fd();
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        *err = errstr("setsockopt(SO_REUSEPORT)");
        return Fd();
    }
    if (addr.family() == AF_INET6)
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (::bind(fd.get(), addr.sa(), addr.len()) < 0) {
        *err = errstr("bind") + " (" + addr.to_string() + ")";
        return Fd();
    }
    if (::listen(fd.get(), backlog) < 0) {
        *err = errstr("listen");
        return Fd();
    }
    return fd;
}

int accept_conn(int listen_fd, InetAddr* peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd;
    do
        fd = ::accept4(listen_fd, reinterpret_cast<struct sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
    if (fd >= 0 && peer)
        *peer = InetAddr::from_sockaddr(reinterpret_cast<struct sockaddr*>(&ss), len);
    return fd;
}

// For a socket in LISTEN state tcpi_unacked is the length of the accept
// queue and tcpi_sacked its limit (the backlog, capped by somaxconn).
int accept_queue(int listen_fd, int* limit)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (::getsockopt(listen_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return -1;
    if (ti.tcpi_state != TCP_LISTEN) {
        errno = EINVAL;
        return -1;
    }
    if (limit)
        *limit = static_cast<int>(ti.tcpi_sacked);
    return static_cast<int>(ti.tcpi_unacked);
}

int refuse_new_syns(int listen_fd)
{
    // The filter of a TCP socket sees each segment from its TCP header
    // on; byte 13 holds the flags. SYN alone is a new connection; the
    // ACK that completes a handshake (and any later segment) passes.
    static const struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),        // SYN | ACK
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),  // SYN alone?
        BPF_STMT(BPF_RET | BPF_K, 0),                     // drop
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),            // keep all of it
    };
    struct sock_fprog prog;
    prog.len = static_cast<unsigned short>(sizeof(code) / sizeof(code[0]));
    prog.filter = const_cast<struct sock_filter*>(code);
    return ::setsockopt(listen_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

Fd connect_tcp(const InetAddr& addr, int* saved_errno)
{
    Fd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        *saved_errno = errno;
        return Fd();
    }
    int r;
    do
        r = ::connect(fd.get(), addr.sa(), addr.len());
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EINPROGRESS) {
        *saved_errno = errno;
        return Fd();
    }
    *saved_errno = 0;
    return fd;
}

InetAddr local_addr(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    ::getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len);
    return InetAddr::from_sockaddr(reinterpret_cast<struct sockaddr*>(&ss), len);
}

InetAddr peer_addr(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    ::getpeername(fd, reinterpret_cast<struct sockaddr*>(&ss), &len);
    return InetAddr::from_sockaddr(reinterpret_cast<struct sockaddr*>(&ss), len);
}

int set_tcp_nodelay(int fd, bool on)
{
    int v = on ? 1 : 0;
    return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
}

int unread_bytes(int fd)
{
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) < 0 ? -1 : n;
}

int socket_error(int fd)
{
    int e = 0;
    socklen_t len = sizeof(e);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        return errno;
    return e;
}

}  // namespace zan
