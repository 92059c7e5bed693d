// TcpServer: the public API of the process model.
//
// Construct it with a configuration, add listeners (in the Master, before
// start()), set callbacks with on_*(), optionally add_process(), then call
// start(): it forks NetWorkers, Workers, TaskWorkers and UserWorkers and
// supervises them until SIGTERM/SIGINT. The methods below are called from
// callbacks; each works only in the roles named in its comment and fails
// with a logged error (false / 0) elsewhere. The server object is copied
// into every child by fork; it owns the listening sockets, the shared
// memory, the task queue and the channels (see zan_tcp_server(3)).
#ifndef ZAN_TCP_SERVER_H
#define ZAN_TCP_SERVER_H

#include <stdint.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "zan/callbacks.h"
#include "zan/event_loop.h"
#include "zan/inet_addr.h"
#include "zan/metrics.h"
#include "zan/protocol.h"
#include "zan/role.h"
#include "zan/server_config.h"
#include "zan/stats.h"

namespace zan {

struct Runtime;

struct ClientInfo {
    InetAddr peer;
    int net_worker;
    int listener;
    int64_t connect_time;
    int64_t last_time;
    uint64_t uid;
};

class TcpServer {
public:
    explicit TcpServer(const ServerConfig& cfg = ServerConfig());
    TcpServer(const std::string& host, int port, const ServerConfig& cfg = ServerConfig());
    virtual ~TcpServer();
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;

    // Binds and listens now (Master, before start()). Port 0 picks a free
    // port; port() tells which. Returns false and logs on failure. When
    // listening sockets were passed to the process (systemd socket
    // activation, a binary upgrade: LISTEN_FDS), binds nothing and takes
    // the passed socket bound to host:port (any port for port 0) instead;
    // no such socket is an error, and so is a passed socket left untaken
    // at start().
    bool listen(const std::string& host, int port);
    int port(size_t listener = 0) const;
    ServerConfig& config();
    const std::string& error() const { return error_; }

    void on_start(ServerCallback cb);
    void on_shutdown(ServerCallback cb);
    void on_worker_start(WorkerCallback cb);
    void on_worker_stop(WorkerCallback cb);
    void on_worker_error(WorkerErrorCallback cb);
    void on_connect(SessionCallback cb);
    void on_receive(ReceiveCallback cb);
    void on_close(SessionCallback cb);
    // Worker: the output of a session watched with watch_output() fell to
    // the size asked for, or the connection closed.
    void on_drained(SessionCallback cb);
    void on_task(TaskCallback cb);
    void on_finish(FinishCallback cb);
    void on_pipe_message(PipeMessageCallback cb);
    // Replaces the framing settings with a custom message splitter.
    void set_frame_hook(FrameHook hook);
    // Replaces the framing settings and the frame hook with a protocol
    // object per connection (Master, before start(); see zan_protocol(3)).
    void set_protocol(ProtocolSpec spec);
    // Adds a UserWorker (before start()); returns its index among the
    // UserWorkers (its worker id is worker_num + task_worker_num +
    // net_worker_num + index), or -1 after start().
    int add_process(ProcessCallback cb);

    // Runs the server in this process (the Master) until it is shut down.
    // Returns 0 after a clean shutdown, 1 on a start-up error (see error()).
    int start();

    // ---- from callbacks ----
    bool send(SessionId s, std::string_view data);   // Worker
    bool close(SessionId s);                         // Worker
    bool bind(SessionId s, uint64_t uid);            // Worker
    // Worker, inside on_receive: what it knows of the message (its
    // sequence number and whether it is the connection's last).
    MessageInfo message_info() const;
    // Worker: one frame of the reply to message m of session s; with
    // counted_replies the NetWorker writes replies in message order.
    bool reply(SessionId s, const MessageInfo& m, std::string_view data,
               ReplyMark mark = ReplyMark::end);
    // Worker: bytes of session s's streamed message parts are processed,
    // so its NetWorker may read that many more (ProtocolSpec::stream_window).
    bool acknowledge(SessionId s, size_t bytes);
    // Worker: on_drained(s) runs in this Worker once the bytes s's
    // NetWorker holds for it (its replies sent before this call
    // included) are at most `below`, at once if they are, or when the
    // connection closes; once per call. False when s is gone.
    bool watch_output(SessionId s, size_t below);
    TaskId task(std::string_view data, int dst = -1);  // Worker; 0 on failure
    // Worker: runs a task and waits for its result at most timeout_ms;
    // nullopt on failure or timeout.
    std::optional<std::string> taskwait(std::string_view data, int timeout_ms = 500, int dst = -1);
    bool finish(std::string_view result);            // TaskWorker, inside on_task
    bool send_message(std::string_view data, int worker_id);  // Worker, TaskWorker, UserWorker
    bool exists(SessionId s) const;                  // any process
    std::optional<ClientInfo> client_info(SessionId s) const;  // any process; nullopt: not live
    Stats stats() const;                             // any process after start()
    // Every monitoring figure, per process and summed; to_prometheus()
    // gives the text an admin port can serve (any process after start()).
    Metrics metrics() const;
    // The calling process's event loop: a Worker's or a UserWorker's;
    // null in the Master, a NetWorker or a TaskWorker (which blocks by
    // design), so code shared by several roles can ask. Watch descriptors
    // on it, add timers, defer calls, run a TcpClient (zan_event_loop(3)).
    EventLoop* loop() const;
    // Timers on the calling process's loop (Worker, NetWorker, UserWorker),
    // named as on EventLoop: 0 / false and logged in other roles.
    EventLoop::TimerId run_every(long long ms, EventLoop::Callback cb);
    EventLoop::TimerId run_after(long long ms, EventLoop::Callback cb);
    bool cancel(EventLoop::TimerId id);
    void stop();        // Worker: finish the current pass and exit (respawned)
    bool reload(bool tasks_only = false);  // any child: signals the Master
    bool shutdown();    // any process: graceful stop

    Role role() const;
    int worker_id() const;
    pid_t master_pid() const;
    bool stopping() const;

protected:
    // Called by start() before anything else (subclasses finish their
    // configuration here).
    virtual void before_start() {}

private:
    // The library's own modules reach the processes' shared state
    // through these (zan/detail/process.h).
    friend Runtime& server_runtime(TcpServer& server);
    friend const Runtime& server_runtime(const TcpServer& server);

    EventLoop* current_loop() const;
    bool take_passed(const InetAddr& addr);
    bool wrong_role(const char* what, const char* roles) const;

    // On the heap so that this header needs none of its internals; a
    // child inherits it with the rest of the server through fork.
    std::unique_ptr<Runtime> rt_;
    std::string error_;
};

}  // namespace zan

#endif
