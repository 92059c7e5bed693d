// TCP socket helpers. Every socket is created SOCK_CLOEXEC|SOCK_NONBLOCK
// and returned in an owning Fd; accept/connect retry EINTR.
#ifndef ZAN_SOCKET_H
#define ZAN_SOCKET_H

#include <string>

#include "zan/fd.h"
#include "zan/inet_addr.h"

namespace zan {

// socket + SO_REUSEADDR (+ IPV6_V6ONLY for IPv6, + SO_REUSEPORT if asked)
// + bind + listen. On failure returns an invalid Fd and fills *err with
// the failing call and its error.
Fd listen_tcp(const InetAddr& addr, int backlog, bool reuse_port, std::string* err);
// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC. Returns the new fd or -1 with
// errno (EAGAIN when the queue is empty, EMFILE/ENFILE when out of fds).
int accept_conn(int listen_fd, InetAddr* peer);
// Connections waiting in the accept queue of a listening TCP socket
// (TCP_INFO), and in *limit (if not null) the queue's limit. -1 with errno
// when the kernel does not say (not a TCP socket).
int accept_queue(int listen_fd, int* limit);
// Non-blocking connect; the Fd is valid when the connect succeeded or is
// in progress (EINPROGRESS); check completion with socket_error().
Fd connect_tcp(const InetAddr& addr, int* saved_errno);
InetAddr local_addr(int fd);
InetAddr peer_addr(int fd);
int set_tcp_nodelay(int fd, bool on);
// Pending SO_ERROR of fd (0 when none).
int socket_error(int fd);

}  // namespace zan

#endif
