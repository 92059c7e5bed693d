// libFuzzer target for HttpParser. Each input is a byte stream on one
// connection; it is parsed message by message (reset() in between) in one
// piece, in pseudo-random pieces and one byte at a time, with store=true
// and store=false, under default and tiny limits. All runs must agree on
// message boundaries, states and errors, and stored fields must obey the
// rules the parser promises. load() of every complete message must give
// what feed() gave. The same bytes are then read as the responses of one
// connection (response mode, answering GET and HEAD, with eof() at the
// end), stored, framed only and streamed through a body sink, which must
// agree likewise. Any disagreement aborts.
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I.
//     t/fuzz/http_parser_fuzz.cc zan/http_parser.cc zan/http_parser_body.cc
//     zan/http_parser_load.cc zan/http_parser_response.cc
//     zan/http_message.cc zan/http_request.cc
//     -o build/fuzz/http_parser_fuzz
// Without libFuzzer, t/fuzz/replay_main.cc replays files through it.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "zan/http_parser.h"

namespace {

using zan::HttpLimits;
using zan::HttpParser;
using zan::HttpRequest;

void require(bool ok, const char* what) {
    if (ok) return;
    fprintf(stderr, "http_parser_fuzz: invariant broken: %s\n", what);
    abort();
}

struct Event {
    int kind = 0;  // 1 complete, 2 error, 3 partial
    size_t bytes = 0;
    int status = 0;
    bool upgrade = false, keep_alive = false, chunked = false, expect = false, headers_complete = false;
    std::string fields;  // store=true only: every stored field, joined
    bool same_frame(const Event& e) const {
        return kind == e.kind && bytes == e.bytes && status == e.status && upgrade == e.upgrade &&
               keep_alive == e.keep_alive && chunked == e.chunked && expect == e.expect &&
               headers_complete == e.headers_complete;
    }
};

bool tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

void check_field(const zan::HttpHeader& h) {
    require(!h.name.empty(), "empty field name");
    for (char c : h.name) require(tchar(static_cast<unsigned char>(c)), "field name not a token");
    if (!h.value.empty()) {
        require(h.value.front() != ' ' && h.value.front() != '\t', "value with leading OWS");
        require(h.value.back() != ' ' && h.value.back() != '\t', "value with trailing OWS");
    }
    for (char c : h.value) {
        unsigned char u = static_cast<unsigned char>(c);
        require(u >= 0x20 || u == '\t', "control character in value");
        require(u != 0x7f, "DEL in value");
    }
}

Event snapshot(const HttpParser& p, const HttpLimits& l, int kind) {
    Event e;
    const HttpRequest& r = p.request();
    e.kind = kind;
    e.bytes = p.message_bytes();
    e.status = p.error_status();
    e.headers_complete = p.headers_complete();
    if (kind == 2) {
        int s = e.status;
        require(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 || s == 505, "odd status");
        require(p.error_reason() != nullptr, "no error reason");
        return e;
    }
    if (!e.headers_complete) return e;
    e.upgrade = r.upgrade;
    e.keep_alive = r.keep_alive;
    e.chunked = r.chunked;
    e.expect = r.expect_continue;
    require(r.version_major == 1 && r.version_minor <= 1, "bad version accepted");
    if (!p.store()) {
        require(r.method.empty() && r.target.empty() && r.headers.empty() && r.body.empty(), "store=false stored");
        return e;
    }
    require(!r.method.empty() && !r.target.empty(), "empty method or target");
    require(r.method.size() + r.target.size() + 12 <= l.max_request_line, "request line over the limit");
    require(r.headers.size() <= l.max_headers && r.trailers.size() <= l.max_headers, "too many fields");
    require(r.body.size() <= l.max_body, "body over the limit");
    e.fields = r.method + ' ' + r.target + ' ' + r.path + '?' + r.query + '\n';
    for (const auto& h : r.headers) {
        check_field(h);
        e.fields += h.name + ':' + h.value + '\n';
    }
    for (const auto& h : r.trailers) {
        check_field(h);
        e.fields += h.name + '=' + h.value + '\n';
    }
    e.fields += r.body;
    r.refusal_status();
    return e;
}

// HttpParser::load() of a message feed() (store=true) completed must give
// the same request, or refuse a chunked one and be left empty.
void check_load(HttpParser& loader, const char* msg, size_t n, const HttpParser& p) {
    bool ok = loader.load(msg, n);
    const HttpRequest& a = loader.request();
    const HttpRequest& b = p.request();
    if (b.chunked) {
        require(!ok && loader.state() == HttpParser::kStart, "load() took a chunked message");
        require(a.method.empty() && a.headers.empty() && a.body.empty(), "refused load() left fields");
        return;
    }
    require(ok && loader.state() == HttpParser::kComplete, "load() refused what feed() completed");
    require(loader.message_bytes() == n && loader.ends_connection() == p.ends_connection(), "load() framing");
    require(a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query, "load() line");
    require(a.version_major == b.version_major && a.version_minor == b.version_minor, "load() version");
    require(a.keep_alive == b.keep_alive && a.chunked == b.chunked && a.expect_continue == b.expect_continue &&
                a.upgrade == b.upgrade,
            "load() scalars");
    require(a.headers.size() == b.headers.size() && a.trailers.empty() && a.body == b.body, "load() fields");
    for (size_t i = 0; i < a.headers.size(); ++i)
        require(a.headers[i].name == b.headers[i].name && a.headers[i].value == b.headers[i].value,
                "load() field");
}

// Parses the stream with pieces of sizes drawn from `seed` (0: one piece,
// 1: one byte each).
std::vector<Event> run(const std::string& in, const HttpLimits& l, bool store, uint64_t seed) {
    HttpParser p(l, store);
    HttpParser loader(l, true);
    std::vector<Event> out;
    size_t a = 0;
    uint64_t x = seed;
    while (a < in.size()) {
        size_t n = in.size() - a;
        if (seed == 1) {
            n = 1;
        } else if (seed > 1) {
            x += 0x9e3779b97f4a7c15ull;  // splitmix64
            uint64_t z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            n = std::min<size_t>(n, 1 + (z ^ (z >> 31)) % 17);
        }
        size_t before = p.message_bytes();
        size_t took = p.feed(in.data() + a, n);
        require(took <= n, "consumed more than given");
        require(p.message_bytes() == before + took, "message_bytes out of step");
        a += took;
        if (p.state() == HttpParser::kComplete) {
            require(p.headers_complete(), "complete without headers");
            out.push_back(snapshot(p, l, 1));
            if (store) check_load(loader, in.data() + a - p.message_bytes(), p.message_bytes(), p);
            require(p.feed(in.data() + a, in.size() - a) == 0, "fed past a complete message");
            if (p.request().upgrade) return out;  // the rest is not HTTP
            p.reset();
            continue;
        }
        if (p.state() == HttpParser::kError) {
            out.push_back(snapshot(p, l, 2));
            require(p.feed(in.data() + a, in.size() - a) == 0, "fed past an error");
            p.reset();  // the connection stays finished
            require(p.feed("GET / HTTP/1.1\r\n\r\n", 18) == 0 && p.state() == HttpParser::kError,
                    "parsed after an error and reset()");
            return out;
        }
        require(took == n, "stopped without completing or failing");
        require(!p.ends_connection(), "ends_connection() before completion");
    }
    if (p.state() != HttpParser::kStart) out.push_back(snapshot(p, l, 3));
    return out;
}

void compare(const std::vector<Event>& ref, const std::vector<Event>& got, bool fields) {
    require(ref.size() == got.size(), "different number of messages");
    for (size_t i = 0; i < ref.size(); ++i) {
        require(ref[i].same_frame(got[i]), "different framing");
        if (fields) require(ref[i].fields == got[i].fields, "different fields");
    }
}

// ---- response mode ----

struct Response {
    int kind = 0;  // 1 complete, 2 error, 3 partial
    size_t bytes = 0, interim = 0;
    int status = 0;
    bool keep_alive = false, chunked = false, upgrade = false, headers_complete = false;
    std::string fields;  // stored (or sunk) body and fields; empty for store=false
    bool same_frame(const Response& r) const {
        return kind == r.kind && bytes == r.bytes && interim == r.interim && status == r.status &&
               keep_alive == r.keep_alive && chunked == r.chunked && upgrade == r.upgrade &&
               headers_complete == r.headers_complete;
    }
};

enum How { kStore, kFrame, kSink };

Response response_snapshot(const HttpParser& p, const HttpLimits& l, int kind, const std::string& sunk, How how) {
    Response e;
    e.kind = kind;
    e.bytes = p.message_bytes();
    e.interim = p.interim_responses();
    require(e.interim <= 16, "too many interim responses taken");
    if (kind == 2) {
        e.status = p.error_status();
        require(e.status == 502 && p.error_reason() != nullptr, "response error not a 502");
        return e;
    }
    e.headers_complete = p.headers_complete();
    if (!e.headers_complete) return e;
    const zan::HttpMessage& m = p.message();
    e.status = p.status();
    require(e.status >= 200 || e.status == 101, "interim response taken as final");
    require(e.status <= 599 && m.version_major == 1 && m.version_minor <= 1, "bad status line accepted");
    e.keep_alive = m.keep_alive;
    e.chunked = m.chunked;
    e.upgrade = m.upgrade;
    if (how == kFrame) {
        require(m.headers.empty() && m.body.empty() && p.reason().empty(), "store=false stored");
        return e;
    }
    require(m.headers.size() <= l.max_headers && m.trailers.size() <= l.max_headers, "too many fields");
    e.fields = std::to_string(e.status) + ' ' + p.reason() + '\n';
    for (const auto& h : m.headers) {
        check_field(h);
        e.fields += h.name + ':' + h.value + '\n';
    }
    for (const auto& h : m.trailers) {
        check_field(h);
        e.fields += h.name + '=' + h.value + '\n';
    }
    require(how != kSink || m.body.empty(), "a sunk body was also stored");
    const std::string& body = how == kSink ? sunk : m.body;
    require(body.size() <= l.max_body, "body over the limit");
    e.fields += body;
    return e;
}

// The stream as the responses of one connection, each answering `method`.
std::vector<Response> run_responses(const std::string& in, const HttpLimits& l, How how, uint64_t seed,
                                    const char* method) {
    HttpParser p(l, how != kFrame, HttpParser::kResponses);
    std::string sunk;
    if (how == kSink) p.set_body_sink([&sunk](std::string_view b) { sunk.append(b.data(), b.size()); });
    p.response_to(method);
    std::vector<Response> out;
    size_t a = 0;
    uint64_t x = seed;
    while (a < in.size()) {
        size_t n = in.size() - a;
        if (seed == 1) {
            n = 1;
        } else if (seed > 1) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            n = std::min<size_t>(n, 1 + (x >> 33) % 23);
        }
        size_t before = p.message_bytes();
        size_t took = p.feed(in.data() + a, n);
        require(took <= n && p.message_bytes() == before + took, "response framing out of step");
        a += took;
        if (p.state() == HttpParser::kComplete) {
            out.push_back(response_snapshot(p, l, 1, sunk, how));
            if (p.message().upgrade) return out;
            sunk.clear();
            p.reset();
            p.response_to(method);
            continue;
        }
        if (p.state() == HttpParser::kError) {
            out.push_back(response_snapshot(p, l, 2, sunk, how));
            return out;
        }
        require(took == n, "stopped without completing or failing");
    }
    HttpParser::State st = p.eof();
    if (st == HttpParser::kComplete)
        out.push_back(response_snapshot(p, l, 1, sunk, how));
    else if (st == HttpParser::kError)
        out.push_back(response_snapshot(p, l, 2, sunk, how));
    else
        require(st == HttpParser::kStart, "eof() left a message open");
    return out;
}

