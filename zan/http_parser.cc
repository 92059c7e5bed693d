// Strict RFC 9112 request parsing (and what requests and responses share). One pass over each byte: every step
// works on the longest run it can take (8 bytes at a time for field values
// and targets, table loops elsewhere; no per-byte dispatch), keeps what it
// needs in fixed-size fields and returns where the next step starts, so a
// message dribbled one byte per feed() costs the same as one fed whole.
// The body and chunked coding are in http_parser_body.cc, the status
// line and response framing in http_parser_response.cc. See
// zan_http_parser(3).
#include "zan/http_parser.h"

#include <string.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "zan/detail/http_chars.h"

namespace zan {

using namespace http_chars;

HttpParser::HttpParser(const HttpLimits& limits, bool store, Mode mode)
    : limits_(limits), store_(store), mode_(mode) {}

void HttpParser::reset() {
    const char* finished = finished_;
    reset_connection();
    finished_ = finished;
}

void HttpParser::reset_connection() {
    clear_message();
    s_ = Scan();
}

void HttpParser::clear_message() {
    state_ = kStart;
    error_status_ = 0;
    error_reason_ = nullptr;
    finished_ = nullptr;
    req_.clear();
    data_ = nullptr;
    base_ = consumed_ = 0;
}

size_t HttpParser::feed(const char* data, size_t len) {
    if (state_ == kComplete || state_ == kError || len == 0) return 0;
    data_ = data;
    base_ = consumed_;
    if (finished_) {
        const char* why = finished_;
        fail(data, 400, why);
        return 0;
    }
    const char* p = data;
    const char* end = data + len;
    while (p < end && state_ != kComplete && state_ != kError) {
        const char* lim = end;
        if (s_.sec_limit != SIZE_MAX) {
            size_t used = off(p) - s_.sec_start;
            if (used >= s_.sec_limit) {
                p = fail(p, s_.sec_status, s_.sec_reason);
                break;
            }
            if (static_cast<size_t>(end - p) > s_.sec_limit - used) lim = p + (s_.sec_limit - used);
        }
        p = step(p, lim);
    }
    consumed_ = off(p);
    return static_cast<size_t>(p - data);
}

const char* HttpParser::fail(const char* at, int status, const char* reason) {
    state_ = kError;
    error_status_ = mode_ == kResponses ? 502 : status;  // a gateway's answer to a bad response
    error_reason_ = reason;
    finished_ = mode_ == kResponses ? "data after a rejected response" : "data after a rejected request";
    return at;
}

void HttpParser::begin_section(const char* at, size_t limit, int status, const char* reason) {
    s_.sec_start = off(at);
    s_.sec_limit = limit;
    s_.sec_status = status;
    s_.sec_reason = reason;
}

const char* HttpParser::step(const char* p, const char* end) {
    switch (s_.step) {
    case kLineStart: return on_line_start(p);
    case kLeadingLf:
        if (*p != '\n') return fail(p, 400, "CR without LF before the request line");
        s_.step = kLineStart;
        return p + 1;
    case kMethod: return on_method(p, end);
    case kTarget: return on_target(p, end);
    case kVersion: return on_version(p, end);
    case kStatusVersion: return on_status_version(p, end);
    case kStatusCode: return on_status_code(p, end);
    case kReason: return on_reason(p, end);
    case kBodyEof: return on_body_eof(p, end);
    case kLineLf:
        if (*p != '\n') return fail(p, 400, "CR without LF after the request line");
        begin_section(p + 1, limits_.max_header_bytes, 431, "header section too large");
        s_.step = kFieldStart;
        return p + 1;
    case kFieldStart: return on_field_start(p);
    case kFieldName: return on_field_name(p, end);
    case kValueOws:
        while (p < end && (*p == ' ' || *p == '\t')) ++p;
        if (p < end) s_.step = kValue;
        return p;
    case kValue: return on_value(p, end);
    case kValueLf:
        if (*p != '\n') return fail(p, 400, "CR without LF in a field line");
        return end_field(p + 1);
    case kSectionLf:
        if (*p != '\n') return fail(p, 400, "CR without LF at the end of the header section");
        return s_.in_trailers ? complete(p + 1) : end_headers(p + 1);
    case kBodyLength:
    case kChunkData: return on_body(p, end);
    case kChunkSize: return on_chunk_size(p, end);
    case kChunkExt: return on_chunk_ext(p, end);
    case kChunkLf: return on_chunk_lf(p);
    case kChunkDataCr:
        if (*p != '\r') return fail(p, 400, "chunk data not followed by CRLF");
        s_.step = kChunkDataLf;
        return p + 1;
    case kChunkDataLf:
        if (*p != '\n') return fail(p, 400, "chunk data not followed by CRLF");
        begin_section(p + 1, limits_.max_chunk_line, 400, "chunk-size line too long");
        s_.remaining = 0;
        s_.chunk_digits = 0;
        s_.step = kChunkSize;
        return p + 1;
    case kDone: break;
    }
    return p;
}

// ---- request line ----

const char* HttpParser::on_line_start(const char* p) {
    if (*p == '\r') {
        if (++s_.empty_lines > limits_.max_empty_lines)
            return fail(p, 400, "too many empty lines before the request line");
        s_.step = kLeadingLf;
        return p + 1;
    }
    if (*p == '\n') return fail(p, 400, "bare LF before the request line");
    state_ = kHeaders;
    if (mode_ == kResponses) {
        begin_section(p, limits_.max_request_line, 502, "status line too long");
        status_ = 0;
        reason_.clear();
        s_.step = kStatusVersion;
        return p;
    }
    begin_section(p, limits_.max_request_line, 414, "request line too long");
    s_.step = kMethod;
    return p;
}

const char* HttpParser::on_method(const char* p, const char* end) {
    const char* q = p;
    while (q < end && kTchar[uc(*q)]) ++q;
    size_t n = static_cast<size_t>(q - p);
    if (s_.method_len < kSmall) memcpy(k_.method + s_.method_len, p, std::min(n, kSmall - s_.method_len));
    if (store_) req_.method.append(p, n);
    s_.method_len += n;
    if (q == end) return q;
    if (*q != ' ' || s_.method_len == 0) return fail(q, 400, "invalid method");
    std::string_view m(k_.method, std::min(s_.method_len, kSmall));
    s_.connect = m == "CONNECT";
    s_.pri = m == "PRI";
    s_.step = kTarget;
    return q + 1;
}

const char* HttpParser::on_target(const char* p, const char* end) {
    const char* q = find_target_stop(p, end);
    size_t n = static_cast<size_t>(q - p);
    if (s_.target_len < kHead) memcpy(k_.head + s_.target_len, p, std::min(n, kHead - s_.target_len));
    if (s_.connect) {
        for (const char* s = p; s < q; ++s) {
            unsigned char c = uc(*s);
            if (!kAuth[c]) s_.auth_bad = true;
            if (c == ':') {
                s_.colon_at = s_.target_len + static_cast<size_t>(s - p);
                s_.port_digits = 0;
                s_.port_bad = false;
            } else if (c >= '0' && c <= '9') {
                ++s_.port_digits;
            } else {
                s_.port_bad = true;
            }
        }
    }
    if (store_) req_.target.append(p, n);
    s_.target_len += n;
    if (q == end) return q;
    if (*q == '\r' || *q == '\n') return fail(q, 400, "request line without HTTP version (HTTP/0.9)");
    if (*q != ' ') return fail(q, 400, "invalid character in request-target");
    return end_target(q);
}

const char* HttpParser::end_target(const char* at) {
    if (s_.target_len == 0) return fail(at, 400, "empty request-target");
    const char* h = k_.head;
    bool ok;
    if (h[0] == '/') {
        ok = !s_.connect;
    } else if (s_.target_len == 1 && h[0] == '*') {
        s_.asterisk = true;
        ok = !s_.connect;
    } else if (s_.connect) {
        ok = !s_.auth_bad && s_.colon_at > 0 && s_.port_digits > 0 && !s_.port_bad;
    } else {
        ok = absolute_form(h, std::min(s_.target_len, kHead));
    }
    if (!ok)
        return fail(at, 400, s_.connect ? "CONNECT without authority-form target" : "invalid request-target");
    if (store_) split_target();
    s_.step = kVersion;
    return at + 1;
}

void HttpParser::split_target() { split_target(req_, s_.asterisk || s_.connect); }

// whole: asterisk-form or authority-form (CONNECT), kept whole as the path.
void HttpParser::split_target(HttpRequest& r, bool whole) {
    const std::string& t = r.target;
    size_t start = 0;
    if (t[0] != '/') {
        if (whole) {
            r.path = t;
            return;
        }
        start = t.find_first_of("/?#", t.find("://") + 3);
        if (start == std::string::npos) start = t.size();
    }
    size_t q = std::min(t.find_first_of("?#", start), t.size());
    r.path.assign(t, start, q - start);
    if (r.path.empty()) r.path = "/";
    if (q < t.size() && t[q] == '?') {
        size_t hash = t.find('#', q + 1);
        r.query.assign(t, q + 1, hash == std::string::npos ? std::string::npos : hash - q - 1);
    }
}

const char* HttpParser::on_version(const char* p, const char* end) {
    if (s_.ver_pos == 0 && end - p >= 9 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0') &&
        p[8] == '\r') {
        req_.version_major = 1;
        req_.version_minor = p[7] - '0';
        s_.step = kLineLf;
        return p + 9;
    }
    for (; p < end; ++p, ++s_.ver_pos) {
        char c = *p;
        if (s_.ver_pos < 5) {
            if (c != "HTTP/"[s_.ver_pos]) return fail(p, 400, "invalid HTTP version");
        } else if (s_.ver_pos == 6) {
            if (c != '.') return fail(p, 400, "invalid HTTP version");
        } else if (s_.ver_pos < 8) {
            if (c < '0' || c > '9') return fail(p, 400, "invalid HTTP version");
            (s_.ver_pos == 5 ? req_.version_major : req_.version_minor) = c - '0';
            if (s_.ver_pos == 7 && (req_.version_major != 1 || req_.version_minor > 1))
                return fail(p, 505, "HTTP version not supported");
        } else {
            if (c != '\r') return fail(p, 400, "no CRLF after the HTTP version");
            s_.step = kLineLf;
            return p + 1;
        }
    }
    return p;
}

// ---- header and trailer fields ----

const char* HttpParser::on_field_start(const char* p) {
    char c = *p;
    if (c == '\r') {
        s_.step = kSectionLf;
        return p + 1;
    }
    if (c == ' ' || c == '\t')
        return fail(p, 400, s_.fields == 0 ? "whitespace before the first field line" : "obsolete line folding");
    if (c == '\n') return fail(p, 400, "bare LF in the header section");
    if (++s_.fields > limits_.max_headers) return fail(p, 431, "too many header fields");
    s_.name_len = 0;
    if (store_) (s_.in_trailers ? req_.trailers : req_.headers).emplace_back();
    s_.step = kFieldName;
    return p;
}

const char* HttpParser::on_field_name(const char* p, const char* end) {
    const char* q = p;
    while (end - q >= 4 && kTchar[uc(q[0])] && kTchar[uc(q[1])] && kTchar[uc(q[2])] && kTchar[uc(q[3])]) q += 4;
    while (q < end && kTchar[uc(*q)]) ++q;
    size_t n = static_cast<size_t>(q - p);
    if (store_) field().name.append(p, n);
    const char* name = p;  // the whole name, when it came in one piece
    if (s_.name_len > 0 || q == end) {
        // split across feeds: keep a prefix (enough to recognise a name)
        for (size_t i = 0; i < n && s_.name_len + i < kSmall; ++i) k_.name[s_.name_len + i] = p[i];
        name = k_.name;
    }
    s_.name_len += n;
    if (q == end) return q;
    if (*q != ':')
        return fail(q, 400, (*q == ' ' || *q == '\t') ? "whitespace before colon" : "invalid character in field name");
    if (s_.name_len == 0) return fail(q, 400, "empty field name");
    s_.kind = kOther;
    if (!s_.in_trailers) {
        switch (s_.name_len) {
        case 14:
            if (!iequal(name, "content-length", 14)) break;
            if (s_.cl_seen) return fail(q, 400, "more than one Content-Length");
            s_.cl_seen = true;
            s_.kind = kContentLength;
            break;
        case 17:
            if (!iequal(name, "transfer-encoding", 17)) break;
            s_.te_seen = true;
            s_.kind = kTransferEncoding;
            break;
        case 10:
            if (iequal(name, "connection", 10)) s_.kind = kConnection;
            break;
        case 6:
            if (iequal(name, "expect", 6) && mode_ == kRequests) s_.kind = kExpect;
            break;
        }
    }
    s_.elem_len = 0;
    s_.elem_ows = s_.elem_junk = false;
    for (++q; q < end && (*q == ' ' || *q == '\t');) ++q;  // leading OWS
    s_.step = q < end ? kValue : kValueOws;
    return q < end ? on_value(q, end) : q;
}

const char* HttpParser::on_value(const char* p, const char* end) {
    const char* stop = find_value_stop(p, end);
    if (store_) field().value.append(p, static_cast<size_t>(stop - p));
    if (s_.kind != kOther) {
        const char* at = value_bytes(p, stop);
        if (state_ == kError) return at;
    }
    if (stop == end) return stop;
    if (*stop != '\r')
        return fail(stop, 400, *stop == '\n' ? "bare LF in a field line" : "control character in field value");
    if (stop + 1 < end && stop[1] == '\n') return end_field(stop + 2);  // the common case, in one step
    s_.step = kValueLf;
    return stop + 1;
}

const char* HttpParser::end_field(const char* at) {
    if (store_) {
        std::string& v = field().value;
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    }
    if (s_.kind == kContentLength && s_.cl_digits == 0) return fail(at - 1, 400, "empty Content-Length");
    if (s_.kind == kTransferEncoding || s_.kind == kConnection || s_.kind == kExpect) {
        const char* r = end_element(at - 1);
        if (state_ == kError) return r;
    }
    s_.kind = kOther;
    s_.step = kFieldStart;
    return at;
}

// Value bytes of Content-Length or of a comma list, after leading OWS.
const char* HttpParser::value_bytes(const char* p, const char* end) {
    for (; p < end; ++p) {
        unsigned char c = uc(*p);
        if (s_.kind == kContentLength) {
            if (c >= '0' && c <= '9' && !s_.cl_ows) {
                if (s_.cl > (UINT64_MAX - 9) / 10) return fail(p, 413, "Content-Length larger than the body limit");
                s_.cl = s_.cl * 10 + (c - '0');
                ++s_.cl_digits;
                // A response to HEAD, a 304, ... may announce what it does
            // not send: its limit is checked where the body begins.
            if (s_.cl > limits_.max_body && mode_ == kRequests)
                return fail(p, 413, "Content-Length larger than the body limit");
            } else if ((c == ' ' || c == '\t') && s_.cl_digits > 0) {
                s_.cl_ows = true;
            } else {
                return fail(p, 400, "invalid Content-Length");
            }
        } else if (c == ',') {
            const char* r = end_element(p);
            if (state_ == kError) return r;
        } else if (c == ' ' || c == '\t') {
            if (s_.elem_len > 0) s_.elem_ows = true;
        } else if (kTchar[c] && !s_.elem_ows) {
            if (s_.elem_len < kSmall) k_.elem[s_.elem_len] = lower(static_cast<char>(c));
            ++s_.elem_len;
        } else {
            s_.elem_junk = true;
        }
    }
    return p;
}

// One element of Transfer-Encoding, Connection or Expect is complete.
const char* HttpParser::end_element(const char* at) {
    if (s_.elem_len == 0 && !s_.elem_junk) return at;  // empty list elements are allowed
    bool exact = !s_.elem_junk && s_.elem_len <= kSmall;
    std::string_view e(k_.elem, exact ? s_.elem_len : 0);
    if (s_.kind == kTransferEncoding && mode_ == kResponses) {
        // Any coding may come before chunked; when chunked is not the
        // last one the body lasts until the close (RFC 9112 6.3).
        s_.te_chunked = e == "chunked";
    } else if (s_.kind == kTransferEncoding) {
        if (s_.te_chunked) return fail(at, 400, "chunked is not the final transfer coding");
        if (e == "chunked")
            s_.te_chunked = true;
        else if (e != "gzip" && e != "deflate" && e != "compress" && e != "x-gzip" && e != "x-compress")
            return fail(at, 501, "unknown transfer coding");
    } else if (s_.kind == kConnection) {
        if (s_.elem_junk) return fail(at, 400, "invalid Connection field");
        if (e == "close") s_.conn_close = true;
        if (e == "keep-alive") s_.conn_keep_alive = true;
    } else if (s_.kind == kExpect) {
        if (e != "100-continue") return fail(at, 417, "unsupported expectation");
        s_.expect_100 = true;
    }
    s_.elem_len = 0;
    s_.elem_ows = s_.elem_junk = false;
    return at;
}

const char* HttpParser::end_headers(const char* at) {
    if (mode_ == kResponses) return end_response_headers(at);
    bool http10 = req_.version_minor == 0;
    if (s_.te_seen) {
        if (http10) return fail(at - 1, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (s_.cl_seen) return fail(at - 1, 400, "Transfer-Encoding together with Content-Length");
        if (!s_.te_chunked) return fail(at - 1, 400, "chunked is not the final transfer coding");
    }
    req_.keep_alive = !s_.conn_close && (!http10 || s_.conn_keep_alive);
    req_.chunked = s_.te_seen;
    req_.expect_continue = s_.expect_100 && !http10;
    // An Upgrade field is an ordinary field: zan switches to no other
    // protocol, so it ignores the offer (RFC 9110 7.8) and the message is
    // framed, served and kept alive like any other.
    req_.upgrade = s_.connect || (s_.pri && s_.asterisk);
    state_ = kBody;
    s_.sec_limit = SIZE_MAX;
    if (req_.upgrade) return complete(at);  // no content (RFC 9110 9.3.6)
    if (req_.chunked) {
        begin_section(at, limits_.max_chunk_line, 400, "chunk-size line too long");
        s_.remaining = 0;
        s_.step = kChunkSize;
        return at;
    }
    if (s_.cl == 0) return complete(at);
    s_.remaining = s_.cl;
    s_.step = kBodyLength;
    return at;
}

}  // namespace zan
