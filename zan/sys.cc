#include "zan/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace zan {

bool make_socketpair(int type, bool nonblock, Fd* a, Fd* b)
{
    int sv[2];
    int flags = SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
    if (::socketpair(AF_UNIX, type | flags, 0, sv) < 0)
        return false;
    a->reset(sv[0]);
    b->reset(sv[1]);
    return true;
}

bool make_pipe(bool nonblock, Fd* rd, Fd* wr)
{
    int p[2];
    if (::pipe2(p, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)) < 0)
        return false;
    rd->reset(p[0]);
    wr->reset(p[1]);
    return true;
}

static int set_fl(int fd, int get, int set, int bit, bool on)
{
    int fl = ::fcntl(fd, get);
    if (fl < 0)
        return -1;
    int nfl = on ? (fl | bit) : (fl & ~bit);
    if (nfl == fl)
        return 0;
    return ::fcntl(fd, set, nfl);
}

int set_nonblock(int fd, bool on) { return set_fl(fd, F_GETFL, F_SETFL, O_NONBLOCK, on); }
int set_cloexec(int fd, bool on) { return set_fl(fd, F_GETFD, F_SETFD, FD_CLOEXEC, on); }

ssize_t read_some(int fd, void* buf, size_t len)
{
    ssize_t n;
    do
        n = ::read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t write_some(int fd, const void* buf, size_t len)
{
    ssize_t n;
    do
        n = ::write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

static int wait_fd(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    int r;
    do
        r = ::poll(&p, 1, -1);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

ssize_t write_all(int fd, const void* buf, size_t len)
{
    const char* p = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < len) {
        ssize_t n = write_some(fd, p + done, len - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && errno == EAGAIN) {
            if (wait_fd(fd, POLLOUT) < 0)
                return -1;
        } else if (n < 0) {
            return -1;
        } else {
            errno = EIO;  // write(2) made no progress on a non-empty buffer
            return -1;
        }
    }
    return static_cast<ssize_t>(done);
}

ssize_t read_full(int fd, void* buf, size_t len)
{
    char* p = static_cast<char*>(buf);
    size_t done = 0;
    while (done < len) {
        ssize_t n = read_some(fd, p + done, len - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n == 0) {
            break;
        } else if (errno == EAGAIN) {
            if (wait_fd(fd, POLLIN) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return static_cast<ssize_t>(done);
}

long long monotonic_us()
{
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

long long monotonic_ms() { return monotonic_us() / 1000; }

// A cache of a process property, not shared state: each process has its
// own copy, and fork() resets the child's.
static pid_t g_pid = 0;
static void forget_pid() { g_pid = 0; }

pid_t current_pid()
{
    if (g_pid == 0) {
        static bool registered = (::pthread_atfork(nullptr, nullptr, forget_pid), true);
        (void)registered;
        g_pid = ::getpid();
    }
    return g_pid;
}

int cpu_count()
{
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
}

// struct sched_attr of <linux/sched/types.h>, size SCHED_ATTR_SIZE_VER0
// (glibc before 2.41 has neither the type nor the wrappers).
struct SchedAttr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;  // SCHED_OTHER/BATCH: the slice in ns (6.12+)
    uint64_t sched_deadline;
    uint64_t sched_period;
};

constexpr uint64_t kResetOnFork = 0x01;  // SCHED_FLAG_RESET_ON_FORK

static int get_sched_attr(pid_t tid, SchedAttr* a)
{
    memset(a, 0, sizeof(*a));
    return static_cast<int>(::syscall(SYS_sched_getattr, tid, a, sizeof(*a), 0));
}

int set_sched_slice(int usec)
{
    if (usec < 0) {
        errno = EINVAL;
        return -1;
    }
    SchedAttr a;
    if (get_sched_attr(0, &a) < 0)
        return -1;
    if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH) {
        errno = EINVAL;  // real-time and idle threads have no such slice
        return -1;
    }
    a.size = sizeof(a);
    a.sched_flags &= kResetOnFork;  // the only flag to keep
    a.sched_runtime = static_cast<uint64_t>(usec) * 1000;
    return static_cast<int>(::syscall(SYS_sched_setattr, 0, &a, 0));
}

int sched_slice_us(pid_t tid)
{
    SchedAttr a;
    if (get_sched_attr(tid, &a) < 0)
        return -1;
    return static_cast<int>(a.sched_runtime / 1000);
}

}  // namespace zan