void compare_responses(const std::vector<Response>& ref, const std::vector<Response>& got, bool fields) {
    require(ref.size() == got.size(), "responses: different number of messages");
    for (size_t i = 0; i < ref.size(); ++i) {
        require(ref[i].same_frame(got[i]), "responses: different framing");
        if (fields) require(ref[i].fields == got[i].fields, "responses: different fields");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    uint64_t seed = 1469598103934665603ull;  // FNV-1a of the input picks the random splits
    for (size_t i = 0; i < size; ++i) seed = (seed ^ data[i]) * 1099511628211ull;
    seed |= 2;
    HttpLimits tiny;
    tiny.max_request_line = 40;
    tiny.max_header_bytes = 64;
    tiny.max_headers = 3;
    tiny.max_body = 16;
    tiny.max_chunk_line = 12;
    tiny.max_empty_lines = 1;
    {
        // Bytes no parser accepted: load() may make anything of them but
        // must stay inside them (ASan) and leave a consistent state.
        HttpParser any;
        bool ok = any.load(in.data(), in.size());
        require(ok ? any.state() == HttpParser::kComplete && any.message_bytes() == size
                   : any.state() == HttpParser::kStart && any.request().method.empty(),
                "load() of raw bytes left an odd state");
        HttpParser framing(HttpLimits(), false);
        require(!framing.load(in.data(), in.size()) && framing.state() == HttpParser::kStart,
                "load() with store=false");
    }
    for (const HttpLimits& l : {HttpLimits(), tiny}) {
        std::vector<Event> ref = run(in, l, true, 0);
        compare(ref, run(in, l, true, seed), true);
        compare(ref, run(in, l, false, 0), false);
        compare(ref, run(in, l, false, seed + 2), false);
        if (size <= 4096) {
            compare(ref, run(in, l, true, 1), true);
            compare(ref, run(in, l, false, 1), false);
        }
        for (const char* method : {"GET", "HEAD"}) {
            std::vector<Response> rr = run_responses(in, l, kStore, 0, method);
            compare_responses(rr, run_responses(in, l, kStore, seed, method), true);
            compare_responses(rr, run_responses(in, l, kSink, seed + 4, method), true);
            compare_responses(rr, run_responses(in, l, kFrame, 0, method), false);
            if (size <= 4096) compare_responses(rr, run_responses(in, l, kSink, 1, method), true);
        }
    }
    return 0;
}
