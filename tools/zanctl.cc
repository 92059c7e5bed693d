// zanctl: control a running zan server through its pid file.
//   zanctl -p FILE status        the Master and its children (pid, name, state, RSS, CPU)
//   zanctl -p FILE reload        SIGUSR1: rolling reload of Workers and TaskWorkers
//   zanctl -p FILE reload-tasks  SIGUSR2: TaskWorkers only
//   zanctl -p FILE reopen        SIGRTMIN: reopen the log files
//   zanctl -p FILE stop [-w S]   SIGTERM: graceful stop; waits up to S seconds (default 10)
//   zanctl -p FILE upgrade [-w S]  SIGRTMIN+2: binary upgrade; waits up to S seconds
//                                (default 60) for the new Master or the rollback
//   zanctl -p FILE stats         every figure as one JSON document (tools/zanctl_stats.h)
//   zanctl -p FILE top [-n N]    a live view, one row per process; N frames (0: until q)
// Exit status: 0 done, 1 the server is not running, did not stop or was
// not upgraded, or its control socket cannot be reached; 2 usage.
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tools/server_options.h"
#include "tools/zanctl_stats.h"
#include "zan/sys.h"

static void usage()
{
    fprintf(stderr, "usage: zanctl -p pidfile status | reload | reload-tasks | reopen |\n"
                    "                      stop [-w seconds] | upgrade [-w seconds]\n"
                    "       zanctl -p pidfile stats | top [-n frames]\n");
    exit(2);
}

struct ProcInfo {
    pid_t pid = 0;
    pid_t ppid = 0;
    char state = '?';
    std::string comm;
    long long cpu_ticks = 0;
    long rss_kb = 0;
};

static bool read_proc(pid_t pid, ProcInfo* out)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s))
        return false;
    size_t lp = s.find('('), rp = s.rfind(')');
    if (lp == std::string::npos || rp == std::string::npos)
        return false;
    out->pid = pid;
    out->comm = s.substr(lp + 1, rp - lp - 1);
    std::istringstream rest(s.substr(rp + 2));
    std::vector<std::string> fld;
    std::string x;
    while (rest >> x)
        fld.push_back(x);
    if (fld.size() < 22)
        return false;
    out->state = fld[0][0];
    out->ppid = static_cast<pid_t>(atol(fld[1].c_str()));
    out->cpu_ticks = atoll(fld[11].c_str()) + atoll(fld[12].c_str());
    out->rss_kb = atol(fld[21].c_str()) * (sysconf(_SC_PAGESIZE) / 1024);
    return true;
}

// The Master named in the pid file: a whole decimal number (a newline
// after it is fine) naming a live process called zan-master. Anything
// else, e.g. a stale file whose pid now belongs to another program, is
// refused with the reason in *why: zanctl signals only a zan Master.
static bool read_master(const std::string& file, pid_t* pid, std::string* why)
{
    std::ifstream f(file);
    std::string text;
    if (!f || !std::getline(f, text)) {
        *why = "cannot read " + file;
        return false;
    }
    long v = 0;
    if (!zan_tools::parse_number(text, 2, INT_MAX, &v)) {
        *why = file + " does not hold a process id";
        return false;
    }
    ProcInfo pi;
    if (!read_proc(static_cast<pid_t>(v), &pi) || pi.state == 'Z') {
        *why = "no running server in " + file + " (process " + std::to_string(v) + " is gone)";
        return false;
    }
    if (pi.comm != "zan-master") {
        *why = "process " + std::to_string(v) + " named in " + file + " is not a zan Master (it is " +
               pi.comm + ")";
        return false;
    }
    *pid = static_cast<pid_t>(v);
    return true;
}

// True once the Master has exited: gone, a zombie not yet reaped by its
// parent, or the pid already taken by another program.
static bool master_exited(pid_t master)
{
    ProcInfo pi;
    return !read_proc(master, &pi) || pi.state == 'Z' || pi.comm != "zan-master";
}

// The pid file's identity: a rewrite changes its inode or its mtime.
struct FileStamp {
    ino_t ino = 0;
    struct timespec mtime = {0, 0};
    bool operator==(const FileStamp& o) const
    {
        return ino == o.ino && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
    }
};

static FileStamp stamp_of(const std::string& file)
{
    FileStamp s;
    struct stat st;
    if (::stat(file.c_str(), &st) == 0) {
        s.ino = st.st_ino;
        s.mtime = st.st_mtim;
    }
    return s;
}

