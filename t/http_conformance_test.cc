// Runs the llhttp request vectors (t/data/http-requests.jsonl,
// see the README beside it) through HttpParser: in one piece, split in two
// at every byte (unless no_scan), one byte at a time, and with store=false.
#include <gtest/gtest.h>
#include <stdio.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "t/jsonl.h"
#include "zan/http_parser.h"

using zan::HttpParser;
using zan::HttpRequest;
using zt::Json;

namespace {

// ---- running a vector ----

struct Msg {
    std::string method, url, body;
    std::vector<std::pair<std::string, std::string>> headers;
    bool complete = false, headers_complete = false, upgrade = false, keep_alive = false;
    size_t bytes = 0;
    int refusal = 0;
    const char* refusal_reason = nullptr;
    bool operator==(const Msg& m) const {
        return method == m.method && url == m.url && body == m.body && headers == m.headers &&
               complete == m.complete && headers_complete == m.headers_complete && upgrade == m.upgrade &&
               keep_alive == m.keep_alive && bytes == m.bytes;
    }
};

struct Outcome {
    std::vector<Msg> msgs;
    bool error = false;
    int status = 0;
    std::string reason;
    size_t error_at = 0;  // offset in raw of the rejected byte
    bool operator==(const Outcome& o) const {
        return msgs == o.msgs && error == o.error && status == o.status && reason == o.reason &&
               error_at == o.error_at;
    }
};

Msg snapshot(const HttpParser& p) {
    Msg m;
    const HttpRequest& r = p.request();
    m.method = r.method;
    m.url = r.target;
    m.body = r.body;
    for (const auto& h : r.headers) m.headers.emplace_back(h.name, h.value);
    for (const auto& h : r.trailers) m.headers.emplace_back(h.name, h.value);  // llhttp lists them as headers
    m.complete = p.state() == HttpParser::kComplete;
    m.headers_complete = p.headers_complete();
    m.upgrade = r.upgrade;
    m.keep_alive = r.keep_alive;
    m.bytes = p.message_bytes();
    if (m.complete && p.store()) m.refusal = r.refusal_status(&m.refusal_reason);
    return m;
}

// What HttpRequest holds, as one comparable string.
std::string dump(const HttpRequest& r) {
    std::string d = r.method + ' ' + r.target + ' ' + r.path + '?' + r.query + ' ' +
                    std::to_string(r.version_major) + '.' + std::to_string(r.version_minor) + ' ' +
                    (r.keep_alive ? 'k' : '-') + (r.chunked ? 'c' : '-') + (r.expect_continue ? 'e' : '-') +
                    (r.upgrade ? 'u' : '-') + '\n';
    for (const auto& h : r.headers) d += h.name + ": " + h.value + '\n';
    for (const auto& h : r.trailers) d += h.name + "= " + h.value + '\n';
    return d + r.body;
}

// A Worker's load() of the message `msg` that `p` (store=true) has just
// completed must give the same request, or refuse a chunked one.
void expect_load_agrees(HttpParser& loader, const std::string& msg, const HttpParser& p) {
    bool ok = loader.load(msg.data(), msg.size());
    if (p.request().chunked) {
        EXPECT_FALSE(ok) << "load() took a chunked message";
        EXPECT_EQ(loader.state(), HttpParser::kStart);
        EXPECT_TRUE(loader.request().method.empty() && loader.request().headers.empty());
        return;
    }
    ASSERT_TRUE(ok) << "load() refused what feed() completed";
    EXPECT_EQ(loader.state(), HttpParser::kComplete);
    EXPECT_EQ(loader.message_bytes(), msg.size());
    EXPECT_EQ(loader.ends_connection(), p.ends_connection());
    EXPECT_EQ(dump(loader.request()), dump(p.request()));
}

// Feeds raw cut into pieces at `cuts` (ascending offsets, 0 < cut < size).
// With store=true every complete message is also given to load().
Outcome run(const std::string& raw, const std::vector<size_t>& cuts, bool store) {
    HttpParser p(zan::HttpLimits(), store);
    HttpParser loader;  // reused, as a Worker reuses its parser
    Outcome o;
    size_t start = 0;  // offset of the current message in raw
    size_t a = 0;
    for (size_t i = 0; i <= cuts.size(); ++i) {
        size_t b = i < cuts.size() ? cuts[i] : raw.size();
        while (a < b) {
            size_t n = p.feed(raw.data() + a, b - a);
            a += n;
            if (p.state() == HttpParser::kComplete) {
                o.msgs.push_back(snapshot(p));
                if (store) expect_load_agrees(loader, raw.substr(start, a - start), p);
                if (p.request().upgrade) return o;  // the rest is not HTTP
                // After Connection: close the parser itself reports any
                // further byte (llhttp's "Data after Connection: close").
                start = a;
                p.reset();
                continue;
            }
            if (p.state() == HttpParser::kError) {
                o.error = true;
                o.status = p.error_status();
                o.reason = p.error_reason();
                o.error_at = start + p.message_bytes();
                return o;
            }
            if (a != b) {
                ADD_FAILURE() << "feed() stopped without completing or failing";
                return o;
            }
        }
    }
    if (p.state() != HttpParser::kStart) o.msgs.push_back(snapshot(p));
    return o;
}

std::string trim_ows(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return s.substr(i);
}

// llhttp stops after CONNECT, the HTTP/2 preface (PRI) and any request
// offering an Upgrade, and calls what follows tunnel data (the vector's
// "upgrade" flag). zan marks only CONNECT and PRI (HttpRequest::upgrade;
// the server refuses them). An Upgrade offer it ignores (RFC 9110 7.8): the
// request is an ordinary one, and the bytes after it are parsed as HTTP.
bool upgrade_offer(const Json& v) {
    std::string m = v.str("method");
    return v.flag("upgrade") && m != "CONNECT" && m != "PRI";
}

// Compares one of our messages with one of the vector's; "" when equal.
// `upgrade`: llhttp handed off after it, and so must we (CONNECT, PRI).
std::string diff(const Msg& ours, const Json& theirs, bool upgrade) {
    if (ours.method != theirs.str("method")) return "method " + ours.method;
    if (ours.url != theirs.str("url")) return "url " + ours.url;
    bool complete = theirs.flag("complete");
    if (const Json* hs = theirs.get("headers")) {
        if (hs->a.size() != ours.headers.size()) return "header count " + std::to_string(ours.headers.size());
        for (size_t i = 0; i < hs->a.size(); ++i) {
            const Json& h = hs->a[i];
            if (h.a.size() != 2 || h.a[0].s != ours.headers[i].first ||
                trim_ows(h.a[1].s) != ours.headers[i].second)
                return "header " + ours.headers[i].first + ": " + ours.headers[i].second;
        }
    }
    if ((complete || theirs.get("headers")) && ours.body != theirs.str("body")) return "body " + ours.body;
    if (!upgrade && ours.complete != complete) return ours.complete ? "complete" : "not complete";
    if (upgrade && !(ours.complete && ours.upgrade)) return "not an upgrade";
    if (!upgrade && ours.upgrade) return "marked upgrade";
    return "";
}

// Checks our outcome against the vector; "" when it matches llhttp.
std::string check(const Json& v, const Outcome& o) {
    std::string expect = v.str("expect");
    bool upgrade = v.flag("upgrade");
    std::vector<const Json*> theirs;
    for (const Json& m : v.get("messages")->a) theirs.push_back(&m);
    if (expect == "error") {
        if (!o.error) return "accepted";
        size_t done = 0;
        for (const Json* m : theirs) done += m->flag("complete");
        size_t ours = 0;
        for (const Msg& m : o.msgs) ours += m.complete;
        if (ours != done) return "error after " + std::to_string(ours) + " messages";
        for (size_t i = 0; i < done; ++i) {
            std::string d = diff(o.msgs[i], *theirs[i], false);
            if (!d.empty()) return "message " + std::to_string(i) + ": " + d;
        }
        return "";
    }
    if (upgrade_offer(v)) {
        // Only the first message is llhttp's; what follows may be another
        // request, an incomplete one or bytes we reject.
        if (o.msgs.empty() || !o.msgs[0].complete)
            return o.error ? "rejected: " + std::to_string(o.status) + " " + o.reason : "no message";
        return diff(o.msgs[0], *theirs[0], false);
    }
    if (o.error) return "rejected: " + std::to_string(o.status) + " " + o.reason;
    if (upgrade) {
        if (o.msgs.empty()) return "no message";
        return diff(o.msgs[0], *theirs[0], true);
    }
    if (o.msgs.size() != theirs.size()) return std::to_string(o.msgs.size()) + " messages";
    for (size_t i = 0; i < theirs.size(); ++i) {
        std::string d = diff(o.msgs[i], *theirs[i], false);
        if (!d.empty()) return "message " + std::to_string(i) + ": " + d;
    }
    return "";
}

// Deliberate deviations from llhttp: vector name -> what we do and why.
struct Deviation {
    bool we_reject;  // true: we answer 400 where llhttp accepts; false: the reverse
    const char* why;
};
const std::map<std::string, Deviation> kDeviations = {
    {"Invalid method",
     {false, "methods are any token (RFC 9110 9.1), not llhttp's fixed list; an unknown method is the "
             "application's 501"}},
    {"HTTP protocol and ANNOUNCE method",
     {false, "methods are any token (RFC 9110 9.1); ANNOUNCE is unknown to HTTP, so the application's 501"}},
    {"SOURCE request with ICE", {true, "zan speaks HTTP only: ICE/1.0 is not an HTTP-version (400)"}},
    {"OPTIONS request with RTSP", {true, "zan speaks HTTP only: RTSP/1.0 is not an HTTP-version (400)"}},
    {"ANNOUNCE request with RTSP", {true, "zan speaks HTTP only: RTSP/1.0 is not an HTTP-version (400)"}},
    {"No HTTP version", {true, "HTTP/0.9 request lines are refused (400), RFC 9112 2.3 / brief"}},
};

bool load(std::vector<Json>* out) {
    std::string bad;
    if (zt::read_jsonl(zt::http_vectors_path(), out, &bad)) return true;
    if (!bad.empty()) ADD_FAILURE() << "bad JSON line: " << bad.substr(0, 80);
    return false;
}

// store=false must find the same boundaries and errors as store=true.
bool same_framing(const Outcome& a, const Outcome& b) {
    if (a.error != b.error || a.status != b.status || a.error_at != b.error_at || a.msgs.size() != b.msgs.size())
        return false;
    for (size_t i = 0; i < a.msgs.size(); ++i) {
        const Msg& x = a.msgs[i];
        const Msg& y = b.msgs[i];
        if (x.bytes != y.bytes || x.complete != y.complete || x.upgrade != y.upgrade ||
            x.keep_alive != y.keep_alive || x.headers_complete != y.headers_complete)
            return false;
    }
    return true;
}

}  // namespace

