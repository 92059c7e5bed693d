#include "t/helpers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "zan/fd.h"
#include "zan/log.h"
#include "zan/sys.h"

namespace zt {

long long now_ms()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

std::string build_dir()
{
    const char* e = getenv("ZAN_BUILD_DIR");
    return e ? e : ZAN_BUILD_DIR;
}

std::string tool(const std::string& name) { return build_dir() + "/tools/" + name; }

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
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
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
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            status_ = st;
            // Its last words may still be in the pipe: wait for the reader
            // to see end of file (bounded, as a descendant that is still
            // alive may hold the write end open).
            std::unique_lock<std::mutex> g(mu_);
            cv_.wait_for(g, std::chrono::milliseconds(2000), [this] { return eof_; });
            return st;
        }
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return -1;
        // No readiness signal exists for a child's exit other than SIGCHLD,
        // which the test process does not own; poll at a short interval.
        ::usleep(2000);
    }
}

void Proc::signal(int sig)
{
    if (pid_ > 0 && !reaped_)
        ::kill(pid_, sig);
}

int start_server(Proc* p, const std::vector<std::string>& argv, int timeout_ms)
{
    if (!p->spawn(argv))
        return 0;
    std::string line;
    if (!p->wait_for("listening on ", timeout_ms, &line))
        return 0;
    size_t colon = line.rfind(':');
    if (colon == std::string::npos)
        return 0;
    return atoi(line.c_str() + colon + 1);
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
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        pid_t p = find_by_name(root, name);
        if (p > 0 && p != not_pid)
            return p;
        if (now_ms() >= deadline)
            return 0;
        ::usleep(5000);  // polling /proc: there is no event for "a process appeared"
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

bool wait_fd(int fd, short ev, int timeout_ms)
{
    struct pollfd p = {fd, ev, 0};
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left < 0)
            left = 0;
        int r = ::poll(&p, 1, left);
        if (r > 0)
            return true;
        if (r == 0)
            return false;
        if (errno != EINTR)
            return false;
    }
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

int connect_local(int port, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = loopback_addr(port);
        if (::connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) == 0)
            return fd;
        ::close(fd);
        if (now_ms() >= deadline)
            return -1;
        ::usleep(10000);
    }
}

bool send_str(int fd, const std::string& s)
{
    size_t done = 0;
    while (done < s.size()) {
        ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

bool read_line(int fd, std::string* line, int timeout_ms)
{
    line->clear();
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd, POLLIN, left))
            return false;
        char c;
        ssize_t n = ::recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        if (c == '\n')
            return true;
        line->push_back(c);
    }
}

std::string read_all(int fd, int timeout_ms)
{
    std::string out;
    long long deadline = now_ms() + timeout_ms;
    char buf[65536];
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd, POLLIN, left))
            return out;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return out;
        out.append(buf, static_cast<size_t>(n));
    }
}

std::string request(int fd, const std::string& line, int timeout_ms)
{
    if (!send_str(fd, line + "\n"))
        return "<send failed>";
    std::string reply;
    if (!read_line(fd, &reply, timeout_ms))
        return "<no reply>";
    return reply;
}

bool wait_closed(int fd, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd, POLLIN, left))
            return false;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0 && errno != EINTR)
            return true;
    }
}


// ---- Helpers for t/server_*_test.cc ----

void Sock::reset(int fd)
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = fd;
}

