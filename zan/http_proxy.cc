#include "zan/http_proxy.h"

#include <stdlib.h>

#include <utility>

#include "zan/http_server.h"

namespace zan {

// One request in flight: the kept response and what relays into it.
struct HttpProxy::Exchange {
    Exchange* prev = nullptr;  // the list of exchanges in flight
    Exchange* next = nullptr;
    HttpClient::RequestId id = 0;
    SessionId session = 0;
    HttpResponse resp;
    std::string gather;      // the first body bytes, sent with the head
    bool head = false;       // the upstream's header section arrived
    bool ended = false;      // resp is finished (a body-less status, or failed)
    bool paused = false;     // upstream reading stopped for a slow client
    bool is_head = false;    // a HEAD request
    bool sized = false;      // the upstream gave the body's length
    bool uploading = false;  // the client's streamed body is still going up
};

// Body bytes held back to go out in one frame with the head (a small
// reply then costs one message to the NetWorker).
static const size_t kGather = 16u << 10;

static bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

// The hop-by-hop fields of RFC 9110 7.6.1 (and the pre-standard
// Keep-Alive and Proxy-Connection), by length first.
static bool fixed_hop_by_hop(std::string_view n)
{
    switch (n.size()) {
    case 2: return iequals(n, "te");
    case 7: return iequals(n, "trailer") || iequals(n, "upgrade");
    case 10: return iequals(n, "connection") || iequals(n, "keep-alive");
    case 16: return iequals(n, "proxy-connection");
    case 17: return iequals(n, "transfer-encoding");
    case 18: return iequals(n, "proxy-authenticate");
    case 19: return iequals(n, "proxy-authorization");
    default: return false;
    }
}

HttpProxy::HttpProxy(EventLoop& loop, std::string host, uint16_t port, const HttpProxyOptions& opts)
    : loop_(loop), host_(std::move(host)), port_(port), opts_(opts), client_(loop, [&opts] {
          HttpClientOptions c;
          c.max_connections = opts.max_connections;
          c.max_idle = opts.max_idle;
          c.connect_timeout_ms = opts.timeout_ms;
          c.read_timeout_ms = opts.timeout_ms;
          c.idle_timeout_ms = opts.idle_timeout_ms;
          c.body_high_water = opts.upload_buffer;
          return c;
      }())
{
}

HttpProxy::~HttpProxy()
{
    for (Exchange* ex = head_; ex; ex = ex->next) {
        if (ex->id)
            client_.cancel(ex->id);
        ex->resp.abort();
    }
}

// The names the Connection fields of a message list (its own hop-by-hop
// fields), parsed once per message; they point into headers.
void HttpProxy::parse_connection(const std::vector<HttpHeader>& headers)
{
    conn_tokens_.clear();
    for (const HttpHeader& h : headers) {
        if (!iequals(h.name, "connection"))
            continue;
        std::string_view v = h.value;
        while (!v.empty()) {
            size_t comma = v.find(',');
            std::string_view t = v.substr(0, comma);
            while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
                t.remove_prefix(1);
            while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
                t.remove_suffix(1);
            if (!t.empty())
                conn_tokens_.push_back(t);
            if (comma == std::string_view::npos)
                break;
            v.remove_prefix(comma + 1);
        }
    }
}

// Every name is checked against the fixed list and then against the
// Connection tokens, whatever its length.
bool HttpProxy::hop_by_hop(std::string_view name) const
{
    if (fixed_hop_by_hop(name))
        return true;
    for (std::string_view t : conn_tokens_)
        if (iequals(name, t))
            return true;
    return false;
}

void HttpProxy::forward(HttpServer& srv, HttpRequest& req, HttpResponse& resp)
{
    Exchange* ex;
    if (free_.empty()) {
        all_.push_back(std::make_unique<Exchange>());
        ex = all_.back().get();
    } else {
        ex = free_.back();
        free_.pop_back();
    }
    ex->session = resp.session();
    ex->resp = std::move(resp);
    ex->head = ex->ended = ex->paused = ex->sized = ex->uploading = false;
    ex->is_head = req.method == "HEAD";
    ex->prev = nullptr;
    ex->next = head_;
    if (head_)
        head_->prev = ex;
    head_ = ex;
    ++active_;

    HttpClientRequest out;
    out.method = req.method;
    out.target = req.target;
    if (req.streamed) {
        // The body goes up as it comes, with the client's length or
        // chunked; the client is read no faster than upstream takes it.
        out.stream_body = true;
        const std::string* cl = req.chunked ? nullptr : req.header("Content-Length");
        out.content_length = cl ? strtoll(cl->c_str(), nullptr, 10) : -1;
    } else {
        out.body = std::move(req.body);
    }
    out.headers.reserve(req.headers.size() + 4);
    parse_connection(req.headers);
    xff_.clear();
    const std::string* host = nullptr;
    for (const HttpHeader& h : req.headers) {
        std::string_view n = h.name;
        if (hop_by_hop(n))
            continue;
        switch (n.size()) {
        case 4:
            if (iequals(n, "host"))
                host = &h.value;
            break;
        case 6:
            if (iequals(n, "expect"))  // the body is all here: 100-continue was answered
                continue;
            break;
        case 15:
            if (iequals(n, "x-forwarded-for")) {
                if (!xff_.empty())
                    xff_.append(", ");
                xff_.append(h.value);
                continue;
            }
            break;
        case 16:
            if (iequals(n, "x-forwarded-host"))
                continue;
            break;
        case 17:
            if (iequals(n, "x-forwarded-proto"))
                continue;
            break;
        default:
            break;
        }
        out.headers.push_back(h);
    }
    if (std::optional<ClientInfo> ci = srv.client_info(ex->session)) {
        if (!xff_.empty())
            xff_.append(", ");
        xff_.append(ci->peer.ip());
    }
    if (!xff_.empty())
        out.headers.push_back(HttpHeader{"X-Forwarded-For", xff_});
    out.headers.push_back(HttpHeader{"X-Forwarded-Proto", "http"});
    if (host)
        out.headers.push_back(HttpHeader{"X-Forwarded-Host", *host});
    out.headers.push_back(HttpHeader{"Via", opts_.via});

    ex->id = client_.request(
        host_, port_, std::move(out), [this, ex](HttpClientResponse& r) { on_done(ex, r); },
        [this, ex](std::string_view chunk) { on_body(ex, chunk); },
        [this, ex](HttpClientResponse& h) { on_head(ex, h); });
    if (req.streamed) {
        ex->uploading = true;
        client_.on_body_drain(ex->id, [ex] { ex->resp.set_body_reading(true); });
        ex->resp.read_body([this, ex](std::string_view data, bool end, bool ok) { on_upload(ex, data, end, ok); });
    }
}

// A piece of the client's streamed body, or its end. The reader is
// dropped once the response is finished, so ex is in flight here.
void HttpProxy::on_upload(Exchange* ex, std::string_view data, bool end, bool ok)
{
    if (!ex->id)
        return;
    if (end) {
        ex->uploading = false;
        if (!ok)
            fail(ex);  // the client left or sent a bad chunk: so does the upstream request
        else
            client_.end_body(ex->id);
        return;
    }
    // False when the request already failed: its done callback says so.
    if (client_.write_body(ex->id, data) && client_.body_buffered(ex->id) >= opts_.upload_buffer)
        ex->resp.set_body_reading(false);  // until on_body_drain
}

void HttpProxy::on_head(Exchange* ex, HttpClientResponse& h)
{
    ex->head = true;
    HttpResponse& r = ex->resp;
    r.set_status(h.status, h.reason);
    parse_connection(h.headers);
    long long length = -1;
    bool chunked = false;
    for (const HttpHeader& f : h.headers) {
        std::string_view n = f.name;
        if (hop_by_hop(n)) {
            if (n.size() == 17)  // Transfer-Encoding
                chunked = true;
            continue;
        }
        switch (n.size()) {
        case 4:
            if (iequals(n, "date"))  // the server writes its own Date and Server
                continue;
            break;
        case 6:
            if (iequals(n, "server"))
                continue;
            break;
        case 14:
            if (iequals(n, "content-length")) {
                length = strtoll(f.value.c_str(), nullptr, 10);
                continue;
            }
            break;
        default:
            break;
        }
        r.add_header(n, f.value);
    }
    r.add_header("Via", opts_.via);
    if (h.status == 204 || h.status == 304 || h.status < 200) {
        ex->ended = true;
        if (!r.end())
            fail(ex);
        return;
    }
    if (length >= 0 && !chunked) {
        ex->sized = true;
        r.set_content_length(static_cast<uint64_t>(length));
    }
}

void HttpProxy::on_body(Exchange* ex, std::string_view chunk)
{
    if (ex->ended)
        return;
    if (!ex->resp.headers_sent() && ex->gather.size() + chunk.size() < kGather) {
        ex->gather.append(chunk.data(), chunk.size());
        return;
    }
    if (!ex->gather.empty()) {
        if (!write(ex, ex->gather))
            return;
        ex->gather.clear();
    }
    write(ex, chunk);
}

// One piece of the body to the client, pausing the upstream while the
// client is behind. False after failing the exchange.
bool HttpProxy::write(Exchange* ex, std::string_view data)
{
    if (!ex->resp.write(data)) {
        fail(ex);
        return false;
    }
    if (!ex->paused && ex->resp.unsent() > opts_.max_unsent) {
        // Resumed when half of max_unsent is left (or the client is gone:
        // the next write fails). The callback is dropped with the
        // response, so ex is still in flight when it runs.
        ex->paused = true;
        client_.set_reading(ex->id, false);
        ex->resp.on_unsent_below(opts_.max_unsent / 2, [this, ex] {
            ex->paused = false;
            client_.set_reading(ex->id, true);
        });
    }
    return true;
}

void HttpProxy::on_done(Exchange* ex, HttpClientResponse& res)
{
    ex->id = 0;
    HttpResponse& r = ex->resp;
    if (ex->ended) {
    } else if (res.ok()) {
        // A whole body in hand goes with its length; but the head of a
        // HEAD answer without one must not claim an empty body.
        if (ex->is_head && !ex->sized && !r.headers_sent())
            r.write(std::string_view());
        r.end(ex->gather);
    } else if (!ex->head) {
        bool timeout = res.error == HttpClientError::kConnectTimeout ||
                       res.error == HttpClientError::kHeaderTimeout ||
                       res.error == HttpClientError::kTotalTimeout ||
                       res.error == HttpClientError::kReadTimeout;
        r.set_status(timeout ? 504 : 502);
        r.set_header("Content-Type", "text/plain");
        r.end(timeout ? "504 Gateway Timeout\n" : "502 Bad Gateway\n");
    } else {
        r.abort();  // the body was cut short (or broke): the client must see it
    }
    release(ex);
}

// The client is gone (or would get a hole): stop the upstream request.
void HttpProxy::fail(Exchange* ex)
{
    if (ex->id)
        client_.cancel(ex->id);
    ex->id = 0;
    ex->resp.abort();
    release(ex);
}

void HttpProxy::release(Exchange* ex)
{
    ex->gather.clear();
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        head_ = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    ex->prev = ex->next = nullptr;
    --active_;
    free_.push_back(ex);
}

void HttpProxy::closed(SessionId s)
{
    Exchange* ex = head_;
    while (ex) {
        Exchange* next = ex->next;
        if (ex->session == s)
            fail(ex);
        ex = next;
    }
}

}  // namespace zan
