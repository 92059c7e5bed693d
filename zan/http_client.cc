#include "zan/http_client.h"

#include <errno.h>
#include <stdio.h>

#include <algorithm>
#include <deque>
#include <utility>

#include "zan/detail/http_chars.h"
#include "zan/http_parser.h"
#include "zan/tcp_client.h"

namespace zan {

using http_chars::iequals;

// One request, from request() until its callback (or cancel()).
struct HttpClient::Call {
    RequestId id = 0;
    Pool* pool = nullptr;
    std::string method;
    std::string wire;  // the request as sent (streamed: what waits for a connection)
    bool idempotent = false;
    bool retried = false;
    DoneCallback done;
    BodyCallback body;
    HeadCallback head;
    Conn* conn = nullptr;  // the connection carrying it, if any
    EventLoop::TimerId header_timer = 0;
    EventLoop::TimerId total_timer = 0;

    // A streamed body. Offsets count the bytes of the request as written
    // (head, chunk framing and body): `produced` of them exist, the first
    // `handed` went to the connection, which has put all but its
    // buffered() ones on the socket.
    bool stream = false;
    long long content_length = -1;  // -1: chunked
    unsigned long long body_written = 0;
    bool body_ended = false;        // end_body() was called
    bool body_sent = false;         // ... and every byte is on the socket
    bool drain_due = false;         // body_buffered() reached the high-water mark
    uint64_t produced = 0;
    uint64_t handed = 0;
    // [begin, end) of the body bytes not known to be on the socket, so
    // that body_buffered() leaves the framing out; pruned as they go.
    std::deque<std::pair<uint64_t, uint64_t>> pieces;
    uint64_t piece_bytes = 0;  // their total length
    std::function<void()> drain_cb;
};

// One connection of a pool: busy with one call, or idle.
struct HttpClient::Conn {
    Pool* pool;
    TcpClient tcp;
    HttpParser parser;
    Call* call = nullptr;
    bool connected = false;
    bool reused = false;    // it carried a response before this call
    bool got_byte = false;  // a byte of the current response arrived
    bool head_done = false; // the head callback ran for the current response
    std::string chunk;      // streamed body bytes not yet delivered

