#include "t/proc_helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/fd.h"

namespace zt {

Proc::~Proc()
{
    if (pid_ > 0 && !reaped_) {
        std::vector<pid_t> desc = descendants_of(pid_);
        ::kill(pid_, SIGTERM);
        if (wait_exit(5000) < 0) {
            ::kill(pid_, SIGKILL);
            wait_exit(5000);
        }
        for (pid_t d : desc)
            if (pid_alive(d))
                ::kill(d, SIGKILL);
    }
    if (reader_.joinable())
        reader_.join();
    if (out_fd_ >= 0)
        ::close(out_fd_);
}

bool Proc::spawn(const std::vector<std::string>& argv)
{
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0)
        return false;
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            _exit(127);
        ::dup2(p[1], 1);
        ::dup2(p[1], 2);
        std::vector<char*> av;
        for (const auto& a : argv)
            av.push_back(const_cast<char*>(a.c_str()));
        av.push_back(nullptr);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::execv(av[0], av.data());
        dprintf(2, "exec %s: %s\n", av[0], strerror(errno));
        _exit(127);
    }
    ::close(p[1]);
    pid_ = pid;
    out_fd_ = p[0];
    reader_ = std::thread([this] { drain(); });
    return true;
}

void Proc::drain()
{
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(out_fd_, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        std::lock_guard<std::mutex> g(mu_);
        if (n <= 0) {
            eof_ = true;
            cv_.notify_all();
            return;
        }
        out_.append(buf, static_cast<size_t>(n));
        cv_.notify_all();
    }
}

bool Proc::wait_for(const std::string& needle, int timeout_ms, std::string* line)
{
    std::unique_lock<std::mutex> g(mu_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(scaled(timeout_ms));
    for (;;) {
        size_t pos = out_.find(needle);
        if (pos != std::string::npos) {
            size_t eol = out_.find('\n', pos);
            if (eol != std::string::npos || eof_) {
                if (line) {
                    size_t bol = out_.rfind('\n', pos);
                    bol = bol == std::string::npos ? 0 : bol + 1;
                    *line = out_.substr(bol, (eol == std::string::npos ? out_.size() : eol) - bol);
                }
                return true;
            }
        }
        if (eof_)
            return false;
        if (cv_.wait_until(g, deadline) == std::cv_status::timeout)
            return false;
    }
}

int Proc::count(const std::string& needle)
{
    std::lock_guard<std::mutex> g(mu_);
    int n = 0;
    for (size_t pos = out_.find(needle); pos != std::string::npos;
         pos = out_.find(needle, pos + 1))
        n++;
    return n;
}

std::string Proc::output()
{
    std::lock_guard<std::mutex> g(mu_);
    return out_;
}

bool Proc::output_closed()
{
    std::lock_guard<std::mutex> g(mu_);
    return eof_;
}

int Proc::wait_exit(int timeout_ms)
{
    if (pid_ <= 0)
        return -1;
    if (reaped_)
        return status_;
    int st;
    if (!reap_by(pid_, &st, now_ms() + scaled(timeout_ms)))
        return -1;
    reaped_ = true;
    status_ = st;
    // Its last words may still be in the pipe: wait for the reader to see
    // end of file (bounded, as a descendant that is still alive may hold
    // the write end open).
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait_for(g, std::chrono::milliseconds(scaled(2000)), [this] { return eof_; });
    return st;
}

void Proc::signal(int sig)
{
    if (pid_ > 0 && !reaped_)
        ::kill(pid_, sig);
}

static bool read_stat(pid_t pid, pid_t* ppid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
    std::ifstream f(path);
    std::string s;
    if (!std::getline(f, s))
        return false;
    size_t rp = s.rfind(')');
    if (rp == std::string::npos)
        return false;
    std::istringstream rest(s.substr(rp + 2));
    char state;
    int pp;
    rest >> state >> pp;
    if (state == 'Z' || state == 'X')
        return false;
    *ppid = pp;
    return true;
}

std::vector<pid_t> children_of(pid_t parent)
{
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d)
        return out;
    while (struct dirent* e = ::readdir(d)) {
        pid_t pid = static_cast<pid_t>(atoi(e->d_name));
        pid_t pp;
        if (pid > 0 && read_stat(pid, &pp) && pp == parent)
            out.push_back(pid);
    }
    ::closedir(d);
    return out;
}

