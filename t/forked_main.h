// ForkedMain: a server program of the test's own, run in a forked child
// that becomes the server's Master, for tests of the library API that
// need a server class other than a bare TcpServer (an HttpServer with
// handlers of their own). run(ready_fd) builds and starts the server and
// returns its exit status; report_port() from its on_start tells the test
// the port, the readiness signal it waits on (at most timeout_ms). The
// destructor stops the server (SIGTERM, then SIGKILL for its whole tree)
// and waits for it, also when an assertion failed.
#ifndef ZAN_T_FORKED_MAIN_H
#define ZAN_T_FORKED_MAIN_H

#include <sys/types.h>

#include <functional>

namespace zt {

class ForkedMain {
public:
    explicit ForkedMain(const std::function<int(int ready_fd)>& run, int timeout_ms = 10000);
    ~ForkedMain() { stop(); }
    ForkedMain(const ForkedMain&) = delete;
    ForkedMain& operator=(const ForkedMain&) = delete;

    int port() const { return port_; }  // 0 when it did not start
    pid_t pid() const { return pid_; }
    // SIGTERM, and its wait status once it exited (-1 when it had to be
    // killed, or was stopped already).
    int stop();

    // For run()'s on_start: writes the port, as one line, to ready_fd.
    static void report_port(int ready_fd, int port);

private:
    pid_t pid_ = -1;
    int port_ = 0;
};

}  // namespace zt

#endif
