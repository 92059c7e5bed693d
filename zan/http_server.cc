#include "zan/http_server.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include <memory>

#include "zan/detail/access_log.h"
#include "zan/detail/body_streams.h"
#include "zan/log.h"
#include "zan/protocol.h"
#include "zan/detail/worker.h"

namespace zan {

// The NetWorker side of HTTP: one strict parser per connection, in
// framing mode (no copies), fed only the bytes it has not seen yet. The
// replies it makes itself go to the access log, if there is one.
class HttpConnProtocol : public ConnProtocol {
public:
    HttpConnProtocol(HttpServer* srv, const Runtime* rt, SessionId s)
        : srv_(srv), rt_(rt), session_(s), parser_(srv->http_config().limits, false)
    {
    }

    Verdict next(const char* data, size_t n, size_t* len, std::string* reply,
                 std::string* interim) override
    {
        if (n > fed_) {
            if (fed_ == 0 && !streaming_ && srv_->access_)
                start_ms_ = srv_->access_->loop()->now_ms();
            fed_ += parser_.feed(data + fed_, n - fed_);
        }
        switch (parser_.state()) {
        case HttpParser::kComplete:
            *len = fed_;
            return kMessage;
        case HttpParser::kError:
            if (streaming_)
                log(Level::info, "session %llu: bad request body (%s)",
                    static_cast<unsigned long long>(session_), parser_.error_reason());
            *reply = refuse(parser_.error_status(), data, n);
            return kReject;
        default:
            if (parser_.headers_complete() && !checked_) {
                // A request its header section alone condemns is answered
                // now, not after a body it announces (which may be large).
                checked_ = true;
                if (int status = refusal(data)) {
                    *reply = refuse(status, data, n);
                    return kReject;
                }
                size_t from = srv_->http_config().stream_body_from;
                long long cl = parser_.content_length();
                streaming_ = from > 0 && (parser_.request().chunked ||
                                          (cl >= 0 && static_cast<unsigned long long>(cl) >= from));
            }
            if (parser_.headers_complete() && parser_.expects_continue() && !continue_sent_) {
                continue_sent_ = true;
                *interim = "HTTP/1.1 100 Continue\r\n\r\n";
            }
            if (streaming_ && fed_ > 0) {
                // The header section (then each run of body bytes) goes
                // to the Worker now; the Worker decodes the body.
                *len = fed_;
                return kPart;
            }
            return kNeedMore;
        }
    }

    void consumed() override
    {
        fed_ = 0;
        if (streaming_ && parser_.state() != HttpParser::kComplete)
            return;  // a part: the message goes on
        parser_.reset();
        continue_sent_ = checked_ = streaming_ = false;
    }

    bool ends_connection() const override { return parser_.ends_connection(); }
    bool in_body() const override { return parser_.state() == HttpParser::kBody; }
    std::string timeout_reply() override
    {
        count_refusal(408);
        return logged(408);
    }
    std::string failure_reply() override { return logged(503); }

private:
    // The reply refusing the message at data: counted, and logged.
    std::string refuse(int status, const char* data, size_t n)
    {
        count_refusal(status);
        std::string r = srv_->error_response(status, true);
        if (srv_->access_)
            srv_->log_refusal(session_, status, AccessLog::request_line(data, n), r, start_ms_);
        return r;
    }

    std::string logged(int status)
    {
        std::string r = srv_->error_response(status, true);
        if (srv_->access_)
            srv_->log_refusal(session_, status, std::string_view(), r, start_ms_);
        return r;
    }

    // The NetWorker answers this status itself: counted by status and class.
    void count_refusal(int status)
    {
        ProcCounters& m = rt_->counters();
        int i = refused_index(status);
        if (i >= 0)
            counter_add(&m.refused[i], static_cast<int64_t>(1));
        if (status >= 100 && status < 600)
            counter_add(&m.responses[status / 100 - 1], static_cast<int64_t>(1));
    }

