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
// Makes a listening socket drop every new connection request (a SYN
// without ACK) with a socket filter, while handshakes already under way
// still complete into its accept queue. The queue can then be emptied
// before the socket is closed, so that the close resets no connection
// the kernel had completed (closing a listener resets its queue). A
// dropped SYN is sent again by its client about a second later and then
// finds the port closed. The filter is the socket's, shared by every
// process holding it. -1 with errno on failure.
int refuse_new_syns(int listen_fd);
// Non-blocking connect; the Fd is valid when the connect succeeded or is
// in progress (EINPROGRESS); check completion with socket_error().
Fd connect_tcp(const InetAddr& addr, int* saved_errno);
InetAddr local_addr(int fd);
InetAddr peer_addr(int fd);
int set_tcp_nodelay(int fd, bool on);
// Bytes received on a connected TCP socket and not read yet (SIOCINQ),
// -1 with errno on failure.
int unread_bytes(int fd);
// Pending SO_ERROR of fd (0 when none).
int socket_error(int fd);

}  // namespace zan

#endif
