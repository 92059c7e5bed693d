// Unit tests for the zan/sys.h wrappers: descriptor flags, EINTR retry,
// short writes and EAGAIN in write_all, EOF in read_full, clocks.
#include "zan/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "t/fork_helpers.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

using zan::Fd;

namespace {

using zt::wait_child;

bool exited_ok(int st) { return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0; }

bool has_fd_flag(int fd, int flag) { return (::fcntl(fd, F_GETFD) & flag) != 0; }
bool has_fl_flag(int fd, int flag) { return (::fcntl(fd, F_GETFL) & flag) != 0; }

// Byte i of a test stream; 251 is prime, so a slipped offset shows.
char pattern(size_t i) { return static_cast<char>(i % 251); }

volatile sig_atomic_t g_alarms = 0;
volatile sig_atomic_t g_gate_fd = -1;

// Counts the signal and, if asked, releases the writer child (write(2) is
// async-signal-safe).
void on_alarm(int)
{
    g_alarms = g_alarms + 1;
    if (g_gate_fd >= 0) {
        char c = 'g';
        ssize_t r = ::write(g_gate_fd, &c, 1);
        (void)r;
    }
}

// Installs on_alarm for SIGALRM without SA_RESTART for the life of the
// object; gate_fd is the descriptor the handler writes to (-1: none).
class AlarmHandler {
public:
    explicit AlarmHandler(int gate_fd)
    {
        g_alarms = 0;
        g_gate_fd = gate_fd;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_alarm;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: a blocked read(2) fails with EINTR
        ::sigaction(SIGALRM, &sa, &old_);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGALRM);
        ::pthread_sigmask(SIG_UNBLOCK, &set, &old_mask_);  // in case a test left it blocked
    }
    ~AlarmHandler()
    {
        ::sigaction(SIGALRM, &old_, nullptr);
        ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
        g_gate_fd = -1;
    }
    AlarmHandler(const AlarmHandler&) = delete;
    AlarmHandler& operator=(const AlarmHandler&) = delete;

private:
    struct sigaction old_;
    sigset_t old_mask_;
};

// True when thread tid of this process sleeps in read(2) on fd: the
// kernel shows the system call a blocked thread is in, with its
// arguments, in /proc/self/task/TID/syscall ("running" otherwise).
bool blocked_in_read(pid_t tid, int fd)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", static_cast<int>(tid));
    FILE* f = ::fopen(path, "r");
    if (!f)
        return false;
    long nr = -1;
    unsigned long arg0 = 0;
    int n = ::fscanf(f, "%ld %lx", &nr, &arg0);
    ::fclose(f);
    return n == 2 && nr == SYS_read && arg0 == static_cast<unsigned long>(fd);
}

// Sends SIGALRM to the calling thread once it sleeps in read(2) on `fd`,
// from a thread of its own, so the signal never lands before the read
// blocks (nor after it returned). The read cannot hang the test: should
// it not have returned 5 s (scaled) after the start, the watcher closes
// *closer, a write end whose closing ends the read with end of file.
// finish() (or the destructor) joins the watcher; call it once the read
// has returned.
class ReadInterrupter {
public:
    ReadInterrupter(int fd, Fd* closer)
        : tid_(static_cast<pid_t>(::syscall(SYS_gettid))), fd_(fd), closer_(closer), thread_([this] { run(); })
    {
    }
    ~ReadInterrupter() { finish(); }
    ReadInterrupter(const ReadInterrupter&) = delete;
    ReadInterrupter& operator=(const ReadInterrupter&) = delete;

    void finish()
    {
        {
            std::lock_guard<std::mutex> g(mu_);
            done_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable())
            thread_.join();
    }
    // True if the signal was sent while the thread slept in read(2).
    bool signalled() const { return signalled_; }
    bool timed_out() const { return timed_out_; }

private:
    void run()
    {
        long long deadline = zt::now_ms() + zt::scaled(5000);
        std::unique_lock<std::mutex> g(mu_);
        // Polls /proc every millisecond: a thread going to sleep has no
        // event to wait on.
        while (!done_ && !blocked_in_read(tid_, fd_) && zt::now_ms() < deadline)
            cv_.wait_for(g, std::chrono::milliseconds(1));
        if (!done_ && zt::now_ms() < deadline)
            signalled_ = ::syscall(SYS_tgkill, ::getpid(), tid_, SIGALRM) == 0;
        while (!done_ && zt::now_ms() < deadline)
            cv_.wait_for(g, std::chrono::milliseconds(deadline - zt::now_ms()));
        if (!done_) {
            timed_out_ = true;
            closer_->reset();
        }
    }

