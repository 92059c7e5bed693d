// Runs the response vectors (t/data/http-responses.jsonl, see the README
// beside it) through HttpParser in response mode: in one piece, split in
// two at every byte, one byte at a time, with store=false and with the
// body going to a sink. Every way must give the vector's messages.
#include <gtest/gtest.h>
#include <stdio.h>

#include <string>
#include <utility>
#include <vector>

#include "t/jsonl.h"
#include "zan/http_parser.h"

using zan::HttpParser;
using zt::Json;

namespace {

struct RMsg {
    int status = 0;
    std::string reason, version, body;
    std::vector<std::pair<std::string, std::string>> headers;  // then the trailers
    bool complete = false, keep_alive = false, upgrade = false;
    size_t interim = 0, bytes = 0;
    bool operator==(const RMsg& m) const {
        return status == m.status && reason == m.reason && version == m.version && body == m.body &&
               headers == m.headers && complete == m.complete && keep_alive == m.keep_alive &&
               upgrade == m.upgrade && interim == m.interim && bytes == m.bytes;
    }
};

struct ROutcome {
    std::vector<RMsg> msgs;
    bool error = false;
    int status = 0;
    std::string reason;
    size_t error_at = 0;
    bool operator==(const ROutcome& o) const {
        return msgs == o.msgs && error == o.error && status == o.status && reason == o.reason &&
               error_at == o.error_at;
    }
};

// The vectors hold bytes as latin-1 strings, which the JSON reader gives
// back as UTF-8: compare in that form.
std::string utf8(const std::string& latin1) {
    std::string out;
    for (unsigned char c : latin1) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else {
            out += static_cast<char>(0xc0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3f));
        }
    }
    return out;
}

enum How { kStore, kFrame, kSink };

RMsg snapshot(const HttpParser& p, const std::string& sunk, How how) {
    RMsg m;
    const zan::HttpMessage& r = p.message();
    m.status = p.status();
    m.reason = p.store() ? utf8(p.reason()) : "";
    m.version = std::to_string(r.version_major) + "." + std::to_string(r.version_minor);
    m.body = utf8(how == kSink ? sunk : r.body);
    if (how == kSink && !r.body.empty()) m.body += " (and in message().body)";
    for (const auto& h : r.headers) m.headers.emplace_back(h.name, utf8(h.value));
    for (const auto& h : r.trailers) m.headers.emplace_back(h.name, utf8(h.value));
    m.complete = p.state() == HttpParser::kComplete;
    m.keep_alive = r.keep_alive;
    m.upgrade = r.upgrade;
    m.interim = p.interim_responses();
    m.bytes = p.message_bytes();
    return m;
}

// Feeds raw cut at `cuts`, then (if eof) tells the parser of the close.
ROutcome run(const std::string& raw, const std::vector<size_t>& cuts, How how, const std::string& method,
             bool eof) {
    HttpParser p(zan::HttpLimits(), how != kFrame, HttpParser::kResponses);
    std::string sunk;
    if (how == kSink) p.set_body_sink([&sunk](std::string_view b) { sunk.append(b.data(), b.size()); });
    p.response_to(method);
    ROutcome o;
    size_t start = 0, a = 0;
    auto failed = [&]() {
        o.error = true;
        o.status = p.error_status();
        o.reason = p.error_reason();
        o.error_at = start + p.message_bytes();
        return o;
    };
    for (size_t i = 0; i <= cuts.size(); ++i) {
        size_t b = i < cuts.size() ? cuts[i] : raw.size();
        while (a < b) {
            a += p.feed(raw.data() + a, b - a);
            if (p.state() == HttpParser::kComplete) {
                o.msgs.push_back(snapshot(p, sunk, how));
                if (p.message().upgrade) return o;  // the rest is another protocol
                start = a;
                sunk.clear();
                p.reset();
                p.response_to(method);
                continue;
            }
            if (p.state() == HttpParser::kError) return failed();
            if (a != b) {
                ADD_FAILURE() << "feed() stopped without completing or failing";
                return o;
            }
        }
    }
    if (eof) {
        if (p.eof() == HttpParser::kError) return failed();
        if (p.state() == HttpParser::kComplete) return o.msgs.push_back(snapshot(p, sunk, how)), o;
    }
    if (p.state() != HttpParser::kStart) o.msgs.push_back(snapshot(p, sunk, how));
    return o;
}