// Starts tool `name` on 127.0.0.1, port 0, plus `args`; returns the port.
static int start_on_loopback(Proc* p, const std::string& name, const std::vector<std::string>& args,
                             int timeout_ms)
{
    std::vector<std::string> argv{tool(name), "--host", "127.0.0.1", "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return start_server(p, argv, timeout_ms);
}

int start_echod(Proc* p, const std::vector<std::string>& args, int timeout_ms)
{
    return start_on_loopback(p, "zan-echod", args, timeout_ms);
}

int start_httpd(Proc* p, const std::vector<std::string>& args, int timeout_ms)
{
    return start_on_loopback(p, "zan-httpd", args, timeout_ms);
}

static ::testing::AssertionResult started(const char* what, Proc& p, int port)
{
    if (port > 0)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << " did not come up:\n" << p.output();
}

::testing::AssertionResult ServerTest::start_echod(const std::vector<std::string>& args)
{
    port_ = zt::start_echod(&server_, args);
    return started("zan-echod", server_, port_);
}

::testing::AssertionResult ServerTest::start_httpd(const std::vector<std::string>& args)
{
    port_ = zt::start_httpd(&server_, args);
    return started("zan-httpd", server_, port_);
}

bool ServerTest::freeze(pid_t pid)
{
    guard_.add(pid);
    return ::kill(pid, SIGSTOP) == 0;
}

struct sockaddr_in loopback_addr(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

int connect_from(int port, const std::string& src_ip, int timeout_ms)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in src;
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    if (::inet_pton(AF_INET, src_ip.c_str(), &src.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<struct sockaddr*>(&src), sizeof(src)) < 0) {
        ::close(fd);
        return -1;
    }
    struct sockaddr_in a = loopback_addr(port);
    int r = ::connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a));
    if (r < 0 && errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    if (r < 0) {
        if (!wait_fd(fd, POLLOUT, timeout_ms)) {
            ::close(fd);
            return -1;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            ::close(fd);
            return -1;
        }
    }
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int whoami(int fd, pid_t* pid, int timeout_ms)
{
    std::string r = request(fd, "whoami", timeout_ms);
    int id = -1, p = -1;
    if (sscanf(r.c_str(), "worker %d pid %d", &id, &p) != 2)
        return -1;
    if (pid)
        *pid = static_cast<pid_t>(p);
    return id;
}

long long json_int(const std::string& json, const std::string& key, long long dflt)
{
    std::string k = "\"" + key + "\":";
    size_t pos = json.find(k);
    if (pos == std::string::npos)
        return dflt;
    const char* p = json.c_str() + pos + k.size();
    while (*p == ' ')
        p++;
    char* end = nullptr;
    long long v = strtoll(p, &end, 10);
    return end == p ? dflt : v;
}

long long stat_of(int fd, const std::string& key, int timeout_ms)
{
    return json_int(request(fd, "stats", timeout_ms), key, -1);
}

bool wait_gone(pid_t pid, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (!pid_alive(pid))
            return true;
        if (now_ms() >= deadline)
            return false;
        ::usleep(2000);  // polling /proc: no event for another process's exit
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

bool port_bindable(int port)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = loopback_addr(port);
    bool ok = ::bind(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) == 0 &&
              ::listen(fd, 16) == 0;
    ::close(fd);
    return ok;
}

std::string make_temp_dir()
{
    char tmpl[] = "/tmp/zan-test-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    return d ? d : "";
}

void remove_tree(const std::string& dir)
{
    if (dir.empty() || dir.rfind("/tmp/zan-test-", 0) != 0)
        return;  // only what make_temp_dir() made
    // Depth first, and symlinks are removed, never followed.
    ::nftw(dir.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); },
           16, FTW_DEPTH | FTW_PHYS);
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

bool set_mtime(const std::string& path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    return ::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0;
}

std::string http_date(time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

bool write_file(const std::string& path, const std::string& data)
{
    FILE* f = ::fopen(path.c_str(), "wb");
    if (!f)
        return false;
    bool ok = ::fwrite(data.data(), 1, data.size(), f) == data.size();
    return ::fclose(f) == 0 && ok;
}

std::string read_file(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

unsigned long server_inode_of(int client_fd, int port)
{
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    if (::getsockname(client_fd, reinterpret_cast<struct sockaddr*>(&me), &len) < 0)
        return 0;
    unsigned client_port = ntohs(me.sin_port);
    std::ifstream f("/proc/net/tcp");
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        std::istringstream in(line);
        std::string sl, local, rem, st, q, tr, retr, uid, timeout;
        unsigned long inode = 0;
        if (!(in >> sl >> local >> rem >> st >> q >> tr >> retr >> uid >> timeout >> inode))
            continue;
        size_t lc = local.find(':'), rc = rem.find(':');
        if (lc == std::string::npos || rc == std::string::npos)
            continue;
        unsigned lport = static_cast<unsigned>(strtoul(local.c_str() + lc + 1, nullptr, 16));
        unsigned rport = static_cast<unsigned>(strtoul(rem.c_str() + rc + 1, nullptr, 16));
        if (lport == static_cast<unsigned>(port) && rport == client_port && inode != 0)
            return inode;
    }
    return 0;
}

bool has_socket_inode(pid_t pid, unsigned long inode)
{
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    std::string want = "socket:[" + std::to_string(inode) + "]";
    DIR* d = ::opendir(dir.c_str());
    if (!d)
        return false;
    bool found = false;
    while (struct dirent* e = ::readdir(d)) {
        char buf[128];
        ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), buf, sizeof(buf) - 1);
        if (n > 0) {
            buf[n] = '\0';
            if (want == buf) {
                found = true;
                break;
            }
        }
    }
    ::closedir(d);
    return found;
}

QueueGuard::QueueGuard() : before_(sysv_queues()) {}