    const pid_t tid_;
    const int fd_;
    Fd* closer_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    bool signalled_ = false;
    bool timed_out_ = false;
    std::thread thread_;
};

}  // namespace

TEST(Sys, MakeSocketpairSetsCloexec)
{
    Fd a, b;
    ASSERT_TRUE(zan::make_socketpair(SOCK_STREAM, false, &a, &b)) << strerror(errno);
    for (const Fd* f : {&a, &b}) {
        EXPECT_TRUE(has_fd_flag(f->get(), FD_CLOEXEC));
        EXPECT_FALSE(has_fl_flag(f->get(), O_NONBLOCK));
    }
    ASSERT_EQ(zan::write_all(a.get(), "ping", 4), 4);
    char buf[4];
    ASSERT_EQ(zan::read_full(b.get(), buf, 4), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
}

TEST(Sys, MakeSocketpairNonblock)
{
    Fd a, b;
    ASSERT_TRUE(zan::make_socketpair(SOCK_DGRAM, true, &a, &b)) << strerror(errno);
    for (const Fd* f : {&a, &b}) {
        EXPECT_TRUE(has_fd_flag(f->get(), FD_CLOEXEC));
        EXPECT_TRUE(has_fl_flag(f->get(), O_NONBLOCK));
    }
    char c;
    EXPECT_EQ(zan::read_some(a.get(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
}

TEST(Sys, MakeSocketpairFailureLeavesFdsAlone)
{
    Fd a, b;
    errno = 0;
    EXPECT_FALSE(zan::make_socketpair(12345, false, &a, &b));
    EXPECT_NE(errno, 0);
    EXPECT_FALSE(a.valid());
    EXPECT_FALSE(b.valid());
}

TEST(Sys, MakePipeSetsCloexec)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(false, &r, &w)) << strerror(errno);
    EXPECT_TRUE(has_fd_flag(r.get(), FD_CLOEXEC));
    EXPECT_TRUE(has_fd_flag(w.get(), FD_CLOEXEC));
    EXPECT_FALSE(has_fl_flag(r.get(), O_NONBLOCK));
    EXPECT_FALSE(has_fl_flag(w.get(), O_NONBLOCK));
    ASSERT_EQ(zan::write_some(w.get(), "x", 1), 1);
    char c = 0;
    ASSERT_EQ(zan::read_some(r.get(), &c, 1), 1);
    EXPECT_EQ(c, 'x');
}

TEST(Sys, MakePipeNonblock)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w)) << strerror(errno);
    EXPECT_TRUE(has_fd_flag(r.get(), FD_CLOEXEC));
    EXPECT_TRUE(has_fd_flag(w.get(), FD_CLOEXEC));
    EXPECT_TRUE(has_fl_flag(r.get(), O_NONBLOCK));
    EXPECT_TRUE(has_fl_flag(w.get(), O_NONBLOCK));
}

TEST(Sys, SetNonblockAndCloexecToggle)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(false, &r, &w));
    EXPECT_EQ(zan::set_nonblock(r.get(), true), 0);
    EXPECT_TRUE(has_fl_flag(r.get(), O_NONBLOCK));
    EXPECT_EQ(zan::set_nonblock(r.get(), true), 0);  // already set: no change
    EXPECT_EQ(zan::set_nonblock(r.get(), false), 0);
    EXPECT_FALSE(has_fl_flag(r.get(), O_NONBLOCK));

    EXPECT_EQ(zan::set_cloexec(w.get(), false), 0);
    EXPECT_FALSE(has_fd_flag(w.get(), FD_CLOEXEC));
    EXPECT_EQ(zan::set_cloexec(w.get(), true), 0);
    EXPECT_TRUE(has_fd_flag(w.get(), FD_CLOEXEC));
}