// "" when `ours` is the vector's message `theirs`.
std::string diff(const RMsg& ours, const Json& theirs, bool stored) {
    if (ours.status != static_cast<int>(theirs.get("status")->n)) return "status " + std::to_string(ours.status);
    if (stored && ours.reason != theirs.str("reason")) return "reason " + ours.reason;
    if (ours.version != theirs.str("version")) return "version " + ours.version;
    const Json* hs = theirs.get("headers");
    if (stored) {  // the fields and the body are stored only with store=true
        if (hs->a.size() != ours.headers.size()) return "field count " + std::to_string(ours.headers.size());
        for (size_t i = 0; i < hs->a.size(); ++i)
            if (hs->a[i].a[0].s != ours.headers[i].first || hs->a[i].a[1].s != ours.headers[i].second)
                return "field " + ours.headers[i].first + ": " + ours.headers[i].second;
    }
    if (stored && ours.body != theirs.str("body")) return "body " + ours.body;
    if (ours.complete != theirs.flag("complete")) return ours.complete ? "complete" : "not complete";
    if (ours.keep_alive != theirs.flag("keep_alive")) return "keep_alive";
    if (ours.upgrade != theirs.flag("upgrade")) return "upgrade";
    if (ours.interim != static_cast<size_t>(theirs.get("interim")->n)) return "interim " + std::to_string(ours.interim);
    return "";
}

std::string check(const Json& v, const ROutcome& o, bool fields) {
    const std::vector<Json>& theirs = v.get("messages")->a;
    bool error = v.str("expect") == "error";
    if (error && !o.error) return "accepted";
    if (!error && o.error) return "rejected: " + o.reason;
    if (o.error && o.status != 502) return "error status " + std::to_string(o.status);
    if (o.msgs.size() != theirs.size()) return std::to_string(o.msgs.size()) + " messages";
    for (size_t i = 0; i < theirs.size(); ++i) {
        std::string d = diff(o.msgs[i], theirs[i], fields);
        if (!d.empty()) return "message " + std::to_string(i) + ": " + d;
    }
    return "";
}

// Everything but what store=false does not keep.
bool same_framing(ROutcome a, ROutcome b) {
    for (ROutcome* o : {&a, &b})
        for (RMsg& m : o->msgs) {
            m.reason.clear();
            m.headers.clear();
            m.body.clear();
        }
    return a == b;
}

}  // namespace

TEST(HttpConformance, ResponseVectors) {
    std::vector<Json> vectors;
    std::string bad;
    ASSERT_TRUE(zt::read_jsonl(zt::http_response_vectors_path(), &vectors, &bad))
        << "cannot read " << zt::http_response_vectors_path() << " " << bad.substr(0, 80);
    ASSERT_EQ(vectors.size(), 74u);
    int pass = 0, ok = 0;
    for (const Json& v : vectors) {
        SCOPED_TRACE(v.str("name"));
        std::string raw = zt::base64_decode(v.str("raw_b64"));
        std::string method = v.str("method");
        bool eof = v.flag("eof");
        ROutcome whole = run(raw, {}, kStore, method, eof);
        std::vector<size_t> each;
        for (size_t k = 1; k < raw.size(); ++k) each.push_back(k);
        EXPECT_TRUE(run(raw, each, kStore, method, eof) == whole) << "byte-at-a-time differs";
        for (size_t k = 1; k < raw.size(); ++k)
            if (!(run(raw, {k}, kStore, method, eof) == whole)) {
                ADD_FAILURE() << "split at " << k << " differs";
                break;
            }
        EXPECT_TRUE(run(raw, {}, kSink, method, eof) == whole) << "the body sink differs";
        EXPECT_TRUE(run(raw, each, kSink, method, eof) == whole) << "the body sink byte-at-a-time differs";
        ROutcome frame = run(raw, {}, kFrame, method, eof);
        EXPECT_TRUE(same_framing(frame, whole)) << "store=false frames differently";
        EXPECT_TRUE(same_framing(run(raw, each, kFrame, method, eof), whole)) << "store=false byte-at-a-time";
        std::string d = check(v, whole, true);
        if (d.empty()) d = check(v, frame, false);
        if (d.empty())
            ++pass;
        else
            ADD_FAILURE() << "vector \"" << v.str("name") << "\": " << d;
        ok += v.str("expect") == "ok";
    }
    printf("conformance (responses): %d/%zu vectors pass (%d ok, %zu error)\n", pass, vectors.size(), ok,
           vectors.size() - ok);
    EXPECT_EQ(pass, static_cast<int>(vectors.size()));
}
