// The example that opens zan_tcp_server(3): an echo server that hands
// every message to a TaskWorker and sends the task's result back.
// make check compiles and links it; keep it identical to the man page.

#include <optional>
#include <string>
#include <unordered_map>

#include "zan/tcp_server.h"

using namespace zan;

int main()
{
    ServerConfig cfg;
    cfg.task_worker_num = 2;
    TcpServer srv("127.0.0.1", 9503, cfg);
    std::unordered_map<TaskId, SessionId> owner;  // one per Worker
    srv.on_receive([&](TcpServer& s, SessionId id,
                       std::string_view data) {
        if (TaskId t = s.task(data))
            owner[t] = id;      // a TaskWorker does the work
        else
            s.send(id, data);   // refused: answer at once
    });
    srv.on_task([](TcpServer&, TaskId, int, std::string_view data) {
        return std::optional<std::string>(data);
    });
    srv.on_finish([&](TcpServer& s, TaskId t, std::string_view res) {
        auto it = owner.find(t);
        if (it != owner.end()) {
            s.send(it->second, res);
            owner.erase(it);
        }
    });
    return srv.start();
}