TEST(HttpConformance, ParserVectors) {
    std::vector<Json> vectors;
    ASSERT_TRUE(load(&vectors)) << "cannot read " << zt::http_vectors_path();
    ASSERT_EQ(vectors.size(), 120u);
    int pass = 0, deliberate = 0, offers = 0;
    std::vector<std::string> deviation_lines;
    std::map<std::string, int> refusals;
    for (const Json& v : vectors) {
        std::string name = v.str("name");
        std::string raw = zt::base64_decode(v.str("raw_b64"));
        SCOPED_TRACE(name);
        Outcome whole = run(raw, {}, true);
        // Every way of cutting the input must give the same result.
        std::vector<size_t> each;
        for (size_t k = 1; k < raw.size(); ++k) each.push_back(k);
        EXPECT_TRUE(run(raw, each, true) == whole) << "byte-at-a-time differs";
        if (!v.flag("no_scan")) {
            for (size_t k = 1; k < raw.size(); ++k)
                if (!(run(raw, {k}, true) == whole)) {
                    ADD_FAILURE() << "split at " << k << " differs";
                    break;
                }
        }
        EXPECT_TRUE(same_framing(run(raw, {}, false), whole)) << "store=false frames differently";
        EXPECT_TRUE(same_framing(run(raw, each, false), whole)) << "store=false byte-at-a-time differs";

        std::string d = check(v, whole);
        auto dev = kDeviations.find(name);
        if (d.empty()) {
            EXPECT_TRUE(dev == kDeviations.end()) << "listed as a deviation but matches llhttp";
            ++pass;
            offers += upgrade_offer(v);
        } else if (dev != kDeviations.end() && dev->second.we_reject == whole.error &&
                   (!whole.error || whole.status == 400)) {
            ++deliberate;
            deviation_lines.push_back("  " + name + " (expect " + v.str("expect") + ", zan " +
                                      (whole.error ? "rejects " + std::to_string(whole.status) : "accepts") +
                                      "): " + dev->second.why);
        } else {
            ADD_FAILURE() << "vector \"" << name << "\" (" << v.str("source") << ":"
                          << (v.get("line") ? v.get("line")->n : 0) << "): " << d;
        }
        for (const Msg& m : whole.msgs)
            if (m.complete && m.refusal) ++refusals[std::to_string(m.refusal) + " " + m.refusal_reason];
    }
    printf("conformance (parser): %d/120 vectors pass, %d deviate on purpose:\n", pass, deliberate);
    for (const std::string& l : deviation_lines) printf("%s\n", l.c_str());
    printf("conformance (parser): %d Upgrade offers parsed as ordinary requests (llhttp hands them off; "
           "zan ignores the offer, RFC 9110 7.8)\n",
           offers);
    printf("conformance (parser): messages the parser accepts but HttpRequest::refusal_status() refuses:\n");
    for (const auto& r : refusals) printf("  %d x %s\n", r.second, r.first.c_str());
    EXPECT_EQ(pass + deliberate, 120);
}