std::vector<pid_t> descendants_of(pid_t root)
{
    std::vector<pid_t> out;
    std::vector<pid_t> pending{root};
    while (!pending.empty()) {
        pid_t p = pending.back();
        pending.pop_back();
        for (pid_t c : children_of(p)) {
            out.push_back(c);
            pending.push_back(c);
        }
    }
    return out;
}

std::string comm_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", static_cast<int>(pid));
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

pid_t find_by_name(pid_t root, const std::string& name)
{
    for (pid_t p : descendants_of(root))
        if (comm_of(p) == name)
            return p;
    return 0;
}

pid_t wait_for_name(pid_t root, const std::string& name, pid_t not_pid, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        // Any descendant of that name but not_pid: during a reload the
        // old process and its successor share the name.
        for (pid_t p : descendants_of(root))
            if (p != not_pid && comm_of(p) == name)
                return p;
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        wait_fd(-1, 0, static_cast<int>(std::min(left, 5LL)));  // polling /proc: no event for "a process appeared"
    }
}

bool pid_alive(pid_t pid)
{
    pid_t pp;
    return read_stat(pid, &pp);
}

std::set<int> sysv_queues()
{
    std::set<int> ids;
    std::ifstream f("/proc/sysvipc/msg");
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
        std::istringstream in(line);
        int key, id;
        if (in >> key >> id)
            ids.insert(id);
    }
    return ids;
}

std::set<int> sysv_queues_used_by(const std::set<pid_t>& pids)
{
    std::set<int> ids;
    std::ifstream f("/proc/sysvipc/msg");
    std::string line;
    std::getline(f, line);  // header: key msqid perms cbytes qnum lspid lrpid ...
    while (std::getline(f, line)) {
        std::istringstream in(line);
        long long key, perms, cbytes, qnum;
        int id;
        pid_t lspid, lrpid;
        if ((in >> key >> id >> perms >> cbytes >> qnum >> lspid >> lrpid) && (pids.count(lspid) || pids.count(lrpid)))
            ids.insert(id);
    }
    return ids;
}

bool wait_gone(pid_t pid, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    // A pidfd is readable once the process has exited (zombie or not).
    zan::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    int open_err = pidfd ? 0 : errno;
    for (;;) {
        if (!pid_alive(pid) || open_err == ESRCH)
            return true;
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        if (pidfd)
            wait_fd(pidfd.get(), POLLIN, static_cast<int>(left));
        else  // no pidfd (Linux before 5.3): poll /proc every 2 ms
            wait_fd(-1, 0, static_cast<int>(std::min(left, 2LL)));
    }
}

// The state letter of /proc/pid/stat, 0 when it cannot be read.
static char state_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
    std::ifstream f(path);
    std::string s;
    if (!std::getline(f, s))
        return 0;
    size_t rp = s.rfind(')');
    return rp == std::string::npos || rp + 2 >= s.size() ? 0 : s[rp + 2];
}

bool wait_stopped(pid_t pid, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        char st = state_of(pid);
        if (st == 'T' || st == 't')
            return true;
        long long left = deadline - now_ms();
        if (st == 0 || st == 'Z' || left <= 0)
            return false;
        wait_fd(-1, 0, static_cast<int>(std::min(left, 1LL)));  // polling /proc: no event for it
    }
}

bool wait_in_syscall(pid_t pid, std::initializer_list<long> nrs, int timeout_ms, unsigned long* arg0)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/syscall", static_cast<int>(pid));
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        long nr = -1;
        unsigned long a0 = 0;
        if (FILE* f = ::fopen(path, "r")) {
            if (::fscanf(f, "%ld %lx", &nr, &a0) != 2)
                nr = -1;  // "running", or gone
            ::fclose(f);
        }
        for (long want : nrs) {
            if (nr == want) {
                if (arg0)
                    *arg0 = a0;
                return true;
            }
        }
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        wait_fd(-1, 0, static_cast<int>(std::min(left, 1LL)));  // polling /proc: no event for it
    }
}