void QueueGuard::capture(pid_t master)
{
    std::vector<pid_t> tree = descendants_of(master);
    tree.push_back(master);
    std::set<pid_t> pids(tree.begin(), tree.end());
    std::ifstream f("/proc/sysvipc/msg");
    std::string line;
    std::getline(f, line);  // header: key msqid perms cbytes qnum lspid lrpid ...
    while (std::getline(f, line)) {
        std::istringstream in(line);
        long long key, perms, cbytes, qnum;
        int id;
        pid_t lspid, lrpid;
        if (!(in >> key >> id >> perms >> cbytes >> qnum >> lspid >> lrpid))
            continue;
        if (!before_.count(id) && (pids.count(lspid) || pids.count(lrpid)))
            ours_.insert(id);
    }
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

JoinGuard::~JoinGuard()
{
    stop_ = true;
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
}


bool LineReader::next(std::string* line, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        size_t eol = buf_.find('\n');
        if (eol != std::string::npos) {
            line->assign(buf_, 0, eol);
            buf_.erase(0, eol + 1);
            return true;
        }
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0 || !wait_fd(fd_, POLLIN, left))
            return false;
        char tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf_.append(tmp, static_cast<size_t>(n));
    }
}

// ---- HTTP clients ----

static bool iequals(const std::string& a, const std::string& b)
{
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

static std::string trim(const std::string& s)
{
    size_t a = 0, b = s.size();
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    return s.substr(a, b - a);
}

const std::string* HttpReply::header(const std::string& name) const
{
    for (const auto& h : headers)
        if (iequals(h.first, name))
            return &h.second;
    return nullptr;
}

int HttpReply::count(const std::string& name) const
{
    int n = 0;
    for (const auto& h : headers)
        n += iequals(h.first, name);
    return n;
}

bool HttpReply::closes() const
{
    for (const auto& h : headers) {
        if (!iequals(h.first, "Connection"))
            continue;
        std::istringstream in(h.second);
        std::string tok;
        while (std::getline(in, tok, ','))
            if (iequals(trim(tok), "close"))
                return true;
    }
    return false;
}

// De-chunks buf[pos...]; returns the end offset, 0 if incomplete, -1 if bad.
static long dechunk(const std::string& buf, size_t pos, std::string* body)
{
    for (;;) {
        size_t eol = buf.find("\r\n", pos);
        if (eol == std::string::npos)
            return 0;
        std::string line = buf.substr(pos, eol - pos);
        size_t semi = line.find(';');
        std::string hex = trim(semi == std::string::npos ? line : line.substr(0, semi));
        if (hex.empty() || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
            return -1;
        unsigned long long n = strtoull(hex.c_str(), nullptr, 16);
        pos = eol + 2;
        if (n == 0) {
            for (;;) {  // trailer section up to an empty line
                size_t e = buf.find("\r\n", pos);
                if (e == std::string::npos)
                    return 0;
                bool empty = e == pos;
                pos = e + 2;
                if (empty)
                    return static_cast<long>(pos);
            }
        }
        if (buf.size() < pos + n + 2)
            return 0;
        body->append(buf, pos, n);
        if (buf.compare(pos + n, 2, "\r\n") != 0)
            return -1;
        pos += n + 2;
    }
}

long parse_http_reply(const std::string& buf, size_t pos, bool head, bool eof, HttpReply* out)
{
    if (buf.size() - pos >= 5 && buf.compare(pos, 5, "HTTP/") != 0)
        return -1;
    size_t end = buf.find("\r\n\r\n", pos);
    if (end == std::string::npos)
        return 0;
    HttpReply r;
    std::istringstream in(buf.substr(pos, end + 2 - pos));
    std::string line;
    if (!std::getline(in, line) || line.empty() || line.back() != '\r')
        return -1;
    line.pop_back();
    size_t sp1 = line.find(' ');
    if (sp1 == std::string::npos || line.size() < sp1 + 4)
        return -1;
    r.version = line.substr(0, sp1);
    r.status = atoi(line.c_str() + sp1 + 1);
    r.reason = line.size() > sp1 + 5 ? line.substr(sp1 + 5) : std::string();
    if (r.status < 100 || r.status > 999)
        return -1;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty())
            continue;
        size_t colon = line.find(':');
        if (colon == std::string::npos)
            return -1;
        r.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
    }
    size_t body_at = end + 4;
    long total;
    const std::string* te = r.header("Transfer-Encoding");
    const std::string* cl = r.header("Content-Length");
    if (head || r.status < 200 || r.status == 204 || r.status == 304) {
        total = static_cast<long>(body_at);
    } else if (te) {
        total = dechunk(buf, body_at, &r.body);
        if (total <= 0)
            return total;
    } else if (cl) {
        size_t n = strtoull(cl->c_str(), nullptr, 10);
        if (buf.size() < body_at + n)
            return 0;
        r.body = buf.substr(body_at, n);
        total = static_cast<long>(body_at + n);
    } else {
        if (!eof)
            return 0;  // close-delimited
        r.body = buf.substr(body_at);
        total = static_cast<long>(buf.size());
    }
    r.wire_bytes = static_cast<size_t>(total) - pos;
    *out = std::move(r);
    return total - static_cast<long>(pos);
}

