// The example of zan_tcp_client(3): a line server whose Workers pass each
// line to a backend line server over one TcpClient per Worker and relay
// the answers, in order, to the sessions that asked.
// make check builds it and the tests run it in front of zan-echod; keep
// it identical to the man page.

#include <stdio.h>
#include <stdlib.h>

#include <deque>
#include <memory>
#include <string>

#include "zan/tcp_client.h"
#include "zan/tcp_server.h"

using namespace zan;

int main(int argc, char **argv)
{
    std::string backend = argc > 1 ? argv[1] : "127.0.0.1";
    uint16_t backend_port = argc > 2 ? atoi(argv[2]) : 9502;
    int port = argc > 3 ? atoi(argv[3]) : 9503;

    ServerConfig cfg;
    cfg.worker_num = 2;
    cfg.open_eof_check = true;  // one message per line
    cfg.package_eof = "\n";
    TcpServer srv("127.0.0.1", port, cfg);

    // One of each per Worker: every process has its own copy.
    std::unique_ptr<TcpClient> up;
    std::deque<SessionId> waiting;  // who asked, oldest first

    srv.on_start([](TcpServer &s) {
        printf("listening on 127.0.0.1:%d\n", s.port());
        fflush(stdout);
    });
    srv.on_worker_start([&](TcpServer &s, int) {
        EventLoop *loop = s.loop();
        if (loop == nullptr)
            return;  // a TaskWorker: it has no loop
        up = std::make_unique<TcpClient>(*loop);
        up->set_connect_timeout(1000);
        up->on_data([&](TcpClient &, Buffer &in) {
            size_t eol;
            while (!waiting.empty() &&
                   (eol = in.view().find('\n')) != std::string_view::npos) {
                srv.send(waiting.front(), in.view().substr(0, eol + 1));
                waiting.pop_front();
                in.consume(eol + 1);
            }
        });
        up->on_close([&](TcpClient &c, int, const std::string &why) {
            log(Level::warn, "backend: %s", why.c_str());
            for (SessionId id : waiting)
                srv.send(id, "error backend unavailable\n");
            waiting.clear();
            srv.run_after(500, [&] { c.connect(backend, backend_port); });
        });
        if (!up->connect(backend, backend_port))
            log(Level::error, "backend: %s", up->error().c_str());
    });
    srv.on_receive([&](TcpServer &s, SessionId id, std::string_view line) {
        if (!up->connected() && !up->connecting()) {
            s.send(id, "error backend unavailable\n");
            return;
        }
        waiting.push_back(id);
        up->send(line);  // queued while connecting or while the backend is slow
    });
    return srv.start();
}
