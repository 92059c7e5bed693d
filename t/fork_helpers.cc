#include "t/fork_helpers.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t/proc_helpers.h"
#include "t/test_env.h"
#include "zan/fd.h"
#include "zan/sys.h"

namespace zt {

Child::~Child()
{
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

bool Child::start(const std::function<int()>& body)
{
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            _exit(120);
        _exit(body());
    }
    return pid_ > 0;
}

int Child::wait(int timeout_ms)
{
    int st;
    if (!reap_by(pid_, &st, now_ms() + scaled(timeout_ms)))
        return -1;
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Gate::Gate() { zan::make_pipe(false, &rd_, &wr_); }

bool Gate::open() { return wr_ && zan::write_all(wr_.get(), "g", 1) == 1; }

bool Gate::wait(int timeout_ms)
{
    wr_.reset();
    char c;
    return rd_ && read_byte(rd_.get(), timeout_ms, &c);
}

bool Gate::put(int32_t v)
{
    return wr_ && zan::write_all(wr_.get(), &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v));
}

bool Gate::get(int32_t* v, int timeout_ms)
{
    wr_.reset();
    if (!rd_ || !wait_fd(rd_.get(), POLLIN, scaled(timeout_ms)))
        return false;
    ssize_t n;
    do  // a write of up to PIPE_BUF bytes arrives whole
        n = ::read(rd_.get(), v, sizeof(*v));
    while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(sizeof(*v));
}

int wait_child(pid_t pid, int timeout_ms)
{
    int st;
    if (reap_by(pid, &st, now_ms() + scaled(timeout_ms)))
        return st;
    if (errno == ETIMEDOUT) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
    }
    return -1;
}

bool read_byte(int fd, int timeout_ms, char* c)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    do
        r = ::poll(&p, 1, scaled(timeout_ms));
    while (r < 0 && errno == EINTR);
    return r > 0 && zan::read_some(fd, c, 1) == 1;
}

}  // namespace zt
