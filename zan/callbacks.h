// Callback types of a TcpServer, in one place (like muduo's Callbacks.h).
// Each callback runs in exactly one role:
//   on_start, on_shutdown, on_worker_error ........ Master
//   on_worker_start, on_worker_stop ............... Worker and TaskWorker
//   on_connect, on_receive, on_close, on_finish ... Worker
//   on_drained .................................... Worker
//   on_pipe_message ............................... Worker
//   on_task ....................................... TaskWorker
#ifndef ZAN_CALLBACKS_H
#define ZAN_CALLBACKS_H

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "zan/session_id.h"

namespace zan {

class TcpServer;

// (worker id << 48) | (pid << 24) | sequence, in 16, 24 and 24 bits: the
// submitting Worker's id, the pid of the submitting process and its own
// count of tasks, from 1. Never 0 (a pid is not). A result goes back to
// that process.
using TaskId = uint64_t;
// Length of the next complete message in data[0, len): > 0 a message of
// that many bytes, 0 need more bytes, -1 bad input (the connection is
// closed). Runs in NetWorkers.
using FrameHook = std::function<long(const char* data, size_t len)>;

using ServerCallback = std::function<void(TcpServer&)>;
using WorkerCallback = std::function<void(TcpServer&, int worker_id)>;
using WorkerErrorCallback =
    std::function<void(TcpServer&, int worker_id, pid_t pid, int exit_code, int signo)>;
using SessionCallback = std::function<void(TcpServer&, SessionId)>;
using ReceiveCallback = std::function<void(TcpServer&, SessionId, std::string_view data)>;
// Returns the result, or nullopt when the task calls finish() itself or
// has no result.
using TaskCallback = std::function<std::optional<std::string>(
    TcpServer&, TaskId, int src_worker_id, std::string_view data)>;
using FinishCallback = std::function<void(TcpServer&, TaskId, std::string_view result)>;
using PipeMessageCallback =
    std::function<void(TcpServer&, int src_worker_id, std::string_view data)>;
using ProcessCallback = std::function<void(TcpServer&)>;

struct Callbacks {
    ServerCallback on_start;
    ServerCallback on_shutdown;
    WorkerCallback on_worker_start;
    WorkerCallback on_worker_stop;
    WorkerErrorCallback on_worker_error;
    SessionCallback on_connect;
    ReceiveCallback on_receive;
    SessionCallback on_close;
    SessionCallback on_drained;
    TaskCallback on_task;
    FinishCallback on_finish;
    PipeMessageCallback on_pipe_message;
};

}  // namespace zan

#endif