    // The header section of the message at data (complete, and validated
    // by parser_) parsed again with its fields kept, for
    // HttpRequest::refusal_status(): its status, or 0. Only requests whose
    // body is still to come get here, so the framing of the others costs
    // nothing more.
    int refusal(const char* data)
    {
        const char* p = data;
        while (p[0] == '\r' && p[1] == '\n')  // empty lines before the request line
            p += 2;
        // Field lines are never empty, so the first empty line ends the section.
        const char* end = static_cast<const char*>(memmem(p, fed_ - static_cast<size_t>(p - data), "\r\n\r\n", 4));
        if (!end)
            return 0;
        if (!headers_)
            headers_.reset(new HttpParser(srv_->http_config().limits, true));
        headers_->reset_connection();
        size_t n = static_cast<size_t>(end + 4 - data);
        if (headers_->feed(data, n) != n || !headers_->headers_complete())
            return 0;
        const char* why = nullptr;
        int status = headers_->request().refusal_status(&why);
        if (status)
            log(Level::debug, "refusing request before its body: %s", why ? why : "");
        return status;
    }

    HttpServer* srv_;
    const Runtime* rt_;
    SessionId session_;
    long long start_ms_ = 0;  // loop time of the message's first bytes (access log)
    HttpParser parser_;
    std::unique_ptr<HttpParser> headers_;  // for refusal(), made when first needed
    size_t fed_ = 0;
    bool continue_sent_ = false;
    bool checked_ = false;  // refusal() ran for this message
    bool streaming_ = false;  // this message goes to the Worker in parts
};

HttpServer::HttpServer(const ServerConfig& cfg, const HttpConfig& hc) : TcpServer(cfg), hc_(hc)
{
    install();
}

HttpServer::HttpServer(const std::string& host, int port, const ServerConfig& cfg,
                       const HttpConfig& hc)
    : TcpServer(host, port, cfg), hc_(hc)
{
    install();
}

HttpServer::~HttpServer() = default;

void HttpServer::install()
{
    // Settings are read when a connection or request arrives, i.e. in the
    // children, so http_config() may be changed until start().
    rt().protocol.make = [this](SessionId s) -> std::unique_ptr<ConnProtocol> {
        return std::unique_ptr<ConnProtocol>(new HttpConnProtocol(this, &rt(), s));
    };
    rt().protocol.counted_replies = true;
    on_receive([this](TcpServer&, SessionId s, std::string_view raw) { handle(s, raw); });
    on_drained([this](TcpServer&, SessionId s) { drained(s); });
}

void HttpServer::before_start()
{
    rt().protocol.header_timeout_ms = hc_.header_timeout_ms;
    rt().protocol.idle_timeout_ms = hc_.keepalive_timeout_ms;
    rt().protocol.max_messages = hc_.max_keepalive_requests;
    rt().protocol.stream_window = hc_.stream_body_from ? hc_.stream_window : 0;
    parser_ = HttpParser(hc_.limits, true);
    if (!hc_.access_log.empty())
        install_access_log();
}

std::string HttpServer::http_date(time_t t)
{
    struct tm tm;
    ::gmtime_r(&t, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

const std::string& HttpServer::date()
{
    // The coarse clock (the last tick, a few ms old at most) costs no
    // clock read, and Date has a resolution of one second anyway.
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != date_sec_) {
        date_sec_ = ts.tv_sec;
        date_ = http_date(ts.tv_sec);
    }
    return date_;
}

// Counts one reply of this Worker by status class.
void HttpServer::count_status(int status)
{
    if (status >= 100 && status < 600 && rt().procs)
        atomic_add(&rt().counters().responses[status / 100 - 1], static_cast<int64_t>(1));
}

std::string_view HttpServer::head_start(int status, const std::string& reason)
{
    count_status(status);
    const std::string& d = date();
    bool standard = reason.empty();
    if (standard && status == start_status_ && start_sec_ == date_sec_ && start_name_ == hc_.server_name)
        return start_;
    std::string& s = standard ? start_ : custom_start_;
    s.assign("HTTP/1.1 ").append(std::to_string(status)).append(" ");
    s.append(standard ? HttpResponse::reason_phrase(status) : reason.c_str());
    s.append("\r\nServer: ").append(hc_.server_name).append("\r\nDate: ").append(d).append("\r\n");
    if (standard) {
        start_status_ = status;
        start_sec_ = date_sec_;
        start_name_ = hc_.server_name;
    }
    return s;
}

std::string HttpServer::error_response(int status, bool close) const
{
    const char* reason = HttpResponse::reason_phrase(status);
    std::string body = "<html><head><title>" + std::to_string(status) + " " + reason +
                       "</title></head><body><h1>" + std::to_string(status) + " " + reason +
                       "</h1></body></html>\n";
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nServer: " +
                    hc_.server_name + "\r\nDate: " + const_cast<HttpServer*>(this)->date() +
                    "\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(body.size()) +
                    (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
    return r;
}

void HttpServer::handle(SessionId s, std::string_view raw)
{
    int flags = rt().data_flags;
    bool last = (flags & kDataLast) != 0;
    uint32_t seq = static_cast<uint32_t>(flags) >> kSeqShift;
    if (flags & kDataPart) {
        if (!(flags & kDataFirst)) {
            if (streams_)
                streams_->part(s, raw, (flags & kDataEnd) != 0, (flags & kDataCut) != 0);
            return;
        }
        if (!streams_)
            streams_.reset(new BodyStreams(*loop(), [this](SessionId id, size_t n) {
                rt().worker->acknowledge(id, n);
            }));
        HttpParser* p = streams_->start(s, raw, hc_.limits);
        if (!p) {
            bad_message(s, seq, raw);
            return;
        }
        p->request().streamed = true;
        serve(s, seq, last, p->request(), raw);
        return;
    }
    // Each message stands alone here, and the NetWorker has validated it:
    // load() only cuts it up. feed() takes what load() leaves (chunked).
    size_t used = raw.size();
    if (!parser_.load(raw.data(), raw.size()))
        used = parser_.feed(raw.data(), raw.size());
    if (parser_.state() != HttpParser::kComplete || used != raw.size()) {
        bad_message(s, seq, raw);
        return;
    }
    serve(s, seq, last, parser_.request(), raw);
}

// The NetWorker validated this message: reaching here is a bug.
void HttpServer::bad_message(SessionId s, uint32_t seq, std::string_view raw)
{
    log(Level::error, "request failed to parse in the Worker (%s)", parser_.error_reason());
    count_status(400);
    std::string r = error_response(400, true);
    reply(s, r, std::string_view(), static_cast<int>(seq << kSeqShift) | kReplyEnd | kReplyClose);
    if (access_)
        log_refusal(s, 400, AccessLog::request_line(raw.data(), raw.size()), r, access_->loop()->now_ms());
}

// Runs the application on a request whose header section (and, unless
// streamed, body) is in req; raw holds its bytes.
void HttpServer::serve(SessionId s, uint32_t seq, bool last, HttpRequest& req, std::string_view raw)
{
    const char* why = nullptr;
    if (int status = req.refusal_status(&why)) {
        // Well-formed but refused (no Host on HTTP/1.1, CONNECT or PRI,
        // "*" with a method other than OPTIONS): the application never sees it.
        log(Level::debug, "refusing request: %s", why ? why : "");
        count_status(status);
        std::string r = error_response(status, true);
        reply(s, r, std::string_view(), static_cast<int>(seq << kSeqShift) | kReplyEnd | kReplyClose);
        if (access_)
            log_refusal(s, status, AccessLog::request_line(raw.data(), raw.size()), r, access_->loop()->now_ms());
        if (req.streamed)
            streams_->response_done(s);
        return;
    }
    HttpResponse& resp = resp_;
    resp.reset(this, s, seq);
    if (access_) {
        resp.req_ = &req;
        resp.line_ = AccessLog::request_line(raw.data(), raw.size());
        resp.start_ms_ = access_->loop()->now_ms();
    }
    resp.minor_ = req.version_minor;
    resp.head_only_ = std::string_view(req.method) == "HEAD";
    resp.streamed_ = req.streamed;
    // During a graceful stop every reply ends its connection (the
    // Master sets the flag before it tells anyone to stop).
    bool stopping = rt().stopping || atomic_load(&rt().stats->shutting_down) != 0;
    resp.keep_alive_ = req.keep_alive && !last && !stopping;
    try {
        if (!hc_.metrics_path.empty() && req.path == hc_.metrics_path)
            serve_metrics(req, resp);
        else if (on_request_)
            on_request_(*this, req, resp);
        else
            resp.set_status(404);
    } catch (const std::exception& e) {
        log(Level::error, "on_request threw: %s", e.what());
        if (!resp.headers_sent())
            resp.set_status(500);
    } catch (...) {
        log(Level::error, "on_request threw an exception");
        if (!resp.headers_sent())
            resp.set_status(500);
    }
    // A handler that kept the response (moved it out) finishes it later.
    if (resp.srv_ && !resp.finished()) {
        if (!resp.headers_sent() && resp.status() == 200) {
            log(Level::warn, "on_request returned without finishing its response: 500");
            resp.set_status(500);
        }
        resp.end();
    }
    resp.req_ = nullptr;  // the request and raw are ours again
    resp.line_ = std::string_view();
}

// A streamed request body: what HttpResponse asks of it.
bool HttpServer::body_open(SessionId s) const { return streams_ && streams_->open(s); }

bool HttpServer::read_body(SessionId s, HttpResponse::BodyReader reader)
{
    return streams_ && streams_->set_reader(s, std::move(reader));
}

bool HttpServer::body_reading(SessionId s, bool on) { return streams_ && streams_->set_reading(s, on); }

void HttpServer::response_done(SessionId s, bool streamed)
{
    if (streamed && streams_)
        streams_->response_done(s);
    if (!drain_waits_.empty())
        drain_waits_.erase(s);
}

// The NetWorker tells when the output is down to `below`; a session
// already gone is told from the loop.
void HttpServer::watch_unsent(SessionId s, size_t below, std::function<void()> cb)
{
    drain_waits_[s] = std::move(cb);
    if (!watch_output(s, below))
        loop()->defer([this, s] { drained(s); });
}

void HttpServer::drained(SessionId s)
{
    auto it = drain_waits_.find(s);
    if (it == drain_waits_.end())
        return;
    std::function<void()> cb = std::move(it->second);
    drain_waits_.erase(it);
    cb();
}

bool HttpServer::reply(SessionId s, std::string_view head, std::string_view body, int flags)
{
    if (!rt().worker)
        return false;
    bool ok = head.empty()   ? rt().worker->send(s, body, flags)
              : body.empty() ? rt().worker->send(s, head, flags)
                             : rt().worker->send2(s, head, body, flags);
    if (!ok)
        refused(s);
    return ok;
}

bool HttpServer::reply_file(SessionId s, const std::string& path, uint64_t offset, uint64_t length,
                            int flags)
{
    if (!rt().worker)
        return false;
    bool ok = rt().worker->sendfile(s, path, offset, length, flags);
    if (!ok)
        refused(s);
    return ok;
}

// The Worker refused part of a response (buffer_output_size reached, say).
// A response cannot have a hole, and without its end the NetWorker would
// hold the connection, and the requests behind it, for ever: close it.
void HttpServer::refused(SessionId s)
{
    rt().worker->close(s);
}

// The bytes the NetWorker holds for s and has not written yet, plus what
// this Worker still holds for that NetWorker (when it falls behind).
size_t HttpServer::unsent(SessionId s) const
{
    SessionSlot* ss = rt().live_session(s);
    if (!ss || !rt().worker)
        return 0;
    int64_t n = atomic_load(&ss->out_bytes);
    return (n > 0 ? static_cast<size_t>(n) : 0) + rt().worker->queued(s);
}

// GET or HEAD of metrics_path: the figures of every process, taken now.
// Anything else there is 405.
void HttpServer::serve_metrics(HttpRequest& req, HttpResponse& resp)
{
    if (req.method != "GET" && req.method != "HEAD") {
        resp.set_status(405);
        resp.set_header("Allow", "GET, HEAD");
        resp.end();
        return;
    }
    resp.set_header("Content-Type", Metrics::kContentType);
    resp.set_header("Cache-Control", "no-store");
    resp.end(metrics().to_prometheus());
}

}  // namespace zan
