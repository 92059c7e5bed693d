// What zan-bench puts on the wire and what it must get back, without any
// socket: the requests of the load run, the byte-for-byte check of the
// replies, and the one HTTP answer of an --idle-http connection. Kept apart
// from the event loop so that each framing is in one place.
#ifndef ZAN_TOOLS_BENCH_PROTOCOL_H
#define ZAN_TOOLS_BENCH_PROTOCOL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <string>

#include "tools/bench_options.h"

namespace zan_bench {

// Bytes of text in one request: --size less the framing ("task " and '\n'
// for tasks, '\n' for lines, the 4-byte header for length framing).
inline size_t request_text_len(const Options& o)
{
    if (o.length_framing)
        return static_cast<size_t>(o.size) - 4;
    if (o.task)
        return static_cast<size_t>(o.size) - 6;
    return static_cast<size_t>(o.size) - 1;
}

// The text of request seq on connection conn: the tag "c<conn>-s<seq>-"
// (cut to len), then letters that shift with seq. The tag makes a reply
// that reaches the wrong connection, or comes out of order, a wrong byte.
inline std::string request_text(size_t conn, long long seq, size_t len)
{
    char tag[64];
    int tl = snprintf(tag, sizeof(tag), "c%zu-s%lld-", conn, seq);
    std::string text(len, 'x');
    for (size_t k = 0; k < len; k++)
        text[k] = k < static_cast<size_t>(tl) ? tag[k] : static_cast<char>('a' + (seq + k) % 26);
    return text;
}

// Appends the request that carries text to *out, and the reply the server
// must give to *expect.
inline void append_request(const Options& o, const std::string& text, std::string* out,
                           std::string* expect)
{
    if (o.length_framing) {
        size_t len = text.size();
        unsigned char h[4] = {static_cast<unsigned char>(len >> 24),
                              static_cast<unsigned char>(len >> 16),
                              static_cast<unsigned char>(len >> 8),
                              static_cast<unsigned char>(len)};
        out->append(reinterpret_cast<char*>(h), 4).append(text);
        expect->append(reinterpret_cast<char*>(h), 4).append(text);
    } else if (o.task) {
        out->append("task ").append(text).push_back('\n');
        expect->append("task-done ").append(text).push_back('\n');
    } else {
        out->append(text).push_back('\n');
        expect->append(text).push_back('\n');
    }
}

// Whether the n received bytes at p are the next n of the due bytes at
// want. If not, why (of size cap) names the first wrong byte, counted from
// reply_off, the offset of want in the oldest reply still due.
inline bool match_reply(const char* want, size_t due, const char* p, size_t n, size_t reply_off,
                        char* why, size_t cap)
{
    if (n <= due && memcmp(want, p, n) == 0)
        return true;
    size_t k = 0;
    while (k < n && k < due && want[k] == p[k])
        k++;
    char exp[16] = "nothing";
    if (k < due)
        snprintf(exp, sizeof(exp), "0x%02x", static_cast<unsigned char>(want[k]));
    snprintf(why, cap, "reply byte %zu is 0x%02x, expected %s", reply_off + k,
             static_cast<unsigned char>(p[k]), exp);
    return false;
}

enum class HttpAnswer { partial, complete, not_200 };

// How far the HTTP response r (everything read so far) is: the head must
// say 200, and a Content-Length body must be in too. Anything after that
// is not checked: an idle connection makes just one request.
inline HttpAnswer http_answer(const std::string& r)
{
    size_t end = r.find("\r\n\r\n");
    if (end == std::string::npos)
        return HttpAnswer::partial;
    if (r.compare(0, 12, "HTTP/1.1 200") != 0 && r.compare(0, 12, "HTTP/1.0 200") != 0)
        return HttpAnswer::not_200;
    size_t body = 0;
    for (size_t k = 0; k < end; k++) {
        if (strncasecmp(r.c_str() + k, "\r\ncontent-length:", 17) == 0) {
            body = strtoul(r.c_str() + k + 17, nullptr, 10);
            break;
        }
    }
    return r.size() >= end + 4 + body ? HttpAnswer::complete : HttpAnswer::partial;
}

}  // namespace zan_bench

#endif