bool HttpReader::fill(long long deadline)
{
    if (eof_)
        return false;
    int left = static_cast<int>(deadline - now_ms());
    if (left <= 0 || !wait_fd(fd_, POLLIN, left))
        return false;
    char tmp[65536];
    for (;;) {
        ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            eof_ = true;
            reset_ = errno == ECONNRESET;
            return false;
        }
        if (n == 0) {
            eof_ = true;
            return false;
        }
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }
}

bool HttpReader::next(HttpReply* r, bool head, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (!buf_.empty()) {
            long n = parse_http_reply(buf_, 0, head, eof_, r);
            if (n < 0) {
                bad_ = true;
                return false;
            }
            if (n > 0) {
                buf_.erase(0, static_cast<size_t>(n));
                return true;
            }
        }
        if (eof_ || !fill(deadline)) {
            if (eof_ && !buf_.empty()) {  // a close-delimited body ends here
                long n = parse_http_reply(buf_, 0, head, true, r);
                if (n > 0) {
                    buf_.erase(0, static_cast<size_t>(n));
                    return true;
                }
            }
            return false;
        }
    }
}

bool HttpReader::closed(int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (!eof_)
        if (!fill(deadline) && !eof_)
            return false;
    return true;
}

bool HttpReader::quiet(int ms)
{
    size_t had = buf_.size();
    long long deadline = now_ms() + ms;
    while (!eof_ && now_ms() < deadline)
        fill(deadline);
    return !eof_ && buf_.size() == had;
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
    std::string full = "timeout -k 2 " + std::to_string(timeout_s) + " sh -c " + shell_quote(cmd);
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


bool SyscallTrap::fail(const std::string& what)
{
    err_ = what + ": " + strerror(errno);
    release();
    return false;
}

// Waits for the next trace stop (or the death) of pid_; polls because
// waitpid() has no timeout.
bool SyscallTrap::wait_stop(int* status, long long deadline)
{
    for (;;) {
        pid_t r = ::waitpid(pid_, status, __WALL | WNOHANG);
        if (r == pid_) {
            if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
                attached_ = stopped_ = false;
                errno = ESRCH;
                return false;
            }
            stopped_ = true;
            return true;
        }
        if (r < 0 && errno != EINTR)
            return false;
        if (now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return false;
        }
        ::usleep(100);
    }
}

bool SyscallTrap::stop_at(long nr, int timeout_ms, const std::function<void()>& poke)
{
    long long deadline = now_ms() + timeout_ms;
    if (::ptrace(PTRACE_SEIZE, pid_, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) < 0)
        return fail("PTRACE_SEIZE");
    attached_ = true;
    int st = 0;
    if (::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr) < 0)
        return fail("PTRACE_INTERRUPT");
    if (!wait_stop(&st, deadline))
        return fail("waiting for the first stop");
    long long next_poke = 0;
    int inject = 0;
    for (;;) {
        if (::ptrace(PTRACE_SYSCALL, pid_, nullptr, reinterpret_cast<void*>(static_cast<long>(inject))) < 0)
            return fail("PTRACE_SYSCALL");
        stopped_ = false;
        inject = 0;
        for (;;) {
            pid_t r = ::waitpid(pid_, &st, __WALL | WNOHANG);
            if (r == pid_)
                break;
            if (r < 0 && errno != EINTR)
                return fail("waitpid");
            long long now = now_ms();
            if (now >= deadline) {
                // Stop it again so that it can be detached.
                ::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr);
                int st2;
                wait_stop(&st2, now + 2000);
                errno = ETIMEDOUT;
                return fail("waiting for the system call");
            }
            if (now >= next_poke) {
                if (poke)
                    poke();
                next_poke = now + 5;
            }
            ::usleep(50);
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            attached_ = stopped_ = false;
            errno = ESRCH;
            return fail("the process died");
        }
        stopped_ = true;
        int sig = WSTOPSIG(st);
        if (sig == (SIGTRAP | 0x80)) {
            struct __ptrace_syscall_info info;
            memset(&info, 0, sizeof(info));
            if (::ptrace(PTRACE_GET_SYSCALL_INFO, pid_, reinterpret_cast<void*>(sizeof(info)), &info) > 0 &&
                info.op == PTRACE_SYSCALL_INFO_ENTRY && static_cast<long>(info.entry.nr) == nr)
                return true;
        } else if ((st >> 16) == 0) {
            inject = sig;  // a signal-delivery stop: deliver it
        }
    }
}

