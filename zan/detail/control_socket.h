// ControlSocket: the Master's control socket, an AF_UNIX stream socket at
// a path beside the pid file (mode 0600: only the server's user, and
// root, may connect). A client writes one command line ("stats" or
// "metrics"); the answer comes from a handler, is written back without
// ever blocking the Master's loop, and the connection is closed. A client
// that does not finish its line, or does not take the answer, within a
// few seconds is dropped; at most kMaxClients are served at once.
// It owns the listening socket, the client sockets, and the path: it
// unlinks the path when destroyed in the process that made it, unless
// another server has replaced the socket there since. A child
// forked from the Master calls close_after_fork().
// Lives in the Master process only.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_CONTROL_SOCKET_H
#define ZAN_DETAIL_CONTROL_SOCKET_H

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>

#include "zan/event_loop.h"
#include "zan/fd.h"

namespace zan {

class ControlSocket {
public:
    // Given the command (the line without its end), returns the answer.
    using Handler = std::function<std::string(const std::string& command)>;
    static constexpr int kMaxClients = 16;
    static constexpr int kClientTimeoutMs = 5000;

    ControlSocket(EventLoop& loop, Handler handler);
    ~ControlSocket();
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

    // Binds path and serves it on the loop. False with the reason in
    // *err: the path is too long, a live server answers on it, or a call
    // failed. A stale socket left at path is replaced. With take_over
    // (the new Master of a binary upgrade) a live one is replaced too, in
    // one rename(2), so that a client always finds a socket there.
    bool open(const std::string& path, bool take_over, std::string* err);
    const std::string& path() const { return path_; }
    // In a child of the Master: closes every descriptor, unlinks nothing.
    void close_after_fork();

private:
    struct Client {
        Fd fd;
        std::string in;
        std::string out;
        size_t sent = 0;
        EventLoop::TimerId timer = 0;
    };
    void on_accept();
    void on_client(int fd, uint32_t ev);
    void drop(int fd);

    EventLoop& loop_;
    Handler handler_;
    Fd listen_;
    std::string path_;
    pid_t creator_ = 0;
    dev_t dev_ = 0;  // the socket file made, to unlink only that one
    ino_t ino_ = 0;
    std::map<int, Client> clients_;
};

// The path of the control socket of a server whose pid file is pid_file.
inline std::string control_socket_path(const std::string& pid_file) { return pid_file + ".sock"; }

}  // namespace zan

#endif
