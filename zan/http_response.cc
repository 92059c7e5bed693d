#include "zan/http_response.h"

#include <stdio.h>
#include <sys/stat.h>

#include "zan/http_chars.h"
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
    for (char c : v)
        if (http_chars::value_stop(c))
            return false;
    return true;
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

bool HttpResponse::set_header(std::string_view name, std::string_view value)
{
    if (!safe_field(name, value))
        return false;
    for (auto& h : headers_) {
        if (http_chars::iequals(h.first, name)) {
            h.second.assign(value.data(), value.size());
            return true;
        }
    }
    headers_.emplace_back(std::string(name), std::string(value));
    return true;
}

bool HttpResponse::add_header(std::string_view name, std::string_view value)
{
    if (!safe_field(name, value))
        return false;
    headers_.emplace_back(std::string(name), std::string(value));
    return true;
}

const std::string* HttpResponse::header(std::string_view name) const
{
    for (const auto& h : headers_)
        if (http_chars::iequals(h.first, name))
            return &h.second;
    return nullptr;
}

// Decimal digits of v appended to h (no printf on the hot path).
static void append_number(std::string& h, unsigned long long v)
{
    char buf[24];
    char* p = buf + sizeof(buf);
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    h.append(p, static_cast<size_t>(buf + sizeof(buf) - p));
}

template <size_t N>
static void append_lit(std::string& h, const char (&s)[N])
{
    h.append(s, N - 1);
}

// content_length >= 0: fixed length; -1: chunked (1.1) or until close (1.0).
std::string& HttpResponse::head(long long content_length)
{
    std::string& h = srv_->head_buf_;  // reused: no allocation per response
    h.clear();
    // Our version, also to an HTTP/1.0 client (RFC 9110 6.2), as nginx
    // does; what the response may use (chunking, keep-alive) still
    // follows the request's version.
    append_lit(h, "HTTP/1.1 ");
    append_number(h, static_cast<unsigned long long>(status_ < 0 ? 0 : status_));
    h.push_back(' ');
    h.append(reason_.empty() ? reason_phrase(status_) : reason_);
    append_lit(h, "\r\n");
    h.append(srv_->server_date_lines());
    bool no_body = status_ == 204 || status_ == 304 || status_ < 200;
    if (content_length >= 0) {
        if (!no_body) {
            append_lit(h, "Content-Length: ");
            append_number(h, static_cast<unsigned long long>(content_length));
            append_lit(h, "\r\n");
        }
    } else if (minor_ >= 1) {
        chunked_ = true;
        append_lit(h, "Transfer-Encoding: chunked\r\n");
    } else {
        keep_alive_ = false;  // HTTP/1.0: the body ends when we close
    }
    for (const auto& kv : headers_) {
        if (http_chars::iequals(kv.first, "Content-Length") ||
            http_chars::iequals(kv.first, "Transfer-Encoding") ||
            http_chars::iequals(kv.first, "Connection"))
            continue;  // framing is ours
        h.append(kv.first);
        append_lit(h, ": ");
        h.append(kv.second);
        append_lit(h, "\r\n");
    }
    if (!keep_alive_)
        append_lit(h, "Connection: close\r\n");
    else if (minor_ == 0)
        append_lit(h, "Connection: keep-alive\r\n");
    append_lit(h, "\r\n");
    headers_sent_ = true;
    return h;
}

bool HttpResponse::send(std::string_view head_bytes, std::string_view body, bool last)
{
    int flags = 0;
    if (last) {
        finished_ = true;
        flags = kReplyEnd | (keep_alive_ ? 0 : kReplyClose);
    }
    return srv_->reply(session_, head_bytes, body, flags | static_cast<int>(seq_ << kSeqShift));
}

bool HttpResponse::write(std::string_view data)
{
    if (!srv_ || finished_)
        return false;
    std::string h;
    if (!headers_sent_)
        h = head(-1);  // a copy: the chunk size line is appended below
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
        const std::string& h = head(static_cast<long long>(body.size()));
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
    const std::string& h = head(static_cast<long long>(length));
    if (head_only_ || length == 0)
        return send(h, std::string_view(), true);
    finished_ = true;
    int seq = static_cast<int>(seq_ << kSeqShift);
    return srv_->reply(session_, h, std::string_view(), seq) &&
           srv_->reply_file(session_, path, offset, length,
                            seq | kReplyEnd | (keep_alive_ ? 0 : kReplyClose));
}

void HttpResponse::reset(HttpServer* srv, SessionId s, uint32_t seq)
{
    srv_ = srv;
    session_ = s;
    seq_ = seq;
    status_ = 200;
    reason_.clear();
    headers_.clear();  // keeps the capacity
    minor_ = 1;
    head_only_ = chunked_ = headers_sent_ = finished_ = detached_ = false;
    keep_alive_ = true;
}

HttpResponse HttpResponse::detach()
{
    HttpResponse copy = *this;
    detached_ = true;
    copy.detached_ = false;
    return copy;
}

}  // namespace zan
