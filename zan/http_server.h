// HttpServer: a TcpServer with an HTTP/1.1 protocol layer. NetWorkers
// frame whole requests with an HttpParser per connection and answer bad
// input themselves (400, 413, 414, 431, 501, 505, 408 on a slow header
// section) so Workers only ever see valid requests; Workers parse the
// request and run on_request(request, response). Keep-alive, pipelining
// (replies strictly in request order), HEAD and Expect: 100-continue are
// handled here. The members of TcpServer that would bypass this layer
// are not accessible on an HttpServer.
#ifndef ZAN_HTTP_SERVER_H
#define ZAN_HTTP_SERVER_H

#include <time.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "zan/http_parser.h"
#include "zan/http_request.h"
#include "zan/http_response.h"
#include "zan/tcp_server.h"

namespace zan {

struct HttpConfig {
    HttpLimits limits;
    int header_timeout_ms = 10000;     // 408 when a header section takes longer
    int keepalive_timeout_ms = 75000;  // idle keep-alive connections are closed after this
    int max_keepalive_requests = 1000; // requests per connection (0: no limit)
    std::string server_name = "zan";
    // When set, a Worker answers GET (and HEAD) of this path itself with
    // the server's figures in the Prometheus text format (Metrics); the
    // application never sees those requests. Empty: off.
    std::string metrics_path;
    // The access log file (empty: none): one line per response in nginx's
    // combined format plus the request time, see zan_http_server(3).
    std::string access_log;
    // Request bodies of at least this many bytes (by Content-Length), and
    // every chunked one, are streamed: on_request runs once the header
    // section is in, with req.body empty and req.streamed set, and the
    // body comes to HttpResponse::read_body() as it arrives, a window of
    // stream_window bytes at a time. 0: never; every body comes whole in
    // req.body (limits.max_body applies either way).
    size_t stream_body_from = 0;
    size_t stream_window = 256u << 10;
};

class HttpServer;
class AccessLog;
struct AccessRecord;
class HttpConnProtocol;
class BodyStreams;
using RequestCallback = std::function<void(HttpServer&, HttpRequest&, HttpResponse&)>;

// A TcpServer privately: it re-exports the members an HTTP application
// uses, and keeps to itself those that would bypass the protocol layer
// (on_receive, on_drained, set_frame_hook, set_protocol, send, close, reply,
// bind, acknowledge, watch_output).
class HttpServer : private TcpServer {
public:
    explicit HttpServer(const ServerConfig& cfg = ServerConfig(), const HttpConfig& hc = HttpConfig());
    HttpServer(const std::string& host, int port, const ServerConfig& cfg = ServerConfig(),
               const HttpConfig& hc = HttpConfig());
    ~HttpServer() override;

    // Set-up, in the Master before start() (zan_tcp_server(3)).
    using TcpServer::config;
    using TcpServer::error;
    using TcpServer::listen;
    using TcpServer::port;
    using TcpServer::add_process;
    using TcpServer::start;
    // Callbacks of the process model; on_connect and on_close tell of
    // client connections (on_request handles what they send).
    using TcpServer::on_start;
    using TcpServer::on_shutdown;
    using TcpServer::on_worker_start;
    using TcpServer::on_worker_stop;
    using TcpServer::on_worker_error;
    using TcpServer::on_connect;
    using TcpServer::on_close;
    using TcpServer::on_task;
    using TcpServer::on_finish;
    using TcpServer::on_pipe_message;
    // From callbacks.
    using TcpServer::task;
    using TcpServer::taskwait;
    using TcpServer::finish;
    using TcpServer::send_message;
    using TcpServer::exists;
    using TcpServer::client_info;
    using TcpServer::stats;
    using TcpServer::metrics;
    using TcpServer::loop;
    using TcpServer::run_every;
    using TcpServer::run_after;
    using TcpServer::cancel;
    using TcpServer::stop;
    using TcpServer::reload;
    using TcpServer::shutdown;
    using TcpServer::stopping;
    using TcpServer::role;
    using TcpServer::worker_id;
    using TcpServer::master_pid;

    void on_request(RequestCallback cb) { on_request_ = std::move(cb); }
    HttpConfig& http_config() { return hc_; }

    // A complete error response with a small HTML body (used by NetWorkers
    // for bad input and by Workers for failures).
    std::string error_response(int status, bool close) const;
    // The Date header value, cached per second.
    const std::string& date();
    // t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110
    // 5.6.7), the form of Date and Last-Modified.
    static std::string http_date(time_t t);

protected:
    void before_start() override;

private:
    friend class HttpResponse;
    friend class HttpConnProtocol;
    Runtime& rt() { return server_runtime(*this); }
    const Runtime& rt() const { return server_runtime(*this); }
    void install();
    void handle(SessionId s, std::string_view raw);
    void serve(SessionId s, uint32_t seq, bool last, HttpRequest& req, std::string_view raw);
    void bad_message(SessionId s, uint32_t seq, std::string_view raw);
    bool body_open(SessionId s) const;
    bool read_body(SessionId s, HttpResponse::BodyReader reader);
    bool body_reading(SessionId s, bool on);
    void response_done(SessionId s, bool streamed);
    void watch_unsent(SessionId s, size_t below, std::function<void()> cb);
    void drained(SessionId s);
    bool reply(SessionId s, std::string_view head, std::string_view body, int flags);
    bool reply_file(SessionId s, const std::string& path, uint64_t offset, uint64_t length,
                    int flags);
    void refused(SessionId s);
    size_t unsent(SessionId s) const;
    void count_status(int status);
    void serve_metrics(HttpRequest& req, HttpResponse& resp);

    HttpConfig hc_;
    RequestCallback on_request_;
    HttpParser parser_;
    std::unique_ptr<BodyStreams> streams_;  // streamed request bodies (made when first needed)
    // Responses waiting for their connection's output to drain
    // (HttpResponse::on_unsent_below), by session.
    std::unordered_map<SessionId, std::function<void()>> drain_waits_;
    HttpResponse resp_;      // reused for every request (keeps its capacity)
    std::string head_buf_;   // status line and headers being built
    // The status line and the Server and Date lines that begin every
    // response head. With the standard reason phrase (reason empty) it is
    // cached for the last status, second and server name, so most heads
    // start with one copy.
    std::string_view head_start(int status, const std::string& reason);

    std::string date_;
    long long date_sec_ = 0;
    std::string start_;  // head_start() with the standard reason, for:
    int start_status_ = -1;
    long long start_sec_ = -1;
    std::string start_name_;
    std::string custom_start_;  // head_start() with the application's reason

    // The access log of this process (Workers and NetWorkers, when
    // hc_.access_log is set; made after fork), and what feeds it.
    std::unique_ptr<AccessLog> access_;
    void install_access_log();
    bool access_log_file(std::string* err);
    size_t peer_text(SessionId s, char* out) const;
    void log_response(const HttpResponse& r);
    std::shared_ptr<const AccessRecord> access_record(const HttpResponse& r) const;
    void log_refusal(SessionId s, int status, std::string_view request, std::string_view reply,
                     long long start_ms);
};

}  // namespace zan

#endif