// The upgrade signal is sent; the Master decides. Success: the pid file
// names another live zan Master (a new Master writes it once it is
// ready). Failure: the old Master wrote the file again with its own pid
// (its rollback), or it exited with no new Master named.
static int wait_upgrade(const std::string& file, pid_t old, const FileStamp& before, int wait_s)
{
    long long deadline = zan::monotonic_ms() + wait_s * 1000LL;
    while (zan::monotonic_ms() < deadline) {
        pid_t now = 0;
        std::string why;
        bool named = read_master(file, &now, &why);
        if (named && now != old) {
            printf("zanctl: upgraded: new Master %d serves; old Master %d finishes and exits\n", now, old);
            return 0;
        }
        if (named && !(stamp_of(file) == before)) {
            fprintf(stderr, "zanctl: upgrade failed: Master %d keeps serving (its log says why)\n", old);
            return 1;
        }
        if (master_exited(old) && !named) {
            fprintf(stderr, "zanctl: upgrade failed: Master %d exited and no new Master is named in %s\n",
                    old, file.c_str());
            return 1;
        }
        usleep(20000);  // a file and another process: nothing to wait on
    }
    fprintf(stderr, "zanctl: no outcome of the upgrade of Master %d after %d s\n", old, wait_s);
    return 1;
}

static int status(pid_t master)
{
    ProcInfo m;
    if (!read_proc(master, &m))
        return 1;
    std::vector<ProcInfo> kids;
    DIR* d = opendir("/proc");
    for (dirent* e = d ? readdir(d) : nullptr; e; e = readdir(d)) {
        pid_t p = static_cast<pid_t>(atol(e->d_name));
        ProcInfo pi;
        if (p > 0 && read_proc(p, &pi) && pi.ppid == master)
            kids.push_back(pi);
    }
    if (d)
        closedir(d);
    long hz = sysconf(_SC_CLK_TCK);
    printf("%-8s %-16s %-5s %10s %10s\n", "PID", "NAME", "STATE", "RSS(KiB)", "CPU(s)");
    auto row = [&](const ProcInfo& p) {
        printf("%-8d %-16s %-5c %10ld %10.2f\n", p.pid, p.comm.c_str(), p.state, p.rss_kb,
               static_cast<double>(p.cpu_ticks) / static_cast<double>(hz));
    };
    row(m);
    for (const ProcInfo& k : kids)
        row(k);
    return 0;
}

int main(int argc, char** argv)
{
    std::string pidfile, cmd;
    int wait_s = -1;  // per command: stop 10, upgrade 60
    long frames = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-p" && i + 1 < argc)
            pidfile = argv[++i];
        else if (a == "-w" && i + 1 < argc) {
            long n = 0;
            if (!zan_tools::parse_number(argv[++i], 0, 86400, &n))
                usage();
            wait_s = static_cast<int>(n);
        }
        else if (a == "-n" && i + 1 < argc) {
            if (!zan_tools::parse_number(argv[++i], 0, LONG_MAX, &frames))
                usage();
        }
        else if (cmd.empty() && a[0] != '-')
            cmd = a;
        else
            usage();
    }
    if (pidfile.empty() || cmd.empty())
        usage();
    pid_t master;
    std::string why;
    if (!read_master(pidfile, &master, &why)) {
        fprintf(stderr, "zanctl: %s\n", why.c_str());
        return 1;
    }
    int sig = 0;
    if (cmd == "status")
        return status(master);
    if (cmd == "upgrade") {
        FileStamp before = stamp_of(pidfile);
        // The Master's upgrade signal (zan(7)).
        if (::kill(master, SIGRTMIN + 2) < 0) {
            fprintf(stderr, "zanctl: kill(%d): %s\n", master, strerror(errno));
            return 1;
        }
        return wait_s == 0 ? 0 : wait_upgrade(pidfile, master, before, wait_s < 0 ? 60 : wait_s);
    }
    if (cmd == "stats")
        return zanctl::stats(pidfile);
    if (cmd == "top")
        return zanctl::top(pidfile, frames);
    if (cmd == "reload")
        sig = SIGUSR1;
    else if (cmd == "reload-tasks")
        sig = SIGUSR2;
    else if (cmd == "reopen")
        sig = SIGRTMIN;
    else if (cmd == "stop")
        sig = SIGTERM;
    else
        usage();
    if (::kill(master, sig) < 0) {
        fprintf(stderr, "zanctl: kill(%d): %s\n", master, strerror(errno));
        return 1;
    }
    if (wait_s < 0)
        wait_s = 10;
    if (sig != SIGTERM || wait_s == 0)
        return 0;
    long long deadline = zan::monotonic_ms() + wait_s * 1000LL;
    while (zan::monotonic_ms() < deadline) {
        if (master_exited(master))
            return 0;
        usleep(20000);  // another process's exit cannot be waited for
    }
    fprintf(stderr, "zanctl: master %d still running after %d s\n", master, wait_s);
    return 1;
}
