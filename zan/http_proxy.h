// HttpProxy: a reverse proxy to one upstream HTTP/1.1 server, for the
// on_request handler of an HttpServer Worker. forward() takes the
// request's response over, sends the request on through an HttpClient
// (whose keep-alive pool it owns) and relays the answer: the status, the
// end-to-end header fields (hop-by-hop ones and every field the
// Connection header names are removed, RFC 9110 7.6.1; Via is added both
// ways, X-Forwarded-For/-Proto/-Host upstream) and the body, streamed as
// it comes with its length or chunked, never held whole; so is a request
// body the server streams (HttpConfig::stream_body_from). 502 when the
// upstream cannot be reached or answers badly, 504 when it is silent for
// the timeout; a response that fails mid-body closes the client's
// connection, so a cut body is never passed as complete.
//
// Owns its HttpClient (and so the upstream connections) and the kept
// responses of requests in flight; the destructor cancels those and
// closes their clients' connections. Made in a Worker after fork, on its
// loop; closed() must be wired to the server's on_close so a client that
// goes away cancels its upstream request. Not thread-safe. See
// zan_http_proxy(3).
#ifndef ZAN_HTTP_PROXY_H
#define ZAN_HTTP_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zan/event_loop.h"
#include "zan/http_client.h"
#include "zan/http_request.h"
#include "zan/http_response.h"
#include "zan/session_id.h"

namespace zan {

class HttpServer;

struct HttpProxyOptions {
    // Connecting, and then waiting for each byte of the response: 504
    // past it (0 = no limit).
    long long timeout_ms = 60000;
    size_t max_connections = 1024;     // to the upstream, per Worker; more requests wait
    size_t max_idle = 256;             // idle keep-alive connections kept per Worker
    long long idle_timeout_ms = 60000; // an idle upstream connection is closed after this
    // Upstream reading pauses while more than this many reply bytes wait
    // for a slow client (it must stay below buffer_output_size).
    size_t max_unsent = 1u << 20;
    // A streamed request body (HttpRequest::streamed) goes up as it
    // comes; reading the client pauses while this many of its bytes wait
    // for the upstream connection.
    size_t upload_buffer = 256u << 10;
    std::string via = "1.1 zan";       // the Via field value added both ways
};

class HttpProxy {
public:
    // host: a numeric address or an /etc/hosts name.
    HttpProxy(EventLoop& loop, std::string host, uint16_t port,
              const HttpProxyOptions& opts = HttpProxyOptions());
    ~HttpProxy();
    HttpProxy(const HttpProxy&) = delete;
    HttpProxy& operator=(const HttpProxy&) = delete;

    // Forwards req (its body is moved out) and takes resp over: it is
    // finished later, from the loop. srv is the server running on_request
    // (for the client's address).
    void forward(HttpServer& srv, HttpRequest& req, HttpResponse& resp);
    // The client connection s closed: its requests in flight are
    // cancelled (their upstream connections closed). Call from on_close.
    void closed(SessionId s);

    size_t active() const { return active_; }  // requests in flight
    HttpClient& client() { return client_; }

private:
    struct Exchange;

    void on_head(Exchange* ex, HttpClientResponse& head);
    void on_body(Exchange* ex, std::string_view chunk);
    void on_upload(Exchange* ex, std::string_view data, bool end, bool ok);
    void on_done(Exchange* ex, HttpClientResponse& res);
    bool write(Exchange* ex, std::string_view data);
    void fail(Exchange* ex);
    void release(Exchange* ex);
    void parse_connection(const std::vector<HttpHeader>& headers);
    bool hop_by_hop(std::string_view name) const;

    EventLoop& loop_;
    std::string host_;
    uint16_t port_;
    HttpProxyOptions opts_;
    HttpClient client_;
    // Exchanges in flight (a list, for closed()) and spare ones for reuse.
    Exchange* head_ = nullptr;
    std::vector<std::unique_ptr<Exchange>> all_;
    std::vector<Exchange*> free_;
    size_t active_ = 0;
    std::vector<std::string_view> conn_tokens_;  // of the message being relayed
    std::string xff_;                            // scratch for X-Forwarded-For
};

}  // namespace zan

#endif
