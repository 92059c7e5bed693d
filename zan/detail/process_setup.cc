#include "zan/detail/process_setup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "zan/fd.h"
#include "zan/sys.h"

namespace zan {

// Reads "name:x:id:..." files (passwd, group) without the name service,
// so that -static builds link cleanly.
static bool lookup_id(const char* file, const std::string& name, unsigned* id, unsigned* gid)
{
    char* end = nullptr;
    unsigned long v = strtoul(name.c_str(), &end, 10);
    if (!name.empty() && end && *end == '\0') {
        *id = static_cast<unsigned>(v);
        if (gid)
            *gid = static_cast<unsigned>(v);
        return true;
    }
    std::ifstream f(file);
    std::string line;
    while (std::getline(f, line)) {
        std::vector<std::string> parts;
        std::stringstream ss(line);
        std::string p;
        while (std::getline(ss, p, ':'))
            parts.push_back(p);
        if (parts.size() >= 3 && parts[0] == name) {
            *id = static_cast<unsigned>(strtoul(parts[2].c_str(), nullptr, 10));
            if (gid && parts.size() >= 4)
                *gid = static_cast<unsigned>(strtoul(parts[3].c_str(), nullptr, 10));
            return true;
        }
    }
    return false;
}

bool ProcessSetup::resolve_user_group()
{
    const ServerConfig& cfg = rt_.cfg;
    if (cfg.user.empty() && cfg.group.empty())
        return true;
    unsigned uid = ::getuid(), gid = ::getgid();
    if (!cfg.user.empty() && !lookup_id("/etc/passwd", cfg.user, &uid, &gid)) {
        error_ = "unknown user '" + cfg.user + "'";
        return false;
    }
    if (!cfg.group.empty() && !lookup_id("/etc/group", cfg.group, &gid, nullptr)) {
        error_ = "unknown group '" + cfg.group + "'";
        return false;
    }
    rt_.set_ids = true;
    rt_.uid = uid;
    rt_.gid = gid;
    return true;
}

bool ProcessSetup::daemonize()
{
    pid_t pid = ::fork();
    if (pid < 0) {
        error_ = std::string("fork() failed: ") + strerror(errno);
        return false;
    }
    if (pid > 0)
        _exit(0);
    ::setsid();
    // Detach from the launcher's terminal or pipe: stdin from /dev/null,
    // stdout and stderr to the log file when there is one (so stray output
    // is kept, as Swoole does), else to /dev/null.
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int out = -1;
    if (!rt_.cfg.log_file.empty())
        out = ::open(rt_.cfg.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0)
        out = null;
    if (null >= 0)
        ::dup2(null, 0);
    if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
    }
    if (out >= 0 && out != null)
        ::close(out);
    if (null >= 0)
        ::close(null);
    return true;
}

void ProcessSetup::give_task_queue_to_user()
{
    if (!rt_.set_ids || !rt_.task_queue.valid())
        return;
    // Let the children remove the queue if the Master dies.
    struct msqid_ds ds;
    if (::msgctl(rt_.task_queue.id(), IPC_STAT, &ds) == 0) {
        ds.msg_perm.uid = rt_.uid;
        ds.msg_perm.gid = rt_.gid;
        ::msgctl(rt_.task_queue.id(), IPC_SET, &ds);
    }
}

bool ProcessSetup::write_pid_file()
{
    if (rt_.cfg.pid_file.empty())
        return true;
    std::string pid = std::to_string(::getpid()) + "\n";
    Fd fd(::open(rt_.cfg.pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd || write_all(fd.get(), pid.data(), pid.size()) < 0) {
        error_ = "cannot write pid file " + rt_.cfg.pid_file + ": " + strerror(errno);
        return false;
    }
    return true;
}

static void remove_task_files(const std::string& dir, pid_t master)
{
    std::string prefix = "zan-task-" + std::to_string(master) + "-";
    DIR* d = ::opendir(dir.c_str());
    if (!d)
        return;
    while (struct dirent* e = ::readdir(d))
        if (strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0)
            ::unlink((dir + "/" + e->d_name).c_str());
    ::closedir(d);
}

void ProcessSetup::clean_up()
{
    remove_task_files(rt_.cfg.task_tmpdir, rt_.master_pid);
    // After a binary upgrade the file names the new Master: leave it.
    if (rt_.cfg.pid_file.empty())
        return;
    std::ifstream f(rt_.cfg.pid_file);
    std::string line;
    if (std::getline(f, line) && line == std::to_string(rt_.master_pid))
        ::unlink(rt_.cfg.pid_file.c_str());
}

}  // namespace zan
