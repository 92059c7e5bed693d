// HttpClient: asynchronous HTTP/1.1 requests on an EventLoop, with a
// keep-alive pool of TcpClient connections per (host, port). Responses
// are parsed by HttpParser in response mode (Content-Length, chunked or
// close-delimited bodies) and delivered whole to a completion callback,
// or streamed to a body callback as they arrive. A request body is given
// whole or streamed (write_body(), end_body(), with back-pressure).
//
// Owns its connections (each a TcpClient, which owns the socket), the
// requests waiting or in flight and their timers. cancel() and the
// destructor close the connection a request used at once; nothing is
// leaked on any path and no callback runs after the destructor. Callbacks
// run from the loop, never from request(), cancel(), write_body() or
// end_body(), and may issue requests, cancel them or destroy the client.
//
// Used in a process that runs a loop (a Worker or UserWorker reaches its
// own with TcpServer::loop()); never shared across fork. Not thread-safe.
// See zan_http_client(3).
#ifndef ZAN_HTTP_CLIENT_H
#define ZAN_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zan/event_loop.h"
#include "zan/http_message.h"

namespace zan {

enum class HttpClientError {
    kNone,            // a complete response
    kConnect,         // the connection could not be made (refused, unknown host, ...)
    kConnectTimeout,  // no connection within the connect timeout
    kHeaderTimeout,   // no complete response header section in time
    kTotalTimeout,    // no complete response within the total timeout
    kBadResponse,     // the response broke HTTP/1.1 (or a limit)
    kClosed,          // the connection ended before the response was complete
    kReadTimeout,     // no byte of the response for read_timeout_ms
};

// What a request is sent as. The client writes the request line, Host
// (unless a Host field is given) and Content-Length (for a non-empty body,
// and for an empty one unless the method is GET, HEAD, DELETE, OPTIONS or
// TRACE), or for a streamed body Content-Length: content_length or
// Transfer-Encoding: chunked; Content-Length and Transfer-Encoding fields
// given here are dropped.
struct HttpClientRequest {
    std::string method = "GET";
    std::string target = "/";
    std::vector<HttpHeader> headers;
    std::string body;
    // The body is not in `body` (which is ignored) but written later with
    // write_body() and ended with end_body(). content_length >= 0: sent
    // with that Content-Length (exactly that many bytes must be written);
    // -1: sent chunked (Transfer-Encoding: chunked), each write_body() one
    // chunk.
    bool stream_body = false;
    long long content_length = -1;
};

struct HttpClientResponse {
    HttpClientError error = HttpClientError::kNone;
    std::string error_text;          // empty unless error != kNone
    int status = 0;                  // 0 when no status line was read
    std::string reason;
    std::vector<HttpHeader> headers;
    std::vector<HttpHeader> trailers;
    std::string body;                // empty when the body was streamed
    bool ok() const { return error == HttpClientError::kNone; }
    // First field with this name (case-insensitive), or nullptr.
    const std::string* header(std::string_view name) const;
};

struct HttpClientOptions {
    size_t max_connections = 16;      // per (host, port); more requests wait
    size_t max_idle = 4;              // idle keep-alive connections kept per (host, port)
    long long connect_timeout_ms = 0; // 0 = none
    long long header_timeout_ms = 0;  // from sending until the header section ends
    long long total_timeout_ms = 0;   // from request() until the response is complete
    size_t max_body = 64u << 20;      // whole bodies only; a streamed body has no limit
    long long read_timeout_ms = 0;    // longest wait for the next byte once sent (0 = none)
    long long idle_timeout_ms = 0;    // an idle pooled connection is closed after this (0 = never)
    size_t body_high_water = 256u << 10;  // a streamed request body: see on_body_drain()
};

class HttpClient {
public:
    using RequestId = uint64_t;
    // Called once per request (not after cancel()): the response, or the error.
    using DoneCallback = std::function<void(HttpClientResponse& res)>;
    // Streamed body bytes, in order, before the DoneCallback.
    using BodyCallback = std::function<void(std::string_view chunk)>;
    // The status line and header fields of a streamed response, once its
    // header section is in and before any body byte; res.headers are
    // moved here (the DoneCallback then gets none).
    using HeadCallback = std::function<void(HttpClientResponse& head)>;