void SyscallTrap::release()
{
    if (!attached_)
        return;
    if (!stopped_) {
        ::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr);
        int st;
        wait_stop(&st, now_ms() + 2000);
    }
    if (attached_)
        ::ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
    attached_ = stopped_ = false;
}

bool SyscallTrap::kill_and_reap(int timeout_ms)
{
    if (::kill(pid_, SIGKILL) < 0)
        return false;
    if (!attached_)
        return true;
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = ::waitpid(pid_, &st, __WALL | WNOHANG);
        if (r == pid_ && (WIFEXITED(st) || WIFSIGNALED(st))) {
            attached_ = stopped_ = false;
            return true;
        }
        if (r < 0 && errno != EINTR) {
            attached_ = stopped_ = false;
            return errno == ECHILD;
        }
        if (now_ms() >= deadline)
            return false;
        ::usleep(200);
    }
}


std::string sanitizer_report(const std::string& out)
{
    for (const char* m : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                          "ERROR: UndefinedBehaviorSanitizer", "WARNING: AddressSanitizer"}) {
        size_t pos = out.find(m);
        if (pos == std::string::npos)
            continue;
        size_t bol = out.rfind('\n', pos);
        bol = bol == std::string::npos ? 0 : bol + 1;
        return out.substr(bol, 2000);
    }
    return "";
}

std::string stop_and_check(Proc* p, int timeout_ms)
{
    if (!p->running())
        return "the server is not running";
    p->signal(SIGTERM);
    int st = p->wait_exit(timeout_ms);
    std::string out = p->output();
    std::string san = sanitizer_report(out);
    if (!san.empty())
        return "sanitizer report:\n" + san;
    if (st == -1)
        return "no exit within " + std::to_string(timeout_ms) + " ms of SIGTERM";
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return "exit status " + std::to_string(st) + "\n" + out.substr(out.size() > 4000 ? out.size() - 4000 : 0);
    return "";
}


// ---- Helpers for the unit tests that fork ----

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
    long long deadline = zan::monotonic_ms() + timeout_ms;
    zan::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    for (;;) {
        int st;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        long long left = deadline - zan::monotonic_ms();
        if (r < 0 && errno != EINTR)
            return -1;
        if (left <= 0)
            return -1;
        if (pidfd) {  // readable when the child exits
            struct pollfd p = {pidfd.get(), POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(left));
        } else {
            struct timespec ts = {0, 1000000};  // no pidfd: poll waitpid every 1 ms
            ::nanosleep(&ts, nullptr);
        }
    }
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
    if (!rd_ || !wait_fd(rd_.get(), POLLIN, timeout_ms))
        return false;
    ssize_t n;
    do  // a write of up to PIPE_BUF bytes arrives whole
        n = ::read(rd_.get(), v, sizeof(*v));
    while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(sizeof(*v));
}

int wait_child(pid_t pid, int timeout_ms)
{
    long long end = zan::monotonic_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        if (zan::monotonic_ms() >= end) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 1000000};
        ::nanosleep(&ts, nullptr);
    }
}

bool read_byte(int fd, int timeout_ms, char* c)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    do
        r = ::poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0 && zan::read_some(fd, c, 1) == 1;
}

CapturedLog::CapturedLog(const char* prefix)
{
    std::string tmpl = std::string("/tmp/") + prefix + ".XXXXXX";
    int fd = ::mkstemp(&tmpl[0]);
    if (fd >= 0) {
        ::close(fd);
        path_ = tmpl;
        zan::Logger::instance().open(path_);
    }
}

CapturedLog::~CapturedLog()
{
    zan::Logger::instance().open("");
    if (!path_.empty())
        ::unlink(path_.c_str());
}

std::string CapturedLog::text() const
{
    std::string out;
    if (FILE* f = ::fopen(path_.c_str(), "r")) {
        char buf[512];
        size_t n;
        while ((n = ::fread(buf, 1, sizeof(buf), f)) > 0)
            out.append(buf, n);
        ::fclose(f);
    }
    return out;
}

}  // namespace zt
