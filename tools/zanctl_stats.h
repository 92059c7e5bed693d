// zanctl stats and zanctl top: the figures of a running server, read
// from the Master's control socket beside the pid file (PIDFILE.sock,
// mode 0600: only the server's user, and root, may connect). stats
// prints the Master's JSON document as it comes; top draws one row per
// process every second, with rates from the difference of two
// snapshots. Part of tools/zanctl.cc.
#ifndef ZAN_TOOLS_ZANCTL_STATS_H
#define ZAN_TOOLS_ZANCTL_STATS_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <string>

#include "tools/json_reader.h"
#include "zan/fd.h"
#include "zan/sys.h"

namespace zanctl {

using zan_tools::JsonReader;
using zan_tools::JsonValue;

// Sends `command` to the control socket of the server whose pid file is
// pidfile and reads the whole answer into *out (at most timeout_ms).
// False with the reason in *why.
inline bool query(const std::string& pidfile, const std::string& command, std::string* out,
                  std::string* why, int timeout_ms = 5000)
{
    std::string path = pidfile + ".sock";
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sun.sun_path)) {
        *why = "control socket path " + path + " is too long";
        return false;
    }
    memcpy(sun.sun_path, path.c_str(), path.size());
    zan::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        *why = std::string("socket(): ") + strerror(errno);
        return false;
    }
    if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&sun), sizeof(sun)) < 0) {
        int e = errno;
        if (e == ENOENT)
            *why = "no control socket " + path + " (a server without statistics, or not ours)";
        else if (e == EACCES || e == EPERM)
            *why = path + ": permission denied (run zanctl as the server's user)";
        else if (e == ECONNREFUSED)
            *why = path + ": nobody answers (a stale socket)";
        else
            *why = "connect(" + path + "): " + strerror(e);
        return false;
    }
    std::string line = command + "\n";
    if (zan::write_all(fd.get(), line.data(), line.size()) < 0) {
        *why = std::string("writing to the control socket: ") + strerror(errno);
        return false;
    }
    long long deadline = zan::monotonic_ms() + timeout_ms;
    out->clear();
    char buf[16384];
    for (;;) {
        long long left = deadline - zan::monotonic_ms();
        struct pollfd p = {fd.get(), POLLIN, 0};
        int r = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            *why = "no answer on " + path + " within " + std::to_string(timeout_ms / 1000) + " s";
            return false;
        }
        ssize_t n = zan::read_some(fd.get(), buf, sizeof(buf));
        if (n < 0) {
            *why = std::string("reading the control socket: ") + strerror(errno);
            return false;
        }
        if (n == 0)
            break;
        out->append(buf, static_cast<size_t>(n));
    }
    if (out->compare(0, 6, "error:") == 0 || out->empty()) {
        *why = out->empty() ? "empty answer on " + path : *out;
        return false;
    }
    return true;
}

inline int stats(const std::string& pidfile)
{
    std::string doc, why;
    if (!query(pidfile, "stats", &doc, &why)) {
        fprintf(stderr, "zanctl: %s\n", why.c_str());
        return 1;
    }
    fwrite(doc.data(), 1, doc.size(), stdout);
    return 0;
}

// ---- top ----

// Raw terminal mode while top runs on a terminal; restored on every way
// out (return, q, SIGINT, SIGTERM, SIGHUP).
class RawTerminal {
public:
    static bool enter()
    {
        if (!::isatty(0) || ::tcgetattr(0, &saved()) < 0)
            return false;
        struct termios raw = saved();
        raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        if (::tcsetattr(0, TCSANOW, &raw) < 0)
            return false;
        active() = 1;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT})
            ::sigaction(s, &sa, nullptr);
        return true;
    }
    static void leave()
    {
        if (active()) {
            ::tcsetattr(0, TCSANOW, &saved());
            active() = 0;
        }
    }

private:
    static struct termios& saved()
    {
        static struct termios t;
        return t;
    }
    static volatile sig_atomic_t& active()
    {
        static volatile sig_atomic_t a = 0;
        return a;
    }
    static void on_signal(int sig)
    {
        if (active())
            ::tcsetattr(0, TCSANOW, &saved());  // async-signal-safe
        static const char show[] = "\033[?25h\n";
        ssize_t n = ::write(1, show, sizeof(show) - 1);
        (void)n;
        _exit(128 + sig);
    }
};

// What a row's rate is computed from: messages received (NetWorker),
// handled (Worker) or tasks run (TaskWorker).
inline double work_of(const JsonValue& p)
{
    return p["received"].number() + p["requests"].number() + p["tasks"]["done"].number();
}

inline std::string key_of(const JsonValue& p)
{
    return p["role"].str + "#" + std::to_string(static_cast<long>(p["id"].number()));
}

struct Sample {
    double work = 0;
    double cpu = 0;
};

