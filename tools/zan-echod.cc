// zan-echod: the demo TCP server of zan, and the contract our integration
// tests and operators use. A newline-delimited protocol on TcpServer:
//   task <text>  -> "task-done <text>" (via a TaskWorker and on_finish)
//   whoami       -> "worker <id> pid <pid>"
//   stats        -> one line of JSON (TcpServer::stats())
//   quit         -> the server closes the connection
//   anything else is echoed back as received.
// Prints "listening on H:P" once every process is up; exits 0 on SIGTERM.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <unordered_map>

#include "tools/server_options.h"
#include "zan/tcp_server.h"

static void usage()
{
    fprintf(stderr,
            "usage: zan-echod [--host H] [--port P] [--worker-num N] [--net-worker-num N]\n"
            "                 [--task-worker-num N] [--user-process-num N] [--max-request N]\n"
            "                 [--task-max-request N] [--dispatch-mode N] [--max-connection N]\n"
            "                 [--max-wait-time S] [--pipe-buffer-size B] [--pid-file F] [--log-file F]\n"
            "                 [--log-level L] [--send-timeout MS] [--hop-yield N] [--user U] [--group G] [--daemonize]\n"
            "                 [--net-worker-slice US] [--upgrade-timeout S] [--discard-timeout-request]\n"
            "                 [--heartbeat-check-interval S] [--heartbeat-idle-time S]\n");
    exit(2);
}

struct Args {
    std::string host = "127.0.0.1";
    int port = 9502;
    int user_procs = 0;
    zan::ServerConfig cfg;
};

// Exits 2 on bad usage.
static Args parse_args(int argc, char** argv)
{
    Args r;
    zan::ServerConfig& cfg = r.cfg;
    cfg.task_worker_num = 1;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--discard-timeout-request") {
            cfg.discard_timeout_request = true;
            continue;
        }
        if (a == "--daemonize") {
            cfg.daemonize = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        std::string v = argv[++i];
        if (zan_tools::take_server_option("zan-echod", a, v, &r.host, &r.port, &cfg, usage))
            continue;
        auto number = [&](long lo, long hi) {
            return zan_tools::number_or_usage("zan-echod", a, v, lo, hi, usage);
        };
        if (a == "--task-worker-num") cfg.task_worker_num = static_cast<int>(number(0, INT_MAX));
        else if (a == "--user-process-num") r.user_procs = static_cast<int>(number(0, 1024));
        else if (a == "--task-max-request") cfg.task_max_request = number(0, LONG_MAX);
        else if (a == "--dispatch-mode") cfg.dispatch_mode = static_cast<int>(number(0, INT_MAX));
        else if (a == "--max-connection") cfg.max_connection = static_cast<int>(number(0, INT_MAX));
        else if (a == "--max-wait-time") cfg.max_wait_time = static_cast<int>(number(0, INT_MAX));
        else if (a == "--heartbeat-check-interval") cfg.heartbeat_check_interval = static_cast<int>(number(0, INT_MAX));
        else if (a == "--heartbeat-idle-time") cfg.heartbeat_idle_time = static_cast<int>(number(0, INT_MAX));
        else if (a == "--pipe-buffer-size") cfg.pipe_buffer_size = static_cast<size_t>(number(0, LONG_MAX));
        else if (a == "--user") cfg.user = v;
        else if (a == "--group") cfg.group = v;
        else usage();
    }
    cfg.open_eof_check = true;
    cfg.package_eof = "\n";
    cfg.package_max_length = 1024 * 1024;
    return r;
}

int main(int argc, char** argv)
{
    Args args = parse_args(argc, argv);
    const std::string& host = args.host;
    zan::TcpServer srv(args.cfg);
    if (!srv.listen(host, args.port))
        return 1;
    std::unordered_map<zan::TaskId, zan::SessionId> waiting;  // per Worker process

    srv.on_start([&](zan::TcpServer& s) {
        std::string line = "listening on " + host + ":" + std::to_string(s.port()) + "\n";
        ssize_t n = write(1, line.data(), line.size());
        (void)n;
    });
    srv.on_receive([&](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
        std::string_view line = msg.substr(0, msg.size() - 1);  // drop '\n'
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.rfind("task ", 0) == 0) {
            zan::TaskId t = s.task(line.substr(5));
            if (t)
                waiting[t] = id;
            else
                s.send(id, "error task queue unavailable\n");
        } else if (line == "whoami") {
            s.send(id, "worker " + std::to_string(s.worker_id()) + " pid " +
                           std::to_string(getpid()) + "\n");
        } else if (line == "stats") {
            s.send(id, s.stats().to_json() + "\n");
        } else if (line == "quit") {
            s.close(id);
        } else {
            s.send(id, msg);
        }
    });
    srv.on_task([](zan::TcpServer&, zan::TaskId, int, std::string_view data) {
        return std::optional<std::string>(std::string(data));
    });
    srv.on_finish([&](zan::TcpServer& s, zan::TaskId t, std::string_view result) {
        auto it = waiting.find(t);
        if (it == waiting.end())
            return;
        s.send(it->second, "task-done " + std::string(result) + "\n");
        waiting.erase(it);
    });
    srv.on_close([&](zan::TcpServer&, zan::SessionId) {});
    for (int i = 0; i < args.user_procs; i++) {
        srv.add_process([](zan::TcpServer& s) {
            // A side process: stays up (a periodic timer) until stopped.
            s.run_every(1000, [] {});
        });
    }
    int rc = srv.start();
    if (rc != 0)
        fprintf(stderr, "zan-echod: %s\n", srv.error().c_str());
    return rc;
}