    explicit HttpClient(EventLoop& loop, const HttpClientOptions& opts = HttpClientOptions());
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Queues a request to host:port (a numeric address or an /etc/hosts
    // name). With a body callback the body is streamed to it, after the
    // head callback (if any). Returns an id for cancel(), never 0; the
    // outcome comes from the loop.
    RequestId request(std::string_view host, uint16_t port, HttpClientRequest req, DoneCallback done,
                      BodyCallback body = nullptr, HeadCallback head = nullptr);
    // Drops a request that has not completed, without calling its
    // callbacks; the connection it used is closed. False if unknown.
    bool cancel(RequestId id);
    // Stops or resumes reading the response of a request in flight (flow
    // control for a streamed body whose consumer is slower). Stopped, the
    // read timeout does not run. False if unknown.
    bool set_reading(RequestId id, bool on);

    // Streamed request bodies (HttpClientRequest::stream_body). The head
    // goes out as soon as the request has a connection; the body follows.
    // Header and read timeouts start once the body is ended and written.
    //
    // Queues body bytes of request id (kept in the request until it has a
    // connection, then written to it); an empty write sends nothing. False
    // when id is unknown (completed, failed, cancelled), not streamed, or
    // its body was ended; writing more than a declared content_length is
    // false too (nothing queued).
    bool write_body(RequestId id, std::string_view data);
    // The body is complete (the last chunk for a chunked one). False as
    // above; false too for a Content-Length body ended short of its length:
    // its connection is closed at once and the request fails from the loop
    // with kClosed.
    bool end_body(RequestId id);
    // Body bytes of id written with write_body() and not yet handed to the
    // socket (held in the request plus in its connection's output buffer;
    // framing not counted). 0 if unknown.
    size_t body_buffered(RequestId id) const;
    // cb runs (from the loop) each time body_buffered(id) falls to 0 after
    // having reached HttpClientOptions::body_high_water: the writer's
    // signal to resume. Replaces a previous one. False if unknown.
    bool on_body_drain(RequestId id, std::function<void()> cb);

    // Requests waiting or in flight, and open connections (busy or idle).
    size_t pending() const { return calls_.size(); }
    size_t connections() const;
    size_t idle_connections() const;
    EventLoop& loop() const { return loop_; }

private:
    struct Call;
    struct Conn;
    struct Pool;

    Pool& pool_for(std::string_view host, uint16_t port);
    void pump(Pool& p);
    void start(Pool& p, Conn* c, Call* call);
    Conn* open(Pool& p, std::string* why);
    void on_data(Conn* c);
    void on_close(Conn* c, int err, const std::string& why);
    void complete(Conn* c);
    void release(Conn* c, bool reusable);
    void drop(Conn* c);
    void fail(Call* call, HttpClientError e, std::string why);
    void finish(Call* call, HttpClientResponse& res);
    void timeout(RequestId id, HttpClientError e);
    void detach(Call* call);
    Call* streaming(RequestId id);
    void put(Call* call, std::string_view head, std::string_view data, std::string_view tail);
    size_t unsent_body(Call* call) const;
    void on_written(Conn* c);
    void body_sent(Conn* c);
    void arm_header_timer(Call* call);
    void drained(Call* call);

    EventLoop& loop_;
    HttpClientOptions opts_;
    std::map<std::string, std::unique_ptr<Pool>> pools_;  // by "host:port"
    Pool* last_pool_ = nullptr;  // the last one used: most clients talk to one server
    std::map<RequestId, std::unique_ptr<Call>> calls_;
    RequestId next_id_ = 1;
    std::shared_ptr<bool> alive_;  // false once destroyed: deferred calls check it
    std::string frame_;            // a chunk being framed (its capacity is kept, up to 256 KiB)
};

}  // namespace zan

#endif