    Conn(Pool* p, EventLoop& loop, const HttpLimits& lim)
        : pool(p), tcp(loop), parser(lim, true, HttpParser::kResponses) {}
};

struct HttpClient::Pool {
    std::string host;
    uint16_t port = 0;
    std::string host_field;
    std::vector<std::unique_ptr<Conn>> conns;  // all, busy or idle
    std::vector<Conn*> idle;
    std::deque<Call*> queue;  // calls waiting for a connection
};

const std::string* HttpClientResponse::header(std::string_view name) const
{
    for (const HttpHeader& h : headers)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

static bool idempotent(std::string_view m)
{
    return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

HttpClient::HttpClient(EventLoop& loop, const HttpClientOptions& opts)
    : loop_(loop), opts_(opts), alive_(std::make_shared<bool>(true))
{
    if (opts_.max_connections == 0) opts_.max_connections = 1;
}

HttpClient::~HttpClient()
{
    *alive_ = false;
    for (auto& kv : calls_) {
        if (kv.second->header_timer) loop_.cancel(kv.second->header_timer);
        if (kv.second->total_timer) loop_.cancel(kv.second->total_timer);
    }
    pools_.clear();  // closes every connection
    calls_.clear();
}

size_t HttpClient::connections() const
{
    size_t n = 0;
    for (auto& kv : pools_) n += kv.second->conns.size();
    return n;
}

size_t HttpClient::idle_connections() const
{
    size_t n = 0;
    for (auto& kv : pools_) n += kv.second->idle.size();
    return n;
}

HttpClient::Pool& HttpClient::pool_for(std::string_view host, uint16_t port)
{
    if (last_pool_ && last_pool_->port == port && last_pool_->host == host)
        return *last_pool_;  // no key to build, no map to search
    std::string key = std::string(host) + ":" + std::to_string(port);
    std::unique_ptr<Pool>& p = pools_[key];
    if (!p) {
        p = std::make_unique<Pool>();
        p->host = std::string(host);
        p->port = port;
        p->host_field = host.find(':') != std::string_view::npos ? "[" + p->host + "]" : p->host;
        if (port != 80) p->host_field += ":" + std::to_string(port);
    }
    last_pool_ = p.get();
    return *p;
}

HttpClient::RequestId HttpClient::request(std::string_view host, uint16_t port, HttpClientRequest req,
                                          DoneCallback done, BodyCallback body, HeadCallback head)
{
    Pool& p = pool_for(host, port);
    auto call = std::make_unique<Call>();
    Call* c = call.get();
    c->id = next_id_++;
    c->pool = &p;
    c->method = req.method;
    c->idempotent = idempotent(req.method);
    c->done = std::move(done);
    c->body = std::move(body);
    if (c->body)
        c->head = std::move(head);
    c->stream = req.stream_body;
    c->content_length = req.content_length < 0 ? -1 : req.content_length;

    std::string& w = c->wire;
    if (c->stream) req.body.clear();
    size_t size = 96 + req.method.size() + req.target.size() + p.host_field.size() + req.body.size();
    for (const HttpHeader& h : req.headers) size += h.name.size() + h.value.size() + 4;
    w.reserve(size);  // one allocation for the whole request
    w.append(req.method).append(" ").append(req.target).append(" HTTP/1.1\r\n");
    bool has_host = false;
    for (const HttpHeader& h : req.headers) {
        if (iequals(h.name, "content-length") || iequals(h.name, "transfer-encoding")) continue;
        if (iequals(h.name, "host")) has_host = true;
        w.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    if (!has_host) w.append("Host: ").append(p.host_field).append("\r\n");
    bool bodyless = req.method == "GET" || req.method == "HEAD" || req.method == "DELETE" ||
                    req.method == "OPTIONS" || req.method == "TRACE";
    if (c->stream && c->content_length < 0)
        w.append("Transfer-Encoding: chunked\r\n");
    else if (c->stream)
        w.append("Content-Length: ").append(std::to_string(c->content_length)).append("\r\n");
    else if (!req.body.empty() || !bodyless)
        w.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
    w.append("\r\n").append(req.body);
    c->produced = w.size();

    RequestId id = c->id;
    calls_.emplace(id, std::move(call));
    if (opts_.total_timeout_ms > 0)
        c->total_timer = loop_.run_after(opts_.total_timeout_ms, [this, id] {
            timeout(id, HttpClientError::kTotalTimeout);
        });
    p.queue.push_back(c);
    pump(p);
    return id;
}

bool HttpClient::cancel(RequestId id)
{
    auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    Call* call = it->second.get();
    Pool& p = *call->pool;
    detach(call);
    calls_.erase(it);
    pump(p);
    return true;
}

bool HttpClient::set_reading(RequestId id, bool on)
{
    auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    Call* call = it->second.get();
    if (Conn* c = call->conn) {
        c->tcp.set_reading(on);
        // A streamed body still going out: the read timeout is not due yet.
        bool sent = !call->stream || call->body_sent;
        c->tcp.set_read_timeout(on && sent ? opts_.read_timeout_ms : 0);
    }
    return true;
}

// The call of id while its body may still be written, or nullptr.
HttpClient::Call* HttpClient::streaming(RequestId id)
{
    auto it = calls_.find(id);
    if (it == calls_.end() || !it->second->stream || it->second->body_ended) return nullptr;
    return it->second.get();
}

bool HttpClient::write_body(RequestId id, std::string_view data)
{
    Call* call = streaming(id);
    if (!call) return false;
    if (call->content_length >= 0 &&
        data.size() > static_cast<unsigned long long>(call->content_length) - call->body_written)
        return false;
    if (data.empty()) return true;  // a chunk of size 0 would end the body
    call->body_written += data.size();
    char size[24] = "";
    int n = 0;
    if (call->content_length < 0) n = snprintf(size, sizeof size, "%zx\r\n", data.size());
    uint64_t begin = call->produced + static_cast<uint64_t>(n);
    if (!call->pieces.empty() && call->pieces.back().second == begin)
        call->pieces.back().second += data.size();  // Content-Length pieces join up
    else
        call->pieces.emplace_back(begin, begin + data.size());
    call->piece_bytes += data.size();
    put(call, std::string_view(size, static_cast<size_t>(n)), data, n > 0 ? "\r\n" : "");
    if (unsent_body(call) >= opts_.body_high_water) call->drain_due = true;
    return true;
}

bool HttpClient::end_body(RequestId id)
{
    Call* call = streaming(id);
    if (!call) return false;
    call->body_ended = true;
    long long missing = call->content_length - static_cast<long long>(call->body_written);
    if (call->content_length >= 0 && missing > 0) {
        // The server would wait for the rest, or take the next request's
        // bytes for it: the connection goes now, the failure comes from
        // the loop as any other.
        std::string why = "request body to " + call->pool->host_field + " ended " +
                          std::to_string(missing) + " bytes short of its Content-Length";
        Pool& p = *call->pool;
        detach(call);
        call->pieces.clear();  // gone with the connection
        call->piece_bytes = 0;
        pump(p);
        std::weak_ptr<bool> alive = alive_;
        loop_.defer([this, alive, id, why] {
            auto a = alive.lock();
            if (!a || !*a) return;
            auto it = calls_.find(id);
            if (it != calls_.end()) fail(it->second.get(), HttpClientError::kClosed, why);
        });
        return false;
    }
    if (call->content_length < 0) put(call, "0\r\n\r\n", "", "");
    if (call->conn) body_sent(call->conn);
    return true;
}

size_t HttpClient::body_buffered(RequestId id) const
{
    auto it = calls_.find(id);
    return it == calls_.end() ? 0 : unsent_body(it->second.get());
}

bool HttpClient::on_body_drain(RequestId id, std::function<void()> cb)
{
    auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    it->second->drain_cb = std::move(cb);
    return true;
}

// Appends head, data and tail to the request: to its connection, or to
// the bytes it keeps until it has one.
void HttpClient::put(Call* call, std::string_view head, std::string_view data,
                     std::string_view tail)
{
    size_t n = head.size() + data.size() + tail.size();
    call->produced += n;
    if (!call->conn) {
        call->wire.append(head).append(data).append(tail);
        return;
    }
    call->handed += n;
    if (head.empty() && tail.empty()) {
        call->conn->tcp.send(data);
        return;
    }
    // One send: a chunk's framing in a segment of its own would cost a
    // packet each (TCP_NODELAY).
    frame_.clear();
    frame_.append(head).append(data).append(tail);
    call->conn->tcp.send(frame_);
    if (frame_.capacity() > (256u << 10)) std::string().swap(frame_);
}

// Body bytes of a streamed call not yet on the socket (const for
// body_buffered(): dropping the pieces that are out changes no answer).
// The connection's output buffer holds the last buffered() bytes handed
// to it (or more, left by an earlier request: then this counts high,
// never low).
size_t HttpClient::unsent_body(Call* call) const
{
    if (!call->stream) return 0;
    uint64_t sent = 0;
    if (call->conn)
        sent = call->handed - std::min<uint64_t>(call->handed, call->conn->tcp.buffered());
    auto& pieces = call->pieces;
    while (!pieces.empty() && pieces.front().second <= sent) {
        call->piece_bytes -= pieces.front().second - pieces.front().first;
        pieces.pop_front();
    }
    if (pieces.empty()) return 0;
    uint64_t gone = sent > pieces.front().first ? sent - pieces.front().first : 0;
    return static_cast<size_t>(call->piece_bytes - gone);
}

// The connection's output buffer emptied. A streamed call sets its
// high-water mark to 1 byte, so this follows every send() that left
// bytes behind: the body may now be all out, or drained.
void HttpClient::on_written(Conn* c)
{
    Call* call = c->call;
    if (!call || !call->stream) return;
    body_sent(c);
    if (call->drain_due && unsent_body(call) == 0) drained(call);
}

// Once a streamed body is ended and on the socket, the request counts as
// sent: the header and read timeouts start.
void HttpClient::body_sent(Conn* c)
{
    Call* call = c->call;
    if (!call || !call->stream || call->body_sent || !call->body_ended || !c->connected ||
        c->tcp.buffered() != 0)
        return;
    call->body_sent = true;
    arm_header_timer(call);
    if (opts_.read_timeout_ms > 0) c->tcp.set_read_timeout(opts_.read_timeout_ms);
}

void HttpClient::arm_header_timer(Call* call)
{
    if (opts_.header_timeout_ms <= 0 || call->header_timer) return;
    RequestId id = call->id;
    call->header_timer = loop_.run_after(opts_.header_timeout_ms, [this, id] {
        timeout(id, HttpClientError::kHeaderTimeout);
    });
}

// Runs the drain callback; it may write, cancel or destroy the client.
void HttpClient::drained(Call* call)
{
    call->drain_due = false;
    if (!call->drain_cb) return;
    std::function<void()> cb = call->drain_cb;  // it may replace itself
    cb();
}

// Takes the call off its connection (closing it) or out of the queue,
// and stops its timers.
void HttpClient::detach(Call* call)
{
    if (call->header_timer) loop_.cancel(call->header_timer);
    if (call->total_timer) loop_.cancel(call->total_timer);
    call->header_timer = call->total_timer = 0;
    if (Conn* c = call->conn) {
        c->call = nullptr;
        call->conn = nullptr;
        drop(c);
    } else {
        std::deque<Call*>& q = call->pool->queue;
        q.erase(std::remove(q.begin(), q.end(), call), q.end());
    }
}

void HttpClient::pump(Pool& p)
{
    std::string why;
    while (!p.queue.empty()) {
        Conn* c;
        if (!p.idle.empty()) {
            c = p.idle.back();
            p.idle.pop_back();
            if (opts_.idle_timeout_ms > 0) c->tcp.set_idle_timeout(0);
        } else if (p.conns.size() < opts_.max_connections) {
            c = open(p, &why);
        } else {
            return;
        }
        Call* call = p.queue.front();
        p.queue.pop_front();
        if (c) {
            start(p, c, call);
            continue;
        }
        // Nothing was started (the host is not numeric nor in the hosts
        // file): the failure comes from the loop, as any other.
        RequestId id = call->id;
        std::weak_ptr<bool> alive = alive_;
        loop_.defer([this, alive, id, why] {
            auto a = alive.lock();
            if (!a || !*a) return;
            auto it = calls_.find(id);
            if (it != calls_.end()) fail(it->second.get(), HttpClientError::kConnect, why);
        });
    }
}

HttpClient::Conn* HttpClient::open(Pool& p, std::string* why)
{
    HttpLimits lim;
    lim.max_body = SIZE_MAX;  // max_body is checked here, for whole bodies only
    p.conns.push_back(std::make_unique<Conn>(&p, loop_, lim));
    Conn* c = p.conns.back().get();
    c->tcp.set_connect_timeout(opts_.connect_timeout_ms);
    c->tcp.on_connect([this, c](TcpClient&) {
        c->connected = true;
        Call* call = c->call;
        if (call && !call->stream) arm_header_timer(call);  // a streamed one: once its body is out
    });
    c->tcp.on_data([this, c](TcpClient&, Buffer&) { on_data(c); });
    c->tcp.on_drain([this, c](TcpClient&) { on_written(c); });
    c->tcp.on_close([this, c](TcpClient&, int err, const std::string& why) { on_close(c, err, why); });
    if (!c->tcp.connect(p.host, p.port)) {
        *why = c->tcp.error();
        p.conns.pop_back();
        return nullptr;
    }
    return c;
}

void HttpClient::start(Pool&, Conn* c, Call* call)
{
    c->call = call;
    call->conn = c;
    c->got_byte = false;
    c->head_done = false;
    c->chunk.clear();
    if (opts_.read_timeout_ms > 0)
        c->tcp.set_read_timeout(call->stream ? 0 : opts_.read_timeout_ms);  // streamed: body_sent()
    c->parser.reset();
    c->parser.response_to(call->method);
    if (call->body)
        c->parser.set_body_sink([c](std::string_view d) { c->chunk.append(d.data(), d.size()); });
    else
        c->parser.set_body_sink(nullptr);
    if (!call->stream) {
        if (c->connected) arm_header_timer(call);
        c->tcp.set_high_water(TcpClient::kDefaultHighWater);
        c->tcp.send(call->wire);
        return;
    }
    // The head and the body bytes kept so far go out now; the rest as
    // written. A mark of 1 byte makes every send() that leaves bytes
    // behind end in on_written(), when they are out.
    c->tcp.set_high_water(1);
    call->handed = call->wire.size();
    c->tcp.send(call->wire);
    std::string().swap(call->wire);  // never sent again: a streamed request is not retried
    body_sent(c);
    if (call->drain_due && unsent_body(call) == 0) {
        // All went out at once: no on_written() comes, and the writer
        // waits for its callback, which runs from the loop.
        RequestId id = call->id;
        std::weak_ptr<bool> alive = alive_;
        loop_.defer([this, alive, id] {
            auto a = alive.lock();
            if (!a || !*a) return;
            auto it = calls_.find(id);
            if (it != calls_.end() && it->second->drain_due && unsent_body(it->second.get()) == 0)
                drained(it->second.get());
        });
    }
}

void HttpClient::on_data(Conn* c)
{
    Buffer& in = c->tcp.input();
    while (in.readable() > 0) {
        Call* call = c->call;
        if (!call) {  // bytes nobody asked for: the connection is unusable
            Pool& p = *c->pool;
            drop(c);
            pump(p);
            return;
        }
        c->got_byte = true;
        size_t n = c->parser.feed(in.peek(), in.readable());
        in.consume(n);
        if (call->header_timer && c->parser.headers_complete()) {
            loop_.cancel(call->header_timer);
            call->header_timer = 0;
        }
        if (call->head && !c->head_done && c->parser.headers_complete()) {
            c->head_done = true;
            HttpClientResponse head;
            head.status = c->parser.status();
            head.reason = c->parser.reason();
            std::vector<HttpHeader>& fields = c->parser.request().headers;
            head.headers.swap(fields);
            RequestId id = call->id;
            std::weak_ptr<bool> alive = alive_;
            HeadCallback cb = std::move(call->head);  // runs once; the call may be cancelled in it
            cb(head);
            auto a = alive.lock();
            if (!a || !*a || !calls_.count(id)) return;  // destroyed or cancelled
            fields.swap(head.headers);  // back: the parser keeps its capacity (done gets none)
        }
        if (!c->chunk.empty()) {
            RequestId id = call->id;
            std::weak_ptr<bool> alive = alive_;
            std::string chunk;
            chunk.swap(c->chunk);
            BodyCallback cb = call->body;  // the call may be cancelled in it
            cb(chunk);
            auto a = alive.lock();
            if (!a || !*a || !calls_.count(id)) return;  // destroyed or cancelled
        }
        HttpParser::State s = c->parser.state();
        if (s == HttpParser::kError) {
            fail(call, HttpClientError::kBadResponse,
                 std::string("bad response from ") + c->pool->host_field + ": " + c->parser.error_reason());
            return;
        }
        if (!call->body && c->parser.message().body.size() > opts_.max_body) {
            fail(call, HttpClientError::kBadResponse, "response body over " + std::to_string(opts_.max_body) +
                                                          " bytes from " + c->pool->host_field);
            return;
        }
        if (s == HttpParser::kComplete) {
            complete(c);
            return;
        }
        if (n == 0) return;
    }
}

void HttpClient::on_close(Conn* c, int err, const std::string& why)
{
    Call* call = c->call;
    Pool& p = *c->pool;
    if (!call) {  // an idle connection the server closed
        drop(c);
        return;
    }
    if (err == ETIMEDOUT && c->connected) {
        fail(call, HttpClientError::kReadTimeout, why);
        return;
    }
    if (c->got_byte) {
        if (c->parser.eof() == HttpParser::kComplete) {  // a close-delimited body
            complete(c);
            return;
        }
        fail(call, HttpClientError::kClosed, "response from " + p.host_field + " cut short: " + why);
        return;
    }
    if (c->reused && call->idempotent && !call->retried && !call->stream) {
        // The server closed a kept-alive connection as the request went
        // out (RFC 9110 9.2.2): send it once more on another one. A
        // streamed body is not kept, so cannot be sent again.
        call->retried = true;
        c->call = nullptr;
        call->conn = nullptr;
        if (call->header_timer) loop_.cancel(call->header_timer);
        call->header_timer = 0;
        drop(c);
        p.queue.push_front(call);
        pump(p);
        return;
    }
    if (!c->connected)
        fail(call, err == ETIMEDOUT ? HttpClientError::kConnectTimeout : HttpClientError::kConnect, why);
    else
        fail(call, HttpClientError::kClosed, "no response from " + p.host_field + ": " + why);
}

void HttpClient::complete(Conn* c)
{
    Call* call = c->call;
    HttpRequest& m = c->parser.request();
    HttpClientResponse res;
    res.status = c->parser.status();
    res.reason = c->parser.reason();
    if (!c->head_done) res.headers = std::move(m.headers);  // else the head callback had them
    res.trailers = std::move(m.trailers);
    res.body = std::move(m.body);
    bool reusable = !c->parser.ends_connection() && c->tcp.connected() && c->tcp.input().readable() == 0;
    // An answer before the end of a streamed body (413, say): the rest
    // would be taken for the next request.
    if (call->stream && (!call->body_ended || c->tcp.buffered() != 0)) reusable = false;
    c->call = nullptr;
    call->conn = nullptr;
    release(c, reusable);
    finish(call, res);
}

void HttpClient::release(Conn* c, bool reusable)
{
    Pool& p = *c->pool;
    if (reusable && p.idle.size() < opts_.max_idle) {
        c->reused = true;
        // A response can end in the read that made its caller pause: an
        // idle connection reads again, to see the next answer or a close.
        c->tcp.set_reading(true);
        if (opts_.read_timeout_ms > 0) c->tcp.set_read_timeout(0);
        if (opts_.idle_timeout_ms > 0) c->tcp.set_idle_timeout(opts_.idle_timeout_ms);
        p.idle.push_back(c);
    } else {
        drop(c);
    }
    pump(p);
}

// Closes a connection and forgets it (its TcpClient goes now, even from
// inside its own callback: it notices).
void HttpClient::drop(Conn* c)
{
    Pool& p = *c->pool;
    p.idle.erase(std::remove(p.idle.begin(), p.idle.end(), c), p.idle.end());
    auto it = std::find_if(p.conns.begin(), p.conns.end(),
                           [c](const std::unique_ptr<Conn>& u) { return u.get() == c; });
    if (it != p.conns.end()) p.conns.erase(it);
}

void HttpClient::fail(Call* call, HttpClientError e, std::string why)
{
    Pool& p = *call->pool;
    HttpClientResponse res;
    if (call->conn) res.status = call->conn->parser.status();
    res.error = e;
    res.error_text = std::move(why);
    detach(call);
    pump(p);
    finish(call, res);
}

void HttpClient::timeout(RequestId id, HttpClientError e)
{
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    Call* call = it->second.get();
    (e == HttpClientError::kHeaderTimeout ? call->header_timer : call->total_timer) = 0;
    const char* what = e == HttpClientError::kHeaderTimeout ? "response header" : "response";
    long long ms = e == HttpClientError::kHeaderTimeout ? opts_.header_timeout_ms : opts_.total_timeout_ms;
    fail(call, e, std::string("no ") + what + " from " + call->pool->host_field + " within " + std::to_string(ms) +
                      " ms");
}

// Runs the callback of a call already taken off its connection and queue.
void HttpClient::finish(Call* call, HttpClientResponse& res)
{
    if (call->header_timer) loop_.cancel(call->header_timer);
    if (call->total_timer) loop_.cancel(call->total_timer);
    auto it = calls_.find(call->id);
    std::unique_ptr<Call> own = std::move(it->second);
    calls_.erase(it);
    if (own->done) own->done(res);
}

}  // namespace zan
