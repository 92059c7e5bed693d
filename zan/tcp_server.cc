#include "zan/tcp_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "zan/log.h"
#include "zan/master.h"
#include "zan/net_worker.h"
#include "zan/socket.h"
#include "zan/sys.h"
#include "zan/task_worker.h"
#include "zan/user_worker.h"
#include "zan/worker.h"

namespace zan {

TcpServer::TcpServer(const ServerConfig& cfg) { rt_.cfg = cfg; }

TcpServer::TcpServer(const std::string& host, int port, const ServerConfig& cfg)
{
    rt_.cfg = cfg;
    listen(host, port);
}

TcpServer::~TcpServer() = default;

bool TcpServer::listen(const std::string& host, int port)
{
    InetAddr addr;
    if (port < 0 || port > 65535 || !InetAddr::parse(host, static_cast<uint16_t>(port), &addr)) {
        error_ = "bad listen address " + host + ":" + std::to_string(port);
        log(Level::error, "%s", error_.c_str());
        return false;
    }
    std::string err;
    Fd fd = listen_tcp(addr, rt_.cfg.backlog, false, &err);
    if (!fd) {
        error_ = err;
        log(Level::error, "%s", err.c_str());
        return false;
    }
    Listener l;
    l.addr = local_addr(fd.get());
    l.fd = std::move(fd);
    rt_.listeners.push_back(std::move(l));
    return true;
}

int TcpServer::port(size_t i) const
{
    return i < rt_.listeners.size() ? rt_.listeners[i].addr.port() : 0;
}

int TcpServer::add_process(ProcessCallback cb)
{
    if (rt_.role != Role::master || rt_.master_pid != 0) {
        log(Level::warn, "add_process(): only before start()");
        return -1;
    }
    rt_.user_procs.push_back(std::move(cb));
    return static_cast<int>(rt_.user_procs.size()) - 1;  // index; id known at start()
}

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

bool TcpServer::apply_user_group()
{
    if (rt_.cfg.user.empty() && rt_.cfg.group.empty())
        return true;
    unsigned uid = ::getuid(), gid = ::getgid();
    if (!rt_.cfg.user.empty() && !lookup_id("/etc/passwd", rt_.cfg.user, &uid, &gid)) {
        error_ = "unknown user '" + rt_.cfg.user + "'";
        return false;
    }
    if (!rt_.cfg.group.empty() && !lookup_id("/etc/group", rt_.cfg.group, &gid, nullptr)) {
        error_ = "unknown group '" + rt_.cfg.group + "'";
        return false;
    }
    rt_.set_ids = true;
    rt_.uid = uid;
    rt_.gid = gid;
    return true;
}

bool TcpServer::daemonize()
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

// Writes the Master's pid to pid_file, when one is set. False with
// error_ set.
bool TcpServer::write_pid_file()
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

int TcpServer::start()
{
    if (rt_.master_pid != 0) {
        error_ = "start() was already called";
        return 1;
    }
    before_start();
    std::string err = rt_.cfg.validate();
    if (!err.empty()) {
        error_ = "bad configuration: " + err;
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    if (rt_.listeners.empty()) {
        error_ = "no listening socket: call listen() before start()";
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    Logger& logger = Logger::instance();
    logger.set_level(rt_.cfg.log_level);
    if (!rt_.cfg.log_file.empty() && !logger.open(rt_.cfg.log_file)) {
        error_ = "cannot open log file " + rt_.cfg.log_file + ": " + strerror(errno);
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    if (!apply_user_group() || (rt_.cfg.daemonize && !daemonize())) {
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    ::signal(SIGPIPE, SIG_IGN);
    rt_.server = this;
    rt_.master_pid = ::getpid();
    if (!rt_.setup(&err)) {
        error_ = err;
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    if (rt_.set_ids && rt_.task_queue.valid()) {
        // Let the children remove the queue if the Master dies.
        struct msqid_ds ds;
        if (::msgctl(rt_.task_queue.id(), IPC_STAT, &ds) == 0) {
            ds.msg_perm.uid = rt_.uid;
            ds.msg_perm.gid = rt_.gid;
            ::msgctl(rt_.task_queue.id(), IPC_SET, &ds);
        }
    }
    if (!write_pid_file()) {
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    int rc;
    {
        Master master(rt_);
        rc = master.run();
    }
    remove_task_files(rt_.cfg.task_tmpdir, rt_.master_pid);
    if (!rt_.cfg.pid_file.empty())
        ::unlink(rt_.cfg.pid_file.c_str());
    return rc;
}

bool TcpServer::wrong_role(const char* what, const char* roles) const
{
    log(Level::warn, "%s() called in the %s: it works only in %s", what, role_name(rt_.role), roles);
    return false;
}

bool TcpServer::send(SessionId s, std::string_view data)
{
    if (!rt_.worker)
        return wrong_role("send", "a Worker");
    return rt_.worker->send(s, data);
}

bool TcpServer::close(SessionId s)
{
    if (!rt_.worker)
        return wrong_role("close", "a Worker");
    return rt_.worker->close(s);
}

bool TcpServer::bind(SessionId s, uint64_t uid)
{
    if (!rt_.worker)
        return wrong_role("bind", "a Worker");
    return rt_.worker->bind(s, uid);
}

TaskId TcpServer::task(std::string_view data, int dst)
{
    if (!rt_.worker) {
        wrong_role("task", "a Worker");
        return 0;
    }
    return rt_.worker->task(data, dst);
}

bool TcpServer::taskwait(std::string_view data, std::string* result, int timeout_ms, int dst)
{
    if (!rt_.worker)
        return wrong_role("taskwait", "a Worker");
    return rt_.worker->taskwait(data, timeout_ms, result, dst);
}

bool TcpServer::finish(std::string_view result)
{
    if (!rt_.task_worker)
        return wrong_role("finish", "a TaskWorker");
    return rt_.task_worker->finish(result);
}

bool TcpServer::send_message(std::string_view data, int worker_id)
{
    if (rt_.worker)
        return rt_.worker->send_message(data, worker_id);
    if (rt_.task_worker)
        return rt_.task_worker->send_message(data, worker_id);
    if (rt_.user_worker)
        return rt_.user_worker->send_message(data, worker_id);
    return wrong_role("send_message", "a Worker, TaskWorker or UserWorker");
}

bool TcpServer::exists(SessionId s) const { return rt_.sessions && rt_.live_session(s) != nullptr; }

bool TcpServer::client_info(SessionId s, ClientInfo* out) const
{
    if (!rt_.sessions)
        return false;
    SessionSlot* ss = rt_.live_session(s);
    if (!ss)
        return false;
    out->peer = InetAddr::from_sockaddr(reinterpret_cast<const struct sockaddr*>(ss->addr), ss->addr_len);
    out->net_worker = session_net(s);
    out->listener = ss->listener;
    out->connect_time = ss->connect_time;
    out->last_time = atomic_load(&ss->last_time);
    out->uid = atomic_load(&ss->uid);
    // The slot may have been reused while we copied: check again.
    return rt_.live_session(s) == ss;
}

Stats TcpServer::stats() const
{
    Stats st{};
    st.worker_num = rt_.cfg.worker_num;
    st.task_worker_num = rt_.cfg.task_worker_num;
    st.net_worker_num = rt_.cfg.net_worker_num;
    st.user_worker_num = rt_.U();
    const ServerStats* s = rt_.stats;
    if (!s)
        return st;
    st.start_time = atomic_load(&s->start_time);
    st.last_reload = atomic_load(&s->last_reload);
    st.connection_num = atomic_load(&s->connection_num);
    st.accept_count = atomic_load(&s->accept_count);
    st.close_count = atomic_load(&s->close_count);
    st.request_count = atomic_load(&s->request_count);
    st.task_count = atomic_load(&s->task_count);
    st.tasking_num = atomic_load(&s->tasking_num);
    st.worker_respawn_count = atomic_load(&s->worker_respawn_count);
    st.worker_normal_exit = atomic_load(&s->worker_normal_exit);
    st.worker_abnormal_exit = atomic_load(&s->worker_abnormal_exit);
    if (rt_.procs) {
        int first = rt_.first_id(Role::net_worker);
        for (int id = first; id < first + rt_.N(); id++)
            st.hop_yield_count += atomic_load(&rt_.procs[id].hop_yields);
    }
    return st;
}

EventLoop* TcpServer::current_loop() const
{
    if (rt_.worker)
        return &rt_.worker->loop();
    if (rt_.net_worker)
        return &rt_.net_worker->loop();
    if (rt_.user_worker)
        return &rt_.user_worker->loop();
    return nullptr;
}

EventLoop::TimerId TcpServer::tick(long long ms, EventLoop::Callback cb)
{
    EventLoop* l = current_loop();
    if (!l) {
        wrong_role("tick", "a Worker, NetWorker or UserWorker");
        return 0;
    }
    return l->run_every(ms, std::move(cb));
}

EventLoop::TimerId TcpServer::after(long long ms, EventLoop::Callback cb)
{
    EventLoop* l = current_loop();
    if (!l) {
        wrong_role("after", "a Worker, NetWorker or UserWorker");
        return 0;
    }
    return l->run_after(ms, std::move(cb));
}

bool TcpServer::clear(EventLoop::TimerId id)
{
    EventLoop* l = current_loop();
    return l ? l->cancel(id) : wrong_role("clear", "a Worker, NetWorker or UserWorker");
}

void TcpServer::stop()
{
    if (rt_.worker)
        rt_.worker->stop();
    else
        wrong_role("stop", "a Worker");
}

bool TcpServer::reload(bool tasks_only)
{
    if (rt_.master_pid == 0)
        return false;
    return ::kill(rt_.master_pid, tasks_only ? SIGUSR2 : SIGUSR1) == 0;
}

bool TcpServer::shutdown()
{
    if (rt_.master_pid == 0)
        return false;
    return ::kill(rt_.master_pid, SIGTERM) == 0;
}

bool TcpServer::stopping() const
{
    if (rt_.user_worker)
        return rt_.user_worker->stopping();
    return rt_.stopping || (rt_.stats && atomic_load(&rt_.stats->shutting_down) != 0);
}

}  // namespace zan
