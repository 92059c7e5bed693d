// ListenFds: the listening sockets a service manager passes to a program
// (systemd socket activation, sd_listen_fds(3), without libsystemd), and
// the ones a Master hands to the binary that replaces it in an upgrade.
// When LISTEN_PID names this process, the LISTEN_FDS sockets at fd 3
// onward are this program's, named by LISTEN_FDNAMES (colon-separated).
// Each must be a listening TCP socket (SO_TYPE SOCK_STREAM, SO_ACCEPTCONN,
// IPv4 or IPv6); it is made close-on-exec and non-blocking. take() hands
// the one bound to an address to its user, who owns it from then on;
// the destructor closes those nobody took. Used in the Master before
// start(); the object is not shared across fork.
#ifndef ZAN_DETAIL_LISTEN_FDS_H
#define ZAN_DETAIL_LISTEN_FDS_H

#include <sys/types.h>

#include <string>
#include <vector>

#include "zan/fd.h"
#include "zan/inet_addr.h"

namespace zan {

class ListenFds {
public:
    // The first descriptor of the protocol (SD_LISTEN_FDS_START).
    static constexpr int kFirstFd = 3;

    struct Passed {
        Fd fd;
        int number = -1;   // the descriptor it was passed as
        InetAddr addr;     // getsockname()
        std::string name;  // from LISTEN_FDNAMES, "" when none
    };

    ListenFds() = default;
    ListenFds(ListenFds&&) = default;
    ListenFds& operator=(ListenFds&&) = default;

    // Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES and removes them
    // from the environment (whether or not they are for this process), so
    // that nothing forked or run later sees them. Sockets passed to
    // another process are left alone. False with *err naming the variable
    // or descriptor at fault; the sockets checked so far are closed.
    bool take_from_env(std::string* err);
    // The same from values (null: unset), with the sockets at first_fd
    // onward and `self` as this process's pid; leaves the environment alone.
    bool parse(const char* pid, const char* fds, const char* names, int first_fd, pid_t self,
               std::string* err);

    // True when sockets were passed to this process (even if all taken).
    bool active() const { return active_; }
    size_t count() const { return passed_.size(); }
    // Moves out the first untaken socket bound to addr. Port 0 in addr
    // matches any port (a program told to pick a free port is given the
    // one picked before). Returns an invalid Fd when none matches.
    Fd take(const InetAddr& addr, std::string* name, InetAddr* bound);
    // "fd 3 (0.0.0.0:80 'http'), ..." of the sockets nobody took; "" when
    // all were.
    std::string untaken() const;
    // "fd 3 (0.0.0.0:80 'http'), ..." of every passed socket.
    std::string describe() const;

private:
    bool check(int fd, std::string* err);

    std::vector<Passed> passed_;
    std::vector<bool> taken_;
    bool active_ = false;
};

}  // namespace zan

#endif