TEST(Sys, SetFlagsOnBadFdFail)
{
    int bad = ::dup(0);
    ASSERT_GE(bad, 0);
    ::close(bad);
    EXPECT_EQ(zan::set_nonblock(bad, true), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(zan::set_cloexec(bad, true), -1);
    EXPECT_EQ(errno, EBADF);
}

// The parent fills the socket first, so write_all meets EAGAIN at once and
// must poll; the child then drains in small reads, causing short writes.
TEST(Sys, WriteAllNonblockingSlowReader)
{
    Fd a, b;
    ASSERT_TRUE(zan::make_socketpair(SOCK_STREAM, true, &a, &b));
    size_t off = 0;
    char chunk[4096];
    for (;;) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = pattern(off + i);
        ssize_t n = zan::write_some(a.get(), chunk, sizeof(chunk));
        if (n < 0) {
            ASSERT_EQ(errno, EAGAIN);
            break;
        }
        off += static_cast<size_t>(n);
    }
    const size_t payload = 2 << 20;
    const size_t total = off + payload;

    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        a.reset();
        if (zan::set_nonblock(b.get(), false) < 0)
            _exit(3);
        size_t got = 0;
        char buf[1024];
        for (;;) {
            ssize_t n = zan::read_some(b.get(), buf, sizeof(buf));
            if (n < 0)
                _exit(4);
            if (n == 0)
                break;
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] != pattern(got + static_cast<size_t>(i)))
                    _exit(5);
            got += static_cast<size_t>(n);
        }
        _exit(got == total ? 0 : 6);
    }
    b.reset();
    std::vector<char> data(payload);
    for (size_t i = 0; i < payload; i++)
        data[i] = pattern(off + i);
    ::alarm(10);  // a hang guard only: the default action ends the test binary
    ssize_t n = zan::write_all(a.get(), data.data(), data.size());
    int err = errno;
    ::alarm(0);
    EXPECT_EQ(n, static_cast<ssize_t>(payload)) << strerror(err);
    a.reset();  // EOF for the child
    int st = wait_child(pid, 5000);
    EXPECT_TRUE(exited_ok(st)) << "child status " << st;
}

TEST(Sys, WriteAllZeroLength)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w));
    EXPECT_EQ(zan::write_all(w.get(), "", 0), 0);
}

TEST(Sys, WriteAllToClosedPeerFails)
{
    Fd a, b;
    ASSERT_TRUE(zan::make_socketpair(SOCK_STREAM, true, &a, &b));
    b.reset();
    // t/main.cc ignores SIGPIPE, as a zan program must.
    EXPECT_EQ(zan::write_all(a.get(), "x", 1), -1);
    EXPECT_EQ(errno, EPIPE);
}

TEST(Sys, ReadFullStopsAtEof)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(false, &r, &w));
    ASSERT_EQ(zan::write_all(w.get(), "0123456789", 10), 10);
    w.reset();
    char buf[100];
    EXPECT_EQ(zan::read_full(r.get(), buf, sizeof(buf)), 10);
    EXPECT_EQ(std::string(buf, 10), "0123456789");
    EXPECT_EQ(zan::read_full(r.get(), buf, sizeof(buf)), 0);
}

TEST(Sys, ReadFullGathersPiecesOnNonblockingFd)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w));
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        r.reset();
        for (size_t i = 0; i < 64; i++) {
            char piece[100];
            for (size_t j = 0; j < sizeof(piece); j++)
                piece[j] = pattern(i * sizeof(piece) + j);
            if (zan::write_all(w.get(), piece, sizeof(piece)) != static_cast<ssize_t>(sizeof(piece)))
                _exit(1);
        }
        _exit(0);
    }
    w.reset();
    std::vector<char> buf(6400);
    EXPECT_EQ(zan::read_full(r.get(), buf.data(), buf.size()), 6400);
    for (size_t i = 0; i < buf.size(); i++)
        ASSERT_EQ(buf[i], pattern(i)) << "at " << i;
    EXPECT_TRUE(exited_ok(wait_child(pid, 5000)));
}