// One frame: a header with the totals, then one row per process. prev
// holds the previous frame's figures (empty on the first: rates are then
// averages since each process started).
inline std::string frame(const JsonValue& doc, std::map<std::string, Sample>* prev, double dt)
{
    const JsonValue& tot = doc["totals"];
    double now = static_cast<double>(::time(nullptr));
    double up = now - doc["start_time"].number();
    char buf[512];
    std::string out;
    double total_rate = 0, total_cpu = 0;
    std::string rows;
    int nrows = 0;
    for (const JsonValue& p : doc["processes"].arr) {
        std::string key = key_of(p);
        Sample cur{work_of(p), p["cpu_seconds"].number()};
        double rate, cpu;
        auto it = prev->find(key);
        if (it != prev->end() && dt > 0) {
            rate = (cur.work - it->second.work) / dt;
            cpu = (cur.cpu - it->second.cpu) / dt * 100;
        } else {
            double age = now - p["start_time"].number();
            rate = age > 0 ? cur.work / age : 0;
            cpu = age > 0 ? cur.cpu / age * 100 : 0;
        }
        (*prev)[key] = cur;
        if (rate < 0)
            rate = 0;
        if (cpu < 0)
            cpu = 0;
        if (p["role"].str == "worker" || p["role"].str == "task")
            total_rate += rate;
        total_cpu += cpu;
        const JsonValue& conns = p["connections"];
        snprintf(buf, sizeof(buf), "%-7s %3ld %8ld %5s %10.1f %7ld %9.1f %6.1f %8ld\n",
                 p["role"].str.c_str(), static_cast<long>(p["id"].number()),
                 static_cast<long>(p["pid"].number()), p["state"].str.c_str(), rate,
                 static_cast<long>(conns["open"].number()), p["rss_bytes"].number() / 1048576.0,
                 cpu, static_cast<long>(p["respawns"]["total"].number()));
        rows += buf;
        nrows++;
    }
    snprintf(buf, sizeof(buf),
             "zan %s  up %ldd %02ld:%02ld:%02ld  processes %d  reloads %ld  task queue %ld\n",
             doc["version"].str.c_str(), static_cast<long>(up) / 86400,
             static_cast<long>(up) / 3600 % 24, static_cast<long>(up) / 60 % 60,
             static_cast<long>(up) % 60, nrows, static_cast<long>(doc["reloads"].number()),
             static_cast<long>(doc["task_queue"]["depth"].number()));
    out += buf;
    const JsonValue& tc = tot["connections"];
    snprintf(buf, sizeof(buf),
             "requests/s %.1f  requests %ld  connections %ld (reading %ld writing %ld waiting %ld)"
             "  rss %.1f MiB  cpu %.1f%%  respawns %ld\n\n",
             total_rate, static_cast<long>(tot["requests"].number()),
             static_cast<long>(tc["open"].number()), static_cast<long>(tc["reading"].number()),
             static_cast<long>(tc["writing"].number()), static_cast<long>(tc["waiting"].number()),
             tot["rss_bytes"].number() / 1048576.0, total_cpu,
             static_cast<long>(tot["respawns"]["total"].number()));
    out += buf;
    snprintf(buf, sizeof(buf), "%-7s %3s %8s %5s %10s %7s %9s %6s %8s\n", "ROLE", "ID", "PID",
             "STATE", "REQ/S", "CONNS", "RSS(MiB)", "CPU%", "RESPAWNS");
    out += buf;
    return out + rows;
}

// frames: how many to draw (0: until q, or until killed in a pipe).
inline int top(const std::string& pidfile, long frames)
{
    bool tty = ::isatty(1) && frames != 1;
    bool raw = tty && RawTerminal::enter();
    std::map<std::string, Sample> prev;
    long long last_ms = 0;
    int rc = 0;
    for (long n = 0; frames == 0 || n < frames; n++) {
        std::string doc_text, why;
        JsonValue doc;
        if (!query(pidfile, "stats", &doc_text, &why)) {
            fprintf(stderr, "zanctl: %s\n", why.c_str());
            rc = 1;
            break;
        }
        if (!JsonReader::parse(doc_text, &doc) || doc.type != JsonValue::kObj) {
            fprintf(stderr, "zanctl: the server's answer is not a JSON object\n");
            rc = 1;
            break;
        }
        long long now_ms = zan::monotonic_ms();
        std::string f = frame(doc, &prev, last_ms ? (now_ms - last_ms) / 1000.0 : 0);
        last_ms = now_ms;
        if (tty)
            f = "\033[H\033[2J" + f;  // home, clear
        else if (n > 0)
            f = "\n" + f;
        fwrite(f.data(), 1, f.size(), stdout);
        fflush(stdout);
        if (frames != 0 && n + 1 >= frames)
            break;
        // Wait a second; q (on a terminal) quits.
        bool quit = false;
        long long until = now_ms + 1000;
        while (!quit) {
            long long left = until - zan::monotonic_ms();
            if (left <= 0)
                break;
            struct pollfd p = {0, POLLIN, 0};
            int r = raw ? ::poll(&p, 1, static_cast<int>(left)) : ::poll(nullptr, 0, static_cast<int>(left));
            char c;
            if (r > 0 && ::read(0, &c, 1) == 1 && (c == 'q' || c == 'Q'))
                quit = true;
        }
        if (quit)
            break;
    }
    RawTerminal::leave();
    return rc;
}

}  // namespace zanctl

#endif
