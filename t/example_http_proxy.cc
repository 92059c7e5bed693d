// The example of zan_http_proxy(3): a reverse proxy, one HttpProxy per
// Worker. Usage: example_http_proxy [upstream-host [upstream-port [port]]];
// prints "listening on 127.0.0.1:<port>" once it serves.
#include <stdio.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "zan/http_proxy.h"
#include "zan/http_server.h"

using namespace zan;

int main(int argc, char **argv)
{
    std::string upstream = argc > 1 ? argv[1] : "127.0.0.1";
    uint16_t upstream_port = argc > 2 ? atoi(argv[2]) : 8080;
    int port = argc > 3 ? atoi(argv[3]) : 8000;

    ServerConfig cfg;
    cfg.worker_num = 2;
    cfg.open_tcp_nodelay = true;  // relayed pieces must not wait for ACKs
    HttpServer srv("127.0.0.1", port, cfg);
    std::unique_ptr<HttpProxy> proxy;  // this Worker's

    srv.on_start([](TcpServer &s) {
        printf("listening on 127.0.0.1:%d\n", s.port());
        fflush(stdout);
    });
    srv.on_worker_start([&](TcpServer &s, int) {
        if (s.loop() != nullptr)  // not in a TaskWorker
            proxy = std::make_unique<HttpProxy>(*s.loop(), upstream, upstream_port);
    });
    srv.on_worker_stop([&](TcpServer &, int) { proxy.reset(); });
    srv.on_close([&](TcpServer &, SessionId s) {
        if (proxy)
            proxy->closed(s);  // a client that leaves cancels its request
    });
    srv.on_request([&](HttpServer &s, HttpRequest &req, HttpResponse &resp) {
        proxy->forward(s, req, resp);
    });
    return srv.start();
}
