#include "t/forked_main.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/test_env.h"

namespace zt {

ForkedMain::ForkedMain(const std::function<int(int ready_fd)>& run, int timeout_ms)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0)
        return;
    pid_ = ::fork();
    if (pid_ == 0) {
        ::close(fds[0]);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(run(fds[1]));
    }
    ::close(fds[1]);
    // The port, as one line; the pipe closes if the child fails.
    std::string line;
    long long deadline = now_ms() + scaled(timeout_ms);
    while (pid_ > 0 && line.find('\n') == std::string::npos && now_ms() < deadline) {
        if (!wait_fd(fds[0], POLLIN, 100))
            continue;
        char buf[64];
        ssize_t n = ::read(fds[0], buf, sizeof(buf));
        if (n <= 0)
            break;
        line.append(buf, static_cast<size_t>(n));
    }
    port_ = atoi(line.c_str());
    ::close(fds[0]);
}

int ForkedMain::stop()
{
    if (pid_ <= 0)
        return -1;
    ::kill(pid_, SIGTERM);
    int st = -1;
    if (!reap_by(pid_, &st, now_ms() + scaled(5000))) {
        for (pid_t d : descendants_of(pid_))
            ::kill(d, SIGKILL);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        st = -1;
    }
    pid_ = -1;
    return st;
}

void ForkedMain::report_port(int ready_fd, int port)
{
    std::string l = std::to_string(port) + "\n";
    ssize_t n = ::write(ready_fd, l.data(), l.size());
    (void)n;
}

}  // namespace zt
