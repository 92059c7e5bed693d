#include "zan/http_response.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <utility>

#include "zan/detail/http_chars.h"
#include "zan/detail/process.h"
#include "zan/http_server.h"
#include "zan/log.h"
#include "zan/protocol.h"

namespace zan {

const char* HttpResponse::reason_phrase(int code)
{
    switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

// Field values and reason phrases: no control character but tab (RFC 9110
// 5.5 and RFC 9112 4); CR or LF would end the line early.
static bool safe_text(std::string_view v)
{
    const char* end = v.data() + v.size();
    return http_chars::find_value_stop(v.data(), end) == end;  // 8 bytes a step
}

static bool safe_field(std::string_view name, std::string_view value)
{
    if (name.empty())
        return false;
    for (char c : name)
        if (!http_chars::kTchar[http_chars::uc(c)])
            return false;
    return safe_text(value);
}

void HttpResponse::set_status(int code, std::string_view reason)
{
    status_ = code;
    if (safe_text(reason))
        reason_.assign(reason.data(), reason.size());
    else
        reason_.clear();
}

// The fields whose framing is the server's own, whatever the application sets.
static bool framing_field(std::string_view n)
{
    return (n.size() == 14 && http_chars::iequal(n.data(), "content-length", 14)) ||
           (n.size() == 17 && http_chars::iequal(n.data(), "transfer-encoding", 17)) ||
           (n.size() == 10 && http_chars::iequal(n.data(), "connection", 10));
}

void HttpResponse::new_field(std::string_view name, std::string_view value)
{
    if (nfields_ == fields_.size())
        fields_.emplace_back();
    Field& f = fields_[nfields_++];
    f.name.assign(name.data(), name.size());
    f.value.assign(value.data(), value.size());
    f.framing = framing_field(name);
}

bool HttpResponse::set_header(std::string_view name, std::string_view value)
{
    if (!safe_field(name, value))
        return false;
    for (size_t i = 0; i < nfields_; ++i) {
        Field& f = fields_[i];
        if (f.name.size() == name.size() && http_chars::iequals(f.name, name)) {
            f.value.assign(value.data(), value.size());
            return true;
        }
    }
    new_field(name, value);
    return true;
}

bool HttpResponse::add_header(std::string_view name, std::string_view value)
{
    if (!safe_field(name, value))
        return false;
    new_field(name, value);
    return true;
}

const std::string* HttpResponse::header(std::string_view name) const
{
    for (size_t i = 0; i < nfields_; ++i)
        if (http_chars::iequals(fields_[i].name, name))
            return &fields_[i].value;
    return nullptr;
}

// Decimal digits of v, written backwards ending at `end`; returns the first.
static char* format_number(char* end, unsigned long long v)
{
    char* p = end;
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

namespace {

// Copies pieces into a buffer sized beforehand (one memcpy each, no
// capacity checks).
struct Out {
    char* p;
    void put(const char* s, size_t n)
    {
        memcpy(p, s, n);
        p += n;
    }
    void put(std::string_view s) { put(s.data(), s.size()); }
    template <size_t N>
    void lit(const char (&s)[N])
    {
        put(s, N - 1);
    }
};

}  // namespace

// content_length >= 0: fixed length; -1: chunked (1.1) or until close (1.0).
// Our version goes also to an HTTP/1.0 client (RFC 9110 6.2), as nginx
// does; what the response may use (chunking, keep-alive) still follows
// the request's version.
std::string_view HttpResponse::head(long long content_length)
{
    bool no_body = status_ == 204 || status_ == 304 || status_ < 200;
    char num[24];
    char* cl = num + sizeof(num);
    if (content_length >= 0) {
        if (!no_body)
            cl = format_number(num + sizeof(num), static_cast<unsigned long long>(content_length));
    } else if (minor_ >= 1) {
        chunked_ = true;
    } else {
        keep_alive_ = false;  // HTTP/1.0: the body ends when we close
    }
    // A request body still coming cannot be read past once the response
    // is done: the connection ends with it.
    if (streamed_ && srv_->body_open(session_))
        keep_alive_ = false;
    std::string_view start = srv_->head_start(status_ < 0 ? 0 : status_, reason_);
    size_t cl_len = static_cast<size_t>(num + sizeof(num) - cl);
    size_t size = start.size() + 80;  // + Content-Length or Transfer-Encoding, Connection, CRLF
    for (size_t i = 0; i < nfields_; ++i)
        size += fields_[i].name.size() + fields_[i].value.size() + 4;
    std::string& h = srv_->head_buf_;  // reused: no allocation (nor zero fill) per response
    if (h.size() < size)
        h.resize(size);
    Out o{&h[0]};
    o.put(start);
    if (cl_len > 0) {
        o.lit("Content-Length: ");
        o.put(cl, cl_len);
        o.lit("\r\n");
    } else if (chunked_) {
        o.lit("Transfer-Encoding: chunked\r\n");
    }
    for (size_t i = 0; i < nfields_; ++i) {
        const Field& f = fields_[i];
        if (f.framing)
            continue;  // framing is ours
        o.put(f.name);
        o.lit(": ");
        o.put(f.value);
        o.lit("\r\n");
    }
    if (!keep_alive_)
        o.lit("Connection: close\r\n");
    else if (minor_ == 0)
        o.lit("Connection: keep-alive\r\n");
    o.lit("\r\n");
    headers_sent_ = true;
    head_bytes_ = static_cast<uint64_t>(o.p - h.data());
    return std::string_view(h.data(), static_cast<size_t>(o.p - h.data()));
}

bool HttpResponse::send(std::string_view head_bytes, std::string_view body, bool last)
{
    int flags = 0;
    if (last) {
        finished_ = true;
        flags = kReplyEnd | (keep_alive_ ? 0 : kReplyClose);
        done();
    }
    sent_bytes_ += head_bytes.size() + body.size();
    bool ok = srv_->reply(session_, head_bytes, body, flags | static_cast<int>(seq_ << kSeqShift));
    if (last && srv_->access_)
        srv_->log_response(*this);
    return ok;
}

bool HttpResponse::write(std::string_view data)
{
    if (!srv_ || finished_)
        return false;
    std::string h;
    if (!headers_sent_)
        h = std::string(head(content_length_));  // a copy: the chunk size line is appended below
    if (head_only_ || data.empty())
        return h.empty() ? true : send(h, std::string_view(), false);
    if (!chunked_)
        return send(h, data, false);
    char size[24];
    int n = snprintf(size, sizeof(size), "%zx\r\n", data.size());
    h.append(size, static_cast<size_t>(n));
    std::string body;
    body.reserve(data.size() + 2);
    body.append(data.data(), data.size());
    body.append("\r\n");
    return send(h, body, false);
}

bool HttpResponse::end(std::string_view body)
{
    if (!srv_ || finished_)
        return false;
    if (!headers_sent_) {
        std::string_view h = head(content_length_ >= 0 ? content_length_ : static_cast<long long>(body.size()));
        return send(h, head_only_ ? std::string_view() : body, true);
    }
    if (head_only_)
        return send(std::string_view(), std::string_view(), true);
    if (!chunked_)
        return send(std::string_view(), body, true);
    std::string tail;
    if (!body.empty()) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", body.size());
        tail.append(size, static_cast<size_t>(n));
        tail.append(body.data(), body.size());
        tail.append("\r\n");
    }
    tail.append("0\r\n\r\n");
    return send(tail, std::string_view(), true);
}

bool HttpResponse::sendfile(const std::string& path, uint64_t offset, uint64_t length)
{
    if (!srv_ || finished_ || headers_sent_)
        return false;
    std::string_view h = head(static_cast<long long>(length));
    if (head_only_ || length == 0)
        return send(h, std::string_view(), true);
    finished_ = true;
    done();
    int seq = static_cast<int>(seq_ << kSeqShift);
    sent_bytes_ += h.size() + length;
    bool ok = srv_->reply(session_, h, std::string_view(), seq) &&
              srv_->reply_file(session_, path, offset, length,
                               seq | kReplyEnd | (keep_alive_ ? 0 : kReplyClose));
    if (srv_->access_)
        srv_->log_response(*this);
    return ok;
}

bool HttpResponse::set_content_length(uint64_t length)
{
    if (!srv_ || finished_ || headers_sent_)
        return false;
    content_length_ = static_cast<long long>(length);
    return true;
}

bool HttpResponse::abort()
{
    if (!srv_ || finished_)
        return false;
    finished_ = true;
    keep_alive_ = false;
    if (!headers_sent_)
        status_ = 502;  // for the access log: nothing was sent
    done();
    srv_->refused(session_);
    if (srv_->access_)
        srv_->log_response(*this);
    return true;
}

size_t HttpResponse::unsent() const
{
    return srv_ ? srv_->unsent(session_) : 0;
}

bool HttpResponse::on_unsent_below(size_t bytes, std::function<void()> cb)
{
    if (!srv_ || finished_)
        return false;
    srv_->watch_unsent(session_, bytes, std::move(cb));
    return true;
}

bool HttpResponse::read_body(BodyReader reader)
{
    if (!srv_ || finished_ || !streamed_)
        return false;
    return srv_->read_body(session_, std::move(reader));
}

bool HttpResponse::set_body_reading(bool on)
{
    if (!srv_ || finished_ || !streamed_)
        return false;
    return srv_->body_reading(session_, on);
}

void HttpResponse::done()
{
    srv_->response_done(session_, streamed_);
}

void HttpResponse::reset(HttpServer* srv, SessionId s, uint32_t seq)
{
    srv_ = srv;
    session_ = s;
    seq_ = seq;
    status_ = 200;
    reason_.clear();
    nfields_ = 0;  // the entries keep their capacity
    minor_ = 1;
    head_only_ = chunked_ = headers_sent_ = finished_ = streamed_ = false;
    content_length_ = -1;
    keep_alive_ = true;
    req_ = nullptr;
    line_ = std::string_view();
    record_.reset();
    start_ms_ = 0;
    head_bytes_ = sent_bytes_ = 0;
}

HttpResponse::HttpResponse(HttpResponse&& o) noexcept { *this = std::move(o); }

HttpResponse& HttpResponse::operator=(HttpResponse&& o) noexcept
{
    if (this == &o)
        return *this;
    abandon();
    // The request and its bytes are the server's until on_request
    // returns: a response moved out keeps what its access-log line needs.
    if (o.srv_ && o.srv_->access_ && o.req_ && !o.record_)
        o.record_ = o.srv_->access_record(o);
    srv_ = o.srv_;
    session_ = o.session_;
    seq_ = o.seq_;
    status_ = o.status_;
    reason_.swap(o.reason_);
    fields_.swap(o.fields_);  // both keep capacity: o's entries past nfields_ are spares
    nfields_ = o.nfields_;
    minor_ = o.minor_;
    head_only_ = o.head_only_;
    streamed_ = o.streamed_;
    keep_alive_ = o.keep_alive_;
    chunked_ = o.chunked_;
    content_length_ = o.content_length_;
    headers_sent_ = o.headers_sent_;
    finished_ = o.finished_;
    req_ = nullptr;
    line_ = std::string_view();
    record_ = std::move(o.record_);
    start_ms_ = o.start_ms_;
    head_bytes_ = o.head_bytes_;
    sent_bytes_ = o.sent_bytes_;
    o.srv_ = nullptr;  // empty: neither the server nor its destructor finishes it
    o.nfields_ = 0;
    o.req_ = nullptr;
    o.line_ = std::string_view();
    return *this;
}

HttpResponse::~HttpResponse() { abandon(); }

void HttpResponse::abandon()
{
    if (!srv_ || finished_)
        return;
    log(Level::warn, "a kept HTTP response was destroyed unfinished (session %llu): %s",
        static_cast<unsigned long long>(session_), headers_sent_ ? "its body is ended" : "500");
    try {
        if (!headers_sent_) {
            nfields_ = 0;
            set_status(500);
        }
        end();
    } catch (...) {
        // A destructor throws nothing; the connection then waits for its
        // timeout instead.
    }
    srv_ = nullptr;
}

HttpResponse HttpResponse::detach() { return std::move(*this); }

}  // namespace zan
