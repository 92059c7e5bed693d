// HttpParser in response mode: the status line, the framing of a
// response's body (RFC 9112 6.3), 1xx interim responses and bodies that
// end with the connection. Fields, Content-Length and the chunked coding
// are the request side's own code (http_parser.cc, http_parser_body.cc).
// See zan_http_parser(3).
#include <string.h>

#include "zan/detail/http_chars.h"
#include "zan/http_parser.h"

namespace zan {

using namespace http_chars;

void HttpParser::response_to(std::string_view method) {
    s_.head_request = method == "HEAD";
    s_.connect_request = method == "CONNECT";
}

HttpParser::State HttpParser::eof() {
    if (state_ == kComplete || state_ == kError || state_ == kStart) return state_;
    data_ = nullptr;
    if (s_.step == kBodyEof) {
        complete(nullptr);
        return state_;
    }
    fail(nullptr, 400, "connection closed before the message was complete");
    return state_;
}

const char* HttpParser::fail_response(const char* at, const char* reason) { return fail(at, 502, reason); }

// "HTTP/1.1" or "HTTP/1.0", then SP.
const char* HttpParser::on_status_version(const char* p, const char* end) {
    if (s_.ver_pos == 0 && end - p >= 9 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0') &&
        p[8] == ' ') {
        req_.version_major = 1;
        req_.version_minor = p[7] - '0';
        s_.ver_pos = 0;
        s_.step = kStatusCode;
        return p + 9;
    }
    for (; p < end; ++p, ++s_.ver_pos) {
        char c = *p;
        if (s_.ver_pos < 7) {
            if (c != "HTTP/1."[s_.ver_pos]) return fail_response(p, "invalid HTTP version in the status line");
        } else if (s_.ver_pos == 7) {
            if (c != '0' && c != '1') return fail_response(p, "HTTP version not supported");
            req_.version_minor = c - '0';
        } else {
            if (c != ' ') return fail_response(p, "no space after the HTTP version");
            s_.ver_pos = 0;  // counts the status code's digits now
            s_.step = kStatusCode;
            return p + 1;
        }
    }
    return p;
}

// Three digits, 100 to 599, then SP and a reason phrase, or CRLF at once
// (a missing reason and its space are accepted).
const char* HttpParser::on_status_code(const char* p, const char* end) {
    for (; p < end && s_.ver_pos < 3; ++p, ++s_.ver_pos) {
        if (*p < '0' || *p > '9') return fail_response(p, "invalid status code");
        status_ = status_ * 10 + (*p - '0');
    }
    if (p == end) return p;
    if (status_ < 100 || status_ > 599) return fail_response(p, "invalid status code");
    if (*p == '\r') {
        s_.step = kLineLf;
        return p + 1;
    }
    if (*p != ' ') return fail_response(p, "invalid status code");
    s_.step = kReason;
    return p + 1;
}

// reason-phrase = *( HTAB / SP / VCHAR / obs-text )
const char* HttpParser::on_reason(const char* p, const char* end) {
    const char* stop = find_value_stop(p, end);
    if (store_) reason_.append(p, static_cast<size_t>(stop - p));
    if (stop == end) return stop;
    if (*stop != '\r')
        return fail_response(stop, *stop == '\n' ? "bare LF after the status line" : "control character in reason phrase");
    s_.step = kLineLf;
    return stop + 1;
}

const char* HttpParser::end_response_headers(const char* at) {
    bool http10 = req_.version_minor == 0;
    if (s_.te_seen) {
        if (http10) return fail_response(at - 1, "Transfer-Encoding in an HTTP/1.0 response");
        if (s_.cl_seen) return fail_response(at - 1, "Transfer-Encoding together with Content-Length");
    }
    if (status_ < 200 && status_ != 101) {
        // Interim: report it, forget it, read the next status line.
        if (s_.interim == kMaxInterim) return fail_response(at - 1, "too many 1xx responses");
        ++s_.interim;
        if (on_interim_) on_interim_(*this);
        Scan next;
        next.head_request = s_.head_request;
        next.connect_request = s_.connect_request;
        next.interim = s_.interim;
        s_ = next;
        req_.clear();
        return at;
    }
    req_.keep_alive = !s_.conn_close && (!http10 || s_.conn_keep_alive);
    req_.chunked = s_.te_chunked;
    state_ = kBody;
    s_.sec_limit = SIZE_MAX;
    // RFC 9112 6.3: a 101, or a 2xx to CONNECT, hands the connection over
    // (1, 2); HEAD, 204 and 304 have no content (1).
    if (status_ == 101 || (s_.connect_request && status_ < 300)) {
        req_.upgrade = true;
        return complete(at);
    }
    if (s_.head_request || status_ == 204 || status_ == 304) return complete(at);
    return begin_response_body(at);
}

// chunked (4), Content-Length (6), else until the close (4, 8).
const char* HttpParser::begin_response_body(const char* at) {
    if (req_.chunked) {
        begin_section(at, limits_.max_chunk_line, 400, "chunk-size line too long");
        s_.remaining = 0;
        s_.step = kChunkSize;
        return at;
    }
    if (s_.cl_seen && !s_.te_seen) {
        if (s_.cl > limits_.max_body) return fail_response(at - 1, "Content-Length larger than the body limit");
        if (s_.cl == 0) return complete(at);
        s_.remaining = s_.cl;
        s_.step = kBodyLength;
        return at;
    }
    req_.keep_alive = false;
    s_.remaining = limits_.max_body;
    s_.step = kBodyEof;
    return at;
}

// A close-delimited body: everything up to eof().
const char* HttpParser::on_body_eof(const char* p, const char* end) {
    size_t n = static_cast<size_t>(end - p);
    if (n > s_.remaining) return fail_response(p + s_.remaining, "body larger than the limit");
    if (sink_)
        sink_(std::string_view(p, n));
    else if (store_)
        req_.body.append(p, n);
    s_.remaining -= n;
    return end;
}

}  // namespace zan
