// The example of zan_http_client(3): an HTTP server whose Workers answer
// each request by calling a backend HTTP server through one HttpClient
// per Worker (a keep-alive pool) and relaying its status and body.
// make check builds it; keep it identical to the man page.

#include <stdio.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "zan/http_client.h"
#include "zan/http_server.h"

using namespace zan;

int main(int argc, char **argv)
{
    std::string backend = argc > 1 ? argv[1] : "127.0.0.1";
    uint16_t backend_port = argc > 2 ? atoi(argv[2]) : 8080;
    int port = argc > 3 ? atoi(argv[3]) : 9504;

    ServerConfig cfg;
    cfg.worker_num = 2;
    HttpServer srv("127.0.0.1", port, cfg);

    // One per Worker: every process has its own pool.
    std::unique_ptr<HttpClient> up;

    srv.on_start([](TcpServer &s) {
        printf("listening on 127.0.0.1:%d\n", s.port());
        fflush(stdout);
    });
    srv.on_worker_start([&](TcpServer &s, int) {
        EventLoop *loop = s.loop();
        if (loop == nullptr)
            return;  // a TaskWorker: it has no loop
        HttpClientOptions o;
        o.max_connections = 32;
        o.max_idle = 8;
        o.connect_timeout_ms = 1000;
        o.total_timeout_ms = 5000;
        up = std::make_unique<HttpClient>(*loop, o);
    });
    srv.on_request([&](HttpServer &, HttpRequest &req, HttpResponse &resp) {
        HttpClientRequest call;
        call.method = req.method;
        call.target = req.target;
        call.body = req.body;
        // Keep the response: it is answered when the backend has.
        auto kept = std::make_shared<HttpResponse>(resp.detach());
        up->request(backend, backend_port, std::move(call),
                    [kept](HttpClientResponse &res) {
            if (!res.ok()) {
                log(Level::warn, "backend: %s", res.error_text.c_str());
                kept->set_status(res.error == HttpClientError::kTotalTimeout ? 504 : 502);
                kept->end("backend unavailable\n");
                return;
            }
            kept->set_status(res.status);
            if (const std::string *type = res.header("Content-Type"))
                kept->set_header("Content-Type", *type);
            kept->end(res.body);  // false if the client went away: nothing leaks
        });
    });
    return srv.start();
}