bool reap_by(pid_t pid, int* status, long long deadline)
{
    zan::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    for (;;) {
        pid_t r = ::waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
        long long left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return false;
        }
        // Readable when the child exits; without pidfds (Linux before
        // 5.3) waitpid() is polled every millisecond.
        wait_fd(pidfd ? pidfd.get() : -1, POLLIN, static_cast<int>(pidfd ? left : std::min(left, 1LL)));
    }
}

long long cpu_ticks(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
    std::ifstream f(path);
    std::string s;
    if (!std::getline(f, s))
        return -1;
    size_t rp = s.rfind(')');
    if (rp == std::string::npos)
        return -1;
    // Fields after ")": 3 state, 4 ppid, ... 14 utime, 15 stime.
    std::istringstream rest(s.substr(rp + 2));
    std::string field;
    long long utime = -1, stime = -1;
    for (int i = 3; i <= 15 && (rest >> field); i++) {
        if (i == 14)
            utime = atoll(field.c_str());
        if (i == 15)
            stime = atoll(field.c_str());
    }
    return utime < 0 || stime < 0 ? -1 : utime + stime;
}

std::vector<std::pair<std::string, pid_t>> named_descendants(pid_t root)
{
    std::vector<std::pair<std::string, pid_t>> out;
    for (pid_t p : descendants_of(root))
        out.emplace_back(comm_of(p), p);
    return out;
}

long cpu_ms(pid_t pid)
{
    std::string st = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t rp = st.rfind(')');
    if (rp == std::string::npos)
        return -1;
    long ut = 0, stt = 0;  // fields 14 and 15
    if (sscanf(st.c_str() + rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &stt) != 2)
        return -1;
    return (ut + stt) * 1000 / sysconf(_SC_CLK_TCK);
}

int open_fds(pid_t pid)
{
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d)
        return -1;
    int n = 0;
    while (struct dirent* e = ::readdir(d))
        n += e->d_name[0] != '.';
    ::closedir(d);
    return n;
}

bool raise_fd_limit(unsigned long want)
{
    struct rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    if (rl.rlim_cur >= want)
        return true;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        return false;
    rl.rlim_cur = want;
    return ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

QueueGuard::QueueGuard() : before_(sysv_queues()) {}

void QueueGuard::capture(pid_t master)
{
    std::vector<pid_t> tree = descendants_of(master);
    tree.push_back(master);
    for (int id : sysv_queues_used_by(std::set<pid_t>(tree.begin(), tree.end())))
        if (!before_.count(id))
            ours_.insert(id);
}

std::set<int> QueueGuard::leftover() const
{
    std::set<int> now = sysv_queues(), out;
    for (int id : ours_)
        if (now.count(id))
            out.insert(id);
    return out;
}

QueueGuard::~QueueGuard()
{
    for (int id : leftover())
        ::msgctl(id, IPC_RMID, nullptr);
}

PidGuard::~PidGuard()
{
    for (pid_t p : pids_) {
        if (p > 0 && pid_alive(p) && comm_of(p).rfind("zan-", 0) == 0) {
            ::kill(p, SIGKILL);  // also ends a stopped process
        }
    }
}

std::string shell_quote(const std::string& s)
{
    std::string q = "'";
    for (char c : s) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

int run_command(const std::string& cmd, std::string* out, int timeout_s)
{
    int limit_s = (scaled(timeout_s * 1000) + 999) / 1000;
    std::string full = "timeout -k 2 " + std::to_string(limit_s) + " sh -c " + shell_quote(cmd);
    FILE* f = ::popen(full.c_str(), "r");
    if (!f)
        return -1;
    out->clear();
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        out->append(buf, n);
    int st = ::pclose(f);
    if (st < 0 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

}  // namespace zt