TEST(Sys, ReadSomeWouldBlock)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(true, &r, &w));
    char c;
    EXPECT_EQ(zan::read_some(r.get(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
}

// Control for the next test: the handler really interrupts a raw read(2)
// that is blocked (the signal is sent once /proc shows it blocked).
TEST(Sys, AlarmInterruptsRawRead)
{
    Fd r, w;
    ASSERT_TRUE(zan::make_pipe(false, &r, &w));
    ssize_t n;
    int err;
    bool signalled, timed_out;
    {
        AlarmHandler handler(-1);
        ReadInterrupter interrupter(r.get(), &w);
        char c;
        n = ::read(r.get(), &c, 1);
        err = errno;
        interrupter.finish();
        signalled = interrupter.signalled();
        timed_out = interrupter.timed_out();
    }
    EXPECT_TRUE(signalled) << "the read never showed as blocked";
    EXPECT_FALSE(timed_out) << "the read was ended by closing the pipe";
    EXPECT_EQ(n, -1);
    EXPECT_EQ(err, EINTR);
    EXPECT_EQ(g_alarms, 1);
}

// SIGALRM interrupts a read_some() blocked in read(2); its handler lets a
// forked writer go, and read_some() must retry and return the data. The
// data exists only once the handler has run, and the handler runs only
// while read(2) sleeps: the read was interrupted, and read_some() retried.
TEST(Sys, ReadSomeRetriesEintr)
{
    Fd data_r, data_w, gate_r, gate_w;
    ASSERT_TRUE(zan::make_pipe(false, &data_r, &data_w));
    ASSERT_TRUE(zan::make_pipe(false, &gate_r, &gate_w));
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        data_r.reset();
        gate_w.reset();
        char c;
        if (zan::read_full(gate_r.get(), &c, 1) != 1)
            _exit(1);
        _exit(zan::write_all(data_w.get(), "hello", 5) == 5 ? 0 : 2);
    }
    data_w.reset();
    gate_r.reset();
    ssize_t n;
    int err;
    char buf[16];
    bool signalled, timed_out;
    {
        AlarmHandler handler(gate_w.get());
        // On a time-out, closing the gate makes the writer exit, which
        // ends the read with end of file.
        ReadInterrupter interrupter(data_r.get(), &gate_w);
        n = zan::read_some(data_r.get(), buf, sizeof(buf));
        err = errno;
        interrupter.finish();
        signalled = interrupter.signalled();
        timed_out = interrupter.timed_out();
    }
    EXPECT_TRUE(signalled) << "the read never showed as blocked";
    EXPECT_FALSE(timed_out) << "the read was ended by closing the gate";
    EXPECT_EQ(n, 5) << strerror(err);
    if (n == 5) {
        EXPECT_EQ(std::string(buf, 5), "hello");
    }
    EXPECT_EQ(g_alarms, 1);
    EXPECT_TRUE(exited_ok(wait_child(pid, 2000)));
}

TEST(Sys, MonotonicClocksAgree)
{
    long long ms0 = zan::monotonic_ms();
    long long us = zan::monotonic_us();
    long long ms1 = zan::monotonic_ms();
    EXPECT_LE(ms0, us / 1000);
    EXPECT_LE(us / 1000, ms1);
    EXPECT_GT(ms0, 0);
    long long prev = zan::monotonic_us();
    for (int i = 0; i < 1000; i++) {
        long long now = zan::monotonic_us();
        ASSERT_GE(now, prev);
        prev = now;
    }
}

// cpu_count() is the number of online CPUs: those the kernel lists in
// /sys/devices/system/cpu/online ("0-3,5"), counted here independently.
// The CPUs this process may run on are a subset of them.
TEST(Sys, CpuCountIsTheNumberOfOnlineCpus)
{
    std::string list = zt::read_file("/sys/devices/system/cpu/online");
    if (list.empty())
        GTEST_SKIP() << "/sys/devices/system/cpu/online cannot be read";
    int online = 0;
    std::istringstream in(list);
    for (std::string range; std::getline(in, range, ',');) {
        int lo = 0, hi = 0;
        int got = sscanf(range.c_str(), "%d-%d", &lo, &hi);
        ASSERT_GE(got, 1) << "unexpected list: " << list;
        online += got == 2 ? hi - lo + 1 : 1;
    }
    EXPECT_EQ(zan::cpu_count(), online) << "online: " << list;
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0) << strerror(errno);
    EXPECT_GE(zan::cpu_count(), CPU_COUNT(&set));
    EXPECT_GE(zan::cpu_count(), 1);
}

// A thread's slice is read back as set, 0 restores the default, and the
// nice value is kept. Run in a thread of its own: nice and slice are
// per-thread and die with it.
TEST(Sys, SchedSliceReadBackKeepsNice)
{
    std::thread t([] {
        int dflt = zan::sched_slice_us(0);
        ASSERT_GE(dflt, 0) << strerror(errno);
        if (dflt == 0)
            GTEST_SKIP() << "the kernel reports no slice (before Linux 6.12)";
        pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
        ASSERT_EQ(::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 3), 0) << strerror(errno);
        int want = dflt == 300 ? 400 : 300;
        ASSERT_EQ(zan::set_sched_slice(want), 0) << strerror(errno);
        EXPECT_EQ(zan::sched_slice_us(0), want);
        EXPECT_EQ(zan::sched_slice_us(tid), want);
        errno = 0;
        EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(tid)), 3) << strerror(errno);
        EXPECT_EQ(::sched_getscheduler(0), SCHED_OTHER);
        ASSERT_EQ(zan::set_sched_slice(0), 0) << strerror(errno);
        EXPECT_NE(zan::sched_slice_us(0), want);
        EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(tid)), 3);
    });
    t.join();
}

TEST(Sys, SchedSliceRefusals)
{
    errno = 0;
    EXPECT_EQ(zan::set_sched_slice(-1), -1);
    EXPECT_EQ(errno, EINVAL);
    // A pid that names nobody: past pid_max, which is at most 2^22.
    errno = 0;
    EXPECT_EQ(zan::sched_slice_us((1 << 22) + 1), -1);
    EXPECT_EQ(errno, ESRCH);
}
