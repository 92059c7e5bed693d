#include "zan/tcp_server.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "zan/detail/binary_upgrade.h"
#include "zan/detail/listen_fds.h"
#include "zan/log.h"
#include "zan/detail/master.h"
#include "zan/detail/metrics_snapshot.h"
#include "zan/detail/net_worker.h"
#include "zan/detail/process.h"
#include "zan/detail/process_setup.h"
#include "zan/socket.h"
#include "zan/detail/task_worker.h"
#include "zan/detail/user_worker.h"
#include "zan/detail/worker.h"

namespace zan {

Runtime& server_runtime(TcpServer& server) { return *server.rt_; }

const Runtime& server_runtime(const TcpServer& server) { return *server.rt_; }

TcpServer::TcpServer(const ServerConfig& cfg) : rt_(new Runtime) { rt_->cfg = cfg; }

TcpServer::TcpServer(const std::string& host, int port, const ServerConfig& cfg) : rt_(new Runtime)
{
    rt_->cfg = cfg;
    listen(host, port);
}

TcpServer::~TcpServer() = default;

ServerConfig& TcpServer::config() { return rt_->cfg; }
void TcpServer::on_start(ServerCallback cb) { rt_->cb.on_start = std::move(cb); }
void TcpServer::on_shutdown(ServerCallback cb) { rt_->cb.on_shutdown = std::move(cb); }
void TcpServer::on_worker_start(WorkerCallback cb) { rt_->cb.on_worker_start = std::move(cb); }
void TcpServer::on_worker_stop(WorkerCallback cb) { rt_->cb.on_worker_stop = std::move(cb); }
void TcpServer::on_worker_error(WorkerErrorCallback cb) { rt_->cb.on_worker_error = std::move(cb); }
void TcpServer::on_connect(SessionCallback cb) { rt_->cb.on_connect = std::move(cb); }
void TcpServer::on_receive(ReceiveCallback cb) { rt_->cb.on_receive = std::move(cb); }
void TcpServer::on_close(SessionCallback cb) { rt_->cb.on_close = std::move(cb); }
void TcpServer::on_drained(SessionCallback cb) { rt_->cb.on_drained = std::move(cb); }
void TcpServer::on_task(TaskCallback cb) { rt_->cb.on_task = std::move(cb); }
void TcpServer::on_finish(FinishCallback cb) { rt_->cb.on_finish = std::move(cb); }
void TcpServer::on_pipe_message(PipeMessageCallback cb) { rt_->cb.on_pipe_message = std::move(cb); }
void TcpServer::set_frame_hook(FrameHook hook) { rt_->frame_hook = std::move(hook); }

void TcpServer::set_protocol(ProtocolSpec spec)
{
    if (rt_->master_pid != 0) {
        log(Level::error, "set_protocol() called after start(): ignored");
        return;
    }
    rt_->protocol = std::move(spec);
}

Role TcpServer::role() const { return rt_->role; }
int TcpServer::worker_id() const { return rt_->id; }
pid_t TcpServer::master_pid() const { return rt_->master_pid; }

// The listening sockets passed to this process (systemd socket activation,
// or the Master this one replaces in a binary upgrade): read from the
// environment, which then no longer holds them, once per process.
struct PassedSockets {
    ListenFds fds;
    std::string error;
};

static PassedSockets& passed_sockets()
{
    static PassedSockets* ps = nullptr;
    if (!ps) {
        ps = new PassedSockets;  // lives as long as the process
        if (!ps->fds.take_from_env(&ps->error))
            ps->error = "socket activation: " + ps->error;
    }
    return *ps;
}

bool TcpServer::listen(const std::string& host, int port)
{
    std::optional<InetAddr> parsed;
    if (port >= 0 && port <= 65535)
        parsed = InetAddr::parse(host, static_cast<uint16_t>(port));
    if (!parsed) {
        error_ = "bad listen address " + host + ":" + std::to_string(port);
        log(Level::error, "%s", error_.c_str());
        return false;
    }
    InetAddr addr = *parsed;
    PassedSockets& ps = passed_sockets();
    if (!ps.error.empty() || ps.fds.active())
        return take_passed(addr);
    std::string err;
    Fd fd = listen_tcp(addr, rt_->cfg.backlog, false, &err);
    if (!fd) {
        error_ = err;
        log(Level::error, "%s", err.c_str());
        return false;
    }
    Listener l;
    l.addr = local_addr(fd.get());
    l.fd = std::move(fd);
    rt_->listeners.push_back(std::move(l));
    return true;
}

// With sockets passed to us, listen() binds nothing: it takes the passed
// socket bound to addr, and a listener that has none is an error.
bool TcpServer::take_passed(const InetAddr& addr)
{
    PassedSockets& ps = passed_sockets();
    if (!ps.error.empty()) {
        error_ = ps.error;
        log(Level::error, "%s", error_.c_str());
        return false;
    }
    Listener l;
    l.fd = ps.fds.take(addr, &l.name, &l.addr);
    if (!l.fd) {
        error_ = "socket activation: no passed socket is bound to " + addr.to_string() +
                 " (passed: " + (ps.fds.count() ? ps.fds.describe() : std::string("none")) + ")";
        log(Level::error, "%s", error_.c_str());
        return false;
    }
    log(Level::info, "listening on passed socket %s%s%s", l.addr.to_string().c_str(),
        l.name.empty() ? "" : " ", l.name.c_str());
    rt_->listeners.push_back(std::move(l));
    return true;
}

int TcpServer::port(size_t i) const
{
    return i < rt_->listeners.size() ? rt_->listeners[i].addr.port() : 0;
}

int TcpServer::add_process(ProcessCallback cb)
{
    if (rt_->role != Role::master || rt_->master_pid != 0) {
        log(Level::warn, "add_process(): only before start()");
        return -1;
    }
    rt_->user_procs.push_back(std::move(cb));
    return static_cast<int>(rt_->user_procs.size()) - 1;  // index; id known at start()
}

int TcpServer::start()
{
    if (rt_->master_pid != 0) {
        error_ = "start() was already called";
        return 1;
    }
    before_start();
    std::string err = rt_->cfg.validate();
    if (!err.empty()) {
        error_ = "bad configuration: " + err;
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    PassedSockets& ps = passed_sockets();
    if (!ps.error.empty()) {
        error_ = ps.error;
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    std::string untaken = ps.fds.untaken();
    if (!untaken.empty()) {
        error_ = "socket activation: passed sockets that match no listen(): " + untaken;
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    rt_->upgrade_parent = BinaryUpgrade::take_parent_address();
    if (rt_->listeners.empty()) {
        error_ = "no listening socket: call listen() before start()";
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    Logger& logger = Logger::instance();
    logger.set_level(rt_->cfg.log_level);
    if (!rt_->cfg.log_file.empty() && !logger.open(rt_->cfg.log_file)) {
        error_ = "cannot open log file " + rt_->cfg.log_file + ": " + strerror(errno);
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    ProcessSetup setup(*rt_);
    // A Master started by a binary upgrade is detached already, and its
    // parent waits for this very process.
    bool upgraded = !rt_->upgrade_parent.empty();
    if (!setup.resolve_user_group()) {
        error_ = setup.error();
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    // Files of a layer above (the access log), while a failure still
    // reaches the terminal.
    if (rt_->hooks.master_files && !rt_->hooks.master_files(&err)) {
        error_ = err;
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    if (rt_->cfg.daemonize && !upgraded && !setup.daemonize()) {
        error_ = setup.error();
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    ::signal(SIGPIPE, SIG_IGN);
    rt_->server = this;
    rt_->master_pid = ::getpid();
    if (!rt_->setup(&err)) {
        error_ = err;
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    setup.give_task_queue_to_user();
    if (!upgraded && !setup.write_pid_file()) {
        error_ = setup.error();
        log(Level::error, "%s", error_.c_str());
        return 1;
    }
    int rc;
    {
        Master master(*rt_);
        rc = master.run();
    }
    setup.clean_up();
    return rc;
}

bool TcpServer::wrong_role(const char* what, const char* roles) const
{
    log(Level::warn, "%s() called in the %s: it works only in %s", what, role_name(rt_->role), roles);
    return false;
}

bool TcpServer::send(SessionId s, std::string_view data)
{
    if (!rt_->worker)
        return wrong_role("send", "a Worker");
    return rt_->worker->send(s, data);
}

bool TcpServer::close(SessionId s)
{
    if (!rt_->worker)
        return wrong_role("close", "a Worker");
    return rt_->worker->close(s);
}

bool TcpServer::bind(SessionId s, uint64_t uid)
{
    if (!rt_->worker)
        return wrong_role("bind", "a Worker");
    return rt_->worker->bind(s, uid);
}

MessageInfo TcpServer::message_info() const
{
    MessageInfo m;
    m.seq = (static_cast<uint32_t>(rt_->data_flags) >> kSeqShift) & kSeqMask;
    m.last = (rt_->data_flags & kDataLast) != 0;
    int f = rt_->data_flags;
    if (f & kDataPart)
        m.part = (f & kDataCut)     ? MessagePart::cut
                 : (f & kDataFirst) ? MessagePart::first
                 : (f & kDataEnd)   ? MessagePart::last
                                    : MessagePart::more;
    return m;
}

bool TcpServer::watch_output(SessionId s, size_t below)
{
    if (!rt_->worker)
        return wrong_role("watch_output", "a Worker");
    return rt_->worker->watch_output(s, below);
}

bool TcpServer::acknowledge(SessionId s, size_t bytes)
{
    if (!rt_->worker)
        return wrong_role("acknowledge", "a Worker");
    return rt_->worker->acknowledge(s, bytes);
}

bool TcpServer::reply(SessionId s, const MessageInfo& m, std::string_view data, ReplyMark mark)
{
    if (!rt_->worker)
        return wrong_role("reply", "a Worker");
    int flags = static_cast<int>((m.seq & kSeqMask) << kSeqShift);
    if (mark != ReplyMark::more)
        flags |= kReplyEnd;
    if (mark == ReplyMark::close)
        flags |= kReplyClose;
    return rt_->worker->send(s, data, flags);
}

TaskId TcpServer::task(std::string_view data, int dst)
{
    if (!rt_->worker) {
        wrong_role("task", "a Worker");
        return 0;
    }
    return rt_->worker->task(data, dst);
}

std::optional<std::string> TcpServer::taskwait(std::string_view data, int timeout_ms, int dst)
{
    if (!rt_->worker) {
        wrong_role("taskwait", "a Worker");
        return std::nullopt;
    }
    std::string result;
    if (!rt_->worker->taskwait(data, timeout_ms, &result, dst))
        return std::nullopt;
    return result;
}

bool TcpServer::finish(std::string_view result)
{
    if (!rt_->task_worker)
        return wrong_role("finish", "a TaskWorker");
    return rt_->task_worker->finish(result);
}

bool TcpServer::send_message(std::string_view data, int worker_id)
{
    if (rt_->worker)
        return rt_->worker->send_message(data, worker_id);
    if (rt_->task_worker)
        return rt_->task_worker->send_message(data, worker_id);
    if (rt_->user_worker)
        return rt_->user_worker->send_message(data, worker_id);
    return wrong_role("send_message", "a Worker, TaskWorker or UserWorker");
}

bool TcpServer::exists(SessionId s) const { return rt_->sessions && rt_->live_session(s) != nullptr; }

std::optional<ClientInfo> TcpServer::client_info(SessionId s) const
{
    if (!rt_->sessions)
        return std::nullopt;
    SessionSlot* ss = rt_->live_session(s);
    if (!ss)
        return std::nullopt;
    ClientInfo info;
    ClientInfo* out = &info;
    out->peer = InetAddr::from_sockaddr(reinterpret_cast<const struct sockaddr*>(ss->addr), ss->addr_len);
    out->net_worker = session_net(s);
    out->listener = ss->listener;
    out->connect_time = ss->connect_time;
    out->last_time = atomic_load(&ss->last_time);
    out->uid = atomic_load(&ss->uid);
    // The slot may have been reused while we copied: check again.
    if (rt_->live_session(s) != ss)
        return std::nullopt;
    return info;
}

Stats TcpServer::stats() const
{
    Stats st{};
    st.worker_num = rt_->cfg.worker_num;
    st.task_worker_num = rt_->cfg.task_worker_num;
    st.net_worker_num = rt_->cfg.net_worker_num;
    st.user_worker_num = rt_->U();
    const ServerStats* s = rt_->stats;
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
    if (rt_->procs) {
        int first = rt_->first_id(Role::net_worker);
        for (int id = first; id < first + rt_->N(); id++)
            st.hop_yield_count += atomic_load(&rt_->procs[id].hop_yields);
    }
    return st;
}

Metrics TcpServer::metrics() const { return take_metrics(*rt_); }

EventLoop* TcpServer::current_loop() const
{
    if (rt_->worker)
        return &rt_->worker->loop();
    if (rt_->net_worker)
        return &rt_->net_worker->loop();
    if (rt_->user_worker)
        return &rt_->user_worker->loop();
    return nullptr;
}

EventLoop* TcpServer::loop() const
{
    if (rt_->worker)
        return &rt_->worker->loop();
    if (rt_->user_worker)
        return &rt_->user_worker->loop();
    return nullptr;  // a question, not an action: null is the answer
}

EventLoop::TimerId TcpServer::run_every(long long ms, EventLoop::Callback cb)
{
    EventLoop* l = current_loop();
    if (!l) {
        wrong_role("run_every", "a Worker, NetWorker or UserWorker");
        return 0;
    }
    return l->run_every(ms, std::move(cb));
}

EventLoop::TimerId TcpServer::run_after(long long ms, EventLoop::Callback cb)
{
    EventLoop* l = current_loop();
    if (!l) {
        wrong_role("run_after", "a Worker, NetWorker or UserWorker");
        return 0;
    }
    return l->run_after(ms, std::move(cb));
}

bool TcpServer::cancel(EventLoop::TimerId id)
{
    EventLoop* l = current_loop();
    return l ? l->cancel(id) : wrong_role("cancel", "a Worker, NetWorker or UserWorker");
}

void TcpServer::stop()
{
    if (rt_->worker)
        rt_->worker->stop();
    else
        wrong_role("stop", "a Worker");
}

bool TcpServer::reload(bool tasks_only)
{
    if (rt_->master_pid == 0)
        return false;
    return ::kill(rt_->master_pid, tasks_only ? SIGUSR2 : SIGUSR1) == 0;
}

bool TcpServer::shutdown()
{
    if (rt_->master_pid == 0)
        return false;
    return ::kill(rt_->master_pid, SIGTERM) == 0;
}

bool TcpServer::stopping() const
{
    if (rt_->user_worker)
        return rt_->user_worker->stopping();
    return rt_->stopping || (rt_->stats && atomic_load(&rt_->stats->shutting_down) != 0);
}

}  // namespace zan
