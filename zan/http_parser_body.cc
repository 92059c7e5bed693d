// HttpParser, the message body: Content-Length bodies and the chunked
// transfer coding (chunk sizes, extensions, trailers), and the end of a
// message. The request line and header fields are in http_parser.cc.
#include <algorithm>

#include "zan/detail/http_chars.h"
#include "zan/http_parser.h"

namespace zan {

using namespace http_chars;

namespace {

enum Ext : uint8_t { kExtNameFirst, kExtName, kExtValueFirst, kExtToken, kExtQuoted, kExtPair, kExtClosed };

}  // namespace

const char* HttpParser::on_body(const char* p, const char* end) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(s_.remaining, static_cast<uint64_t>(end - p)));
    if (sink_)
        sink_(std::string_view(p, n));
    else if (store_)
        req_.body.append(p, n);
    s_.remaining -= n;
    p += n;
    if (s_.step == kChunkData) {
        s_.body_len += n;
        if (s_.remaining == 0) s_.step = kChunkDataCr;
        return p;
    }
    return s_.remaining == 0 ? complete(p) : p;
}

const char* HttpParser::on_chunk_size(const char* p, const char* end) {
    for (; p < end; ++p) {
        int d = hex_value(*p);
        if (d >= 0) {
            if (s_.remaining > (UINT64_MAX >> 4)) return fail(p, 413, "chunk size too large");
            s_.remaining = s_.remaining * 16 + static_cast<unsigned>(d);
            ++s_.chunk_digits;
            if (s_.remaining > limits_.max_body - s_.body_len) return fail(p, 413, "body larger than the limit");
            continue;
        }
        if (s_.chunk_digits == 0) return fail(p, 400, "invalid chunk size");
        if (*p == ';') {
            s_.ext = kExtNameFirst;
            s_.step = kChunkExt;
            return p + 1;
        }
        if (*p != '\r') return fail(p, 400, "invalid character after chunk size");
        s_.step = kChunkLf;
        return p + 1;
    }
    return p;
}

// chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ), no BWS.
const char* HttpParser::on_chunk_ext(const char* p, const char* end) {
    for (; p < end; ++p) {
        unsigned char c = uc(*p);
        switch (s_.ext) {
        case kExtNameFirst:
            if (!kTchar[c]) return fail(p, 400, "invalid chunk extension");
            s_.ext = kExtName;
            continue;
        case kExtName:
            if (kTchar[c]) continue;
            if (c == '=') {
                s_.ext = kExtValueFirst;
                continue;
            }
            break;
        case kExtValueFirst:
            if (c == '"') s_.ext = kExtQuoted;
            else if (kTchar[c]) s_.ext = kExtToken;
            else return fail(p, 400, "invalid chunk extension value");
            continue;
        case kExtToken:
            if (kTchar[c]) continue;
            break;
        case kExtQuoted:
            if (c == '"') s_.ext = kExtClosed;
            else if (c == '\\') s_.ext = kExtPair;
            else if (!kQdtext[c]) return fail(p, 400, "invalid character in chunk extension quoted-string");
            continue;
        case kExtPair:
            if (!kQdtext[c] && c != '"' && c != '\\') return fail(p, 400, "invalid quoted-pair in chunk extension");
            s_.ext = kExtQuoted;
            continue;
        default:
            break;
        }
        // after a complete name or value: ';' or CR
        if (c == ';') {
            s_.ext = kExtNameFirst;
            continue;
        }
        if (c != '\r') return fail(p, 400, "invalid character in chunk extension");
        s_.step = kChunkLf;
        return p + 1;
    }
    return p;
}

const char* HttpParser::on_chunk_lf(const char* p) {
    if (*p != '\n') return fail(p, 400, "CR without LF after chunk size");
    if (s_.remaining == 0) {
        s_.in_trailers = true;
        s_.fields = 0;
        begin_section(p + 1, limits_.max_header_bytes, 431, "trailer section too large");
        s_.step = kFieldStart;
        return p + 1;
    }
    s_.sec_limit = SIZE_MAX;
    s_.step = kChunkData;
    return p + 1;
}

const char* HttpParser::complete(const char* at) {
    state_ = kComplete;
    s_.step = kDone;
    s_.sec_limit = SIZE_MAX;
    if (!req_.keep_alive)
        finished_ = mode_ == kResponses ? "data after the last response of the connection"
                                        : "data after a Connection: close request";
    if (req_.upgrade)
        finished_ = mode_ == kResponses ? "data after a protocol switch" : "data after a CONNECT or HTTP/2 preface request";
    return at;
}

}  // namespace zan
