// HttpParser::load(): the Worker's half of HTTP parsing. The NetWorker's
// framing parser (store=false) has checked every byte of the message, so
// here lines end at the first CR, a field name at the first colon, and no
// byte needs a table: the request is cut out with memchr and a few
// compares. What feed() would conclude from the fields (keep-alive,
// Expect, CONNECT and the HTTP/2 preface) is derived from the same rules;
// the fuzz target t/fuzz/http_parser_fuzz.cc checks that load() and feed()
// agree on every message feed() completes. Chunked messages go back to
// feed(), which decodes the body. See zan_http_parser(3).
#include <string.h>

#include <string_view>

#include "zan/detail/http_chars.h"
#include "zan/http_parser.h"

namespace zan {

using http_chars::any_element;
using http_chars::iequal;

namespace {

const char* find(const char* p, const char* end, char c) {
    return static_cast<const char*>(memchr(p, c, static_cast<size_t>(end - p)));
}

// s = [p, p + n): on an emptied string, append() is the shortest path.
void set(std::string& s, const char* p, size_t n) {
    s.clear();
    s.append(p, n);
}

bool is(const std::string& s, const char* lit, size_t n) { return s.size() == n && memcmp(s.data(), lit, n) == 0; }

}  // namespace

bool HttpParser::load(const char* data, size_t len) {
    if (!store_ || mode_ != kRequests) return fail_load();
    clear_message();
    const char* p = data;
    const char* end = data + len;
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n') p += 2;  // allowed empty lines
    const char* sp = find(p, end, ' ');
    if (!sp || sp == p) return fail_load();
    const char* sp2 = find(sp + 1, end, ' ');
    if (!sp2 || sp2 == sp + 1) return fail_load();
    const char* v = sp2 + 1;  // "HTTP/1.x" CRLF
    if (end - v < 10 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1') || v[8] != '\r' ||
        v[9] != '\n')
        return fail_load();
    set(req_.method, p, static_cast<size_t>(sp - p));
    const char* t = sp + 1;  // the request-target
    set(req_.target, t, static_cast<size_t>(sp2 - t));
    req_.version_major = 1;
    req_.version_minor = v[7] - '0';
    bool close = false, keep_alive = false, expect = false;
    for (p = v + 10;;) {
        if (end - p < 2) return fail_load();
        if (p[0] == '\r') {
            if (p[1] != '\n') return fail_load();
            p += 2;
            break;
        }
        const char* cr = find(p, end, '\r');
        if (!cr || end - cr < 2 || cr[1] != '\n') return fail_load();
        const char* colon = find(p, cr, ':');
        if (!colon || colon == p) return fail_load();
        std::string_view value =
            http_chars::trim_ows(std::string_view(colon + 1, static_cast<size_t>(cr - colon - 1)));
        size_t n = static_cast<size_t>(colon - p);
        if (n == 17 && iequal(p, "transfer-encoding", 17)) return fail_load();  // chunked: feed() decodes it
        if (n == 10 && iequal(p, "connection", 10)) {
            any_element(value, [&](std::string_view e) {
                close |= e.size() == 5 && iequal(e.data(), "close", 5);
                keep_alive |= e.size() == 10 && iequal(e.data(), "keep-alive", 10);
                return false;  // look at every element
            });
        } else if (n == 6 && iequal(p, "expect", 6)) {
            // Validated: every non-empty element is 100-continue.
            expect |= any_element(value, [](std::string_view e) { return !e.empty(); });
        }
        req_.headers.emplace_back();
        HttpHeader& h = req_.headers.back();
        set(h.name, p, n);
        set(h.value, value.data(), value.size());
        p = cr + 2;
    }
    bool http10 = req_.version_minor == 0;
    req_.keep_alive = !close && (!http10 || keep_alive);
    req_.expect_continue = expect && !http10;
    bool connect = is(req_.method, "CONNECT", 7);
    bool asterisk = is(req_.target, "*", 1);
    req_.upgrade = connect || (asterisk && is(req_.method, "PRI", 3));
    if (req_.upgrade && p != end) return fail_load();  // such a message has no content
    set(req_.body, p, static_cast<size_t>(end - p));  // what framing counted as the body
    if (*t == '/') {  // origin-form, the usual one: path ? query # fragment
        const char* hash = find(t, sp2, '#');
        const char* tend = hash ? hash : sp2;
        const char* q = find(t, tend, '?');
        set(req_.path, t, static_cast<size_t>((q ? q : tend) - t));
        if (q) set(req_.query, q + 1, static_cast<size_t>(tend - q - 1));
    } else {
        split_target(req_, asterisk || connect);
    }
    state_ = kComplete;
    consumed_ = len;
    return true;
}

bool HttpParser::fail_load() {
    reset_connection();  // feed() may start on the same bytes
    return false;
}

}  // namespace zan
