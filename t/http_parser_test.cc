// Unit tests of HttpParser and HttpRequest: every strictness rule, limits,
// incremental feeding and pipelining.
#include <gtest/gtest.h>
#include <string.h>
#include <time.h>

#include <string>
#include <vector>

#include "zan/http_parser.h"

using zan::HttpLimits;
using zan::HttpParser;
using zan::HttpRequest;

namespace {

// Feeds `in` cut into `piece`-byte pieces (0: one piece) until the first
// message completes or fails. Returns 0 (complete), -1 (needs more) or the
// error status; *used gets the bytes consumed.
int feed_pieces(HttpParser& p, const std::string& in, size_t piece, size_t* used) {
    size_t a = 0;
    while (a < in.size()) {
        size_t n = piece ? std::min(piece, in.size() - a) : in.size() - a;
        size_t took = p.feed(in.data() + a, n);
        EXPECT_LE(took, n);
        a += took;
        if (p.state() == HttpParser::kComplete) break;
        if (p.state() == HttpParser::kError) break;
        if (took != n) {
            ADD_FAILURE() << "feed() stopped early";
            break;
        }
    }
    *used = a;
    if (p.state() == HttpParser::kError) return p.error_status();
    return p.state() == HttpParser::kComplete ? 0 : -1;
}

// Outcome of the first message of `in`: 0 complete, -1 incomplete, else the
// error status. Checks that every way of feeding and both store modes agree.
int outcome(const std::string& in, const HttpLimits& limits = HttpLimits()) {
    HttpParser whole(limits);
    size_t used = 0;
    int r = feed_pieces(whole, in, 0, &used);
    for (size_t piece : {1, 2, 3, 7}) {
        for (bool store : {true, false}) {
            HttpParser p(limits, store);
            size_t u = 0;
            EXPECT_EQ(feed_pieces(p, in, piece, &u), r) << "piece " << piece << " store " << store << ": " << in;
            EXPECT_EQ(u, used) << "piece " << piece << " store " << store << ": " << in;
            EXPECT_EQ(p.message_bytes(), whole.message_bytes());
        }
    }
    return r;
}

// Parses one complete message (store=true), failing the test otherwise.
HttpRequest parse(const std::string& in, const HttpLimits& limits = HttpLimits()) {
    EXPECT_EQ(outcome(in, limits), 0) << in;
    HttpParser p(limits);
    p.feed(in.data(), in.size());
    return p.request();
}

std::string get(const std::string& fields) { return "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n"; }
std::string post_chunked(const std::string& chunks) {
    return "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks;
}

}  // namespace

TEST(HttpParser, SimpleGet) {
    std::string in = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    HttpParser p;
    EXPECT_EQ(p.state(), HttpParser::kStart);
    EXPECT_EQ(p.feed(in.data(), in.size()), in.size());
    ASSERT_EQ(p.state(), HttpParser::kComplete);
    EXPECT_TRUE(p.headers_complete());
    EXPECT_EQ(p.message_bytes(), in.size());
    const HttpRequest& r = p.request();
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/a/b?x=1&y=2");
    EXPECT_EQ(r.path, "/a/b");
    EXPECT_EQ(r.query, "x=1&y=2");
    EXPECT_EQ(r.version_major, 1);
    EXPECT_EQ(r.version_minor, 1);
    ASSERT_EQ(r.headers.size(), 2u);
    EXPECT_EQ(r.headers[1].name, "Accept");
    EXPECT_EQ(r.headers[1].value, "*/*");
    EXPECT_TRUE(r.keep_alive);
    EXPECT_FALSE(r.chunked);
    EXPECT_FALSE(r.upgrade);
    EXPECT_EQ(r.refusal_status(), 0);
}

TEST(HttpParser, StatesProgress) {
    std::string in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    HttpParser p;
    p.feed(in.data(), 3);
    EXPECT_EQ(p.state(), HttpParser::kHeaders);
    EXPECT_FALSE(p.headers_complete());
    p.feed(in.data() + 3, in.size() - 4);
    EXPECT_EQ(p.state(), HttpParser::kBody);
    EXPECT_TRUE(p.headers_complete());
    EXPECT_EQ(p.request().header("host")->size(), 1u);
    EXPECT_EQ(p.feed(in.data() + in.size() - 1, 1), 1u);
    EXPECT_EQ(p.state(), HttpParser::kComplete);
    EXPECT_EQ(p.request().body, "abc");
    EXPECT_EQ(p.feed("x", 1), 0u);  // nothing more until reset()
}

TEST(HttpParser, HeaderLookupIsCaseInsensitive) {
    HttpRequest r = parse(get("X-A: 1\r\nx-a: 2\r\nCache-Control: no-cache, No-Store ,max-age=0\r\n"));
    ASSERT_NE(r.header("X-a"), nullptr);
    EXPECT_EQ(*r.header("x-A"), "1");
    EXPECT_EQ(r.header("missing"), nullptr);
    std::vector<std::string_view> all = r.header_all("X-A");
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[1], "2");
    EXPECT_TRUE(r.has_token("cache-control", "no-store"));
    EXPECT_TRUE(r.has_token("Cache-Control", "max-age=0"));
    EXPECT_FALSE(r.has_token("Cache-Control", "no"));
    EXPECT_EQ(r.headers[2].name, "x-a");  // names keep their case
}

TEST(HttpParser, OwsTrimmedFromValues) {
    HttpRequest r = parse(get("A:  \t spaced  value \t \r\nB:\r\nC: \t\r\nD:x\r\n"));
    ASSERT_EQ(r.headers.size(), 5u);
    EXPECT_EQ(r.headers[1].value, "spaced  value");
    EXPECT_EQ(r.headers[2].value, "");
    EXPECT_EQ(r.headers[3].value, "");
    EXPECT_EQ(r.headers[4].value, "x");
}

TEST(HttpParser, ContentLengthBody) {
    HttpRequest r = parse("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n1234567");
    EXPECT_EQ(r.body, "1234567");
    EXPECT_EQ(outcome("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n1234567"), -1);
    r = parse("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.body, "");
}

TEST(HttpParser, ChunkedBodyWithTrailers) {
    HttpRequest r = parse(post_chunked("5\r\nhello\r\n1;a=b;c=\"d\\\"e\";f\r\n \r\nA\r\n0123456789\r\n0\r\n"
                                       "Vary: *\r\nX-Checksum:  abc \r\n\r\n"));
    EXPECT_TRUE(r.chunked);
    EXPECT_EQ(r.body, "hello 0123456789");
    ASSERT_EQ(r.trailers.size(), 2u);
    EXPECT_EQ(r.trailers[1].name, "X-Checksum");
    EXPECT_EQ(r.trailers[1].value, "abc");
    EXPECT_EQ(r.headers.size(), 2u);  // trailers stay apart
    r = parse(post_chunked("000\r\n\r\n"));
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(outcome(post_chunked("5\r\nhello\r\n0\r\n")), -1);  // trailer section still open
}

TEST(HttpParser, ChunkExtensionsValidated) {
    EXPECT_EQ(outcome(post_chunked("1;ext\r\na\r\n0;x=y;z=\"q\"\r\n\r\n")), 0);
    EXPECT_EQ(outcome(post_chunked("1;\r\na\r\n0\r\n\r\n")), 400);          // no name
    EXPECT_EQ(outcome(post_chunked("1;=v\r\na\r\n0\r\n\r\n")), 400);
    EXPECT_EQ(outcome(post_chunked("1;a=\r\na\r\n0\r\n\r\n")), 400);        // no value
    EXPECT_EQ(outcome(post_chunked("1;a=\"x\r\na\r\n0\r\n\r\n")), 400);     // unbalanced quote
    EXPECT_EQ(outcome(post_chunked("1;a=\"x\"y\r\na\r\n0\r\n\r\n")), 400);  // junk after quote
    EXPECT_EQ(outcome(post_chunked("1 ;a\r\na\r\n0\r\n\r\n")), 400);        // no BWS
    EXPECT_EQ(outcome(post_chunked("1;a =b\r\na\r\n0\r\n\r\n")), 400);
    EXPECT_EQ(outcome(post_chunked("1;a@b\r\na\r\n0\r\n\r\n")), 400);
    EXPECT_EQ(outcome(post_chunked("1;a=\"\x01\"\r\na\r\n0\r\n\r\n")), 400);
}

TEST(HttpParser, ChunkSizeRejectsBadHexAndOverflow) {
    for (const char* bad : {"g\r\n", "\r\n", "0x5\r\n", " 5\r\n", "5 \r\n", "-1\r\n", "+1\r\n", "5\n"})
        EXPECT_EQ(outcome(post_chunked(std::string(bad) + "hello\r\n0\r\n\r\n")), 400) << bad;
    EXPECT_EQ(outcome(post_chunked("fffffffffffffffffffff\r\n")), 413);
    HttpLimits huge;
    huge.max_body = SIZE_MAX;
    EXPECT_EQ(outcome(post_chunked("fffffffffffffffff\r\n"), huge), 413);  // 17 digits overflow 64 bits
    EXPECT_EQ(outcome(post_chunked("3\r\nfoo\r\n\r\n")), 400);           // missing last-chunk
}

TEST(HttpParser, ChunkDataNeedsCrlf) {
    EXPECT_EQ(outcome(post_chunked("5\r\nhelloX\r\n0\r\n\r\n")), 400);
    EXPECT_EQ(outcome(post_chunked("5\r\nhello\rX0\r\n\r\n")), 400);
    EXPECT_EQ(outcome(post_chunked("5\r\nhello\n0\r\n\r\n")), 400);
    EXPECT_EQ(outcome(post_chunked("5\r\nhello\r\n0\r\n\r\r\n")), 400);
}

TEST(HttpParser, RejectsBareLfAndBareCr) {
    EXPECT_EQ(outcome("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400);
    EXPECT_EQ(outcome(get("A: b\n")), 400);
    EXPECT_EQ(outcome(get("A: b\rC: d\r\n")), 400);
    EXPECT_EQ(outcome("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400);
    EXPECT_EQ(outcome("GET / HTTP/1.1\r\nHost: a\r\n\rX"), 400);
    EXPECT_EQ(outcome("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(outcome("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET / HTTP/1.1\r\nHost: a\r\nA\rB: c\r\n\r\n"), 400);
}

TEST(HttpParser, RejectsObsFold) {
    EXPECT_EQ(outcome(get("A: b\r\n c\r\n")), 400);
    EXPECT_EQ(outcome(get("A: b\r\n\tc\r\n")), 400);
    EXPECT_EQ(outcome("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
    EXPECT_EQ(outcome(post_chunked("0\r\nT: 1\r\n 2\r\n\r\n")), 400);
}

TEST(HttpParser, RejectsWhitespaceBeforeColon) {
    EXPECT_EQ(outcome(get("Content-Length : 4\r\n")), 400);
    EXPECT_EQ(outcome(get("A\t: b\r\n")), 400);
    HttpParser p;
    std::string in = get("A : b\r\n");
    p.feed(in.data(), in.size());
    EXPECT_STREQ(p.error_reason(), "whitespace before colon");
}

TEST(HttpParser, RejectsInvalidFieldNameChars) {
    for (const char* bad : {"Fo@: x\r\n", "F(o): x\r\n", ": x\r\n", "A\x01: x\r\n", "\x80: x\r\n", "A/B: x\r\n",
                            "NoColon\r\n", "A\"b: x\r\n"})
        EXPECT_EQ(outcome(get(bad)), 400) << bad;
    EXPECT_EQ(outcome(get("!#$%&'*+-.^_`|~09azAZ: x\r\n")), 0);
}

TEST(HttpParser, RejectsControlCharsInValues) {
    for (std::string bad : {std::string("A: x\0y\r\n", 8), std::string("A: \x01\r\n"), std::string("A: a\x7f\r\n"),
                            std::string("A: a\x0c b\r\n"), std::string("A: a\x1b\r\n")})
        EXPECT_EQ(outcome(get(bad)), 400);
    HttpRequest r = parse(get("A: tab\there\r\nB: caf\xc3\xa9 \xff\r\n"));
    EXPECT_EQ(r.headers[1].value, "tab\there");
    EXPECT_EQ(r.headers[2].value, "caf\xc3\xa9 \xff");  // obs-text kept as bytes
}

TEST(HttpParser, RejectsTransferEncodingWithContentLength) {
    EXPECT_EQ(outcome(get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), 400);
    EXPECT_EQ(outcome(get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")), 400);
    EXPECT_EQ(outcome(get("Transfer-Encoding:\r\nContent-Length: 5\r\n")), 400);
}

TEST(HttpParser, RejectsDuplicateOrInvalidContentLength) {
    for (const char* bad : {"Content-Length: 1\r\nContent-Length: 2\r\n", "Content-Length: 1\r\nContent-Length: 1\r\n",
                            "Content-Length: 1, 1\r\n", "Content-Length: +1\r\n", "Content-Length: -1\r\n",
                            "Content-Length: 1a\r\n", "Content-Length:\r\n", "Content-Length: 4 2\r\n",
                            "Content-Length: 0x10\r\n", "Content-Length: \"1\"\r\n", "content-length: 1\r\nCONTENT-LENGTH: 1\r\n"})
        EXPECT_EQ(outcome(get(bad)), 400) << bad;
    EXPECT_EQ(outcome(get("Content-Length: \t0 \t\r\n")), 0);
}

TEST(HttpParser, TransferEncodingRules) {
    EXPECT_EQ(outcome(get("Transfer-Encoding: gzip\r\n")), 400);  // chunked must be final
    EXPECT_EQ(outcome(get("Transfer-Encoding: chunked, gzip\r\n")), 400);
    EXPECT_EQ(outcome(get("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n")), 400);
    EXPECT_EQ(outcome(get("Transfer-Encoding: chunked, chunked\r\n")), 400);
    EXPECT_EQ(outcome(get("Transfer-Encoding:\r\n")), 400);
    EXPECT_EQ(outcome(get("Transfer-Encoding: pigeons, chunked\r\n")), 501);
    EXPECT_EQ(outcome(get("Transfer-Encoding: chunkedchunked\r\n")), 501);
    EXPECT_EQ(outcome(get("Transfer-Encoding: chunked;q=1\r\n")), 501);
    EXPECT_EQ(outcome(get("Transfer-Encoding: identity\r\n")), 501);
    EXPECT_EQ(outcome(get("Transfer-Encoding: \"chunked\"\r\n")), 501);
    HttpRequest r = parse(get("Transfer-Encoding: GZIP , Chunked\t\r\n") + "1\r\nx\r\n0\r\n\r\n");
    EXPECT_TRUE(r.chunked);
    EXPECT_EQ(r.body, "x");
    r = parse(get("Transfer-Encoding: deflate\r\nTransfer-Encoding: ,chunked,\r\n") + "0\r\n\r\n");
    EXPECT_TRUE(r.chunked);
    EXPECT_EQ(outcome("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
}

TEST(HttpParser, VersionChecks) {
    EXPECT_EQ(parse("GET / HTTP/1.0\r\n\r\n").version_minor, 0);
    EXPECT_EQ(outcome("GET / HTTP/2.0\r\n\r\n"), 505);
    EXPECT_EQ(outcome("GET / HTTP/0.9\r\n\r\n"), 505);
    EXPECT_EQ(outcome("GET / HTTP/1.2\r\n\r\n"), 505);
    EXPECT_EQ(outcome("GET / HTTP/5.6"), 505);  // known before the CRLF arrives
    for (const char* bad : {"GET / HTTP/1.10\r\n\r\n", "GET / http/1.1\r\n\r\n", "GET / HTTP/11\r\n\r\n",
                            "GET / HTTP/1.x\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", "GET / HTTP/1\r\n\r\n",
                            "GET /\r\n\r\n", "GET / \r\n\r\n", "GET / RTSP/1.0\r\n\r\n"})
        EXPECT_EQ(outcome(bad), 400) << bad;
}

TEST(HttpParser, RequestLineSyntax) {
    for (const char* bad : {"GET  / HTTP/1.1\r\n\r\n", " GET / HTTP/1.1\r\n\r\n", "GET\t/ HTTP/1.1\r\n\r\n",
                            "GET /\tHTTP/1.1\r\n\r\n", "GE(T / HTTP/1.1\r\n\r\n", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
                            "GET /a\x01 HTTP/1.1\r\n\r\n", "GET /a\x7f HTTP/1.1\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n"})
        EXPECT_EQ(outcome(bad), 400) << bad;
    HttpRequest r = parse("MKCOLA /p?q#frag HTTP/1.1\r\nHost: a\r\n\r\n");  // methods are tokens
    EXPECT_EQ(r.method, "MKCOLA");
    EXPECT_EQ(r.target, "/p?q#frag");
    EXPECT_EQ(r.path, "/p");
    EXPECT_EQ(r.query, "q");
    r = parse("GET /p#f?x HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(r.path, "/p");
    EXPECT_EQ(r.query, "");
}

TEST(HttpParser, TargetForms) {
    HttpRequest r = parse("GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    EXPECT_EQ(r.path, "/a/b");
    EXPECT_EQ(r.query, "c=d");
    r = parse("GET https://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
    EXPECT_EQ(r.path, "/");
    EXPECT_EQ(r.query, "q");
    EXPECT_EQ(outcome("GET http:/x HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET http:///x HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET 1http://x/ HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET example.com:80 HTTP/1.1\r\n\r\n"), 400);  // authority-form only for CONNECT
    EXPECT_EQ(outcome("CONNECT /x HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("CONNECT * HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("CONNECT example.com HTTP/1.1\r\n\r\n"), 400);     // port required
    EXPECT_EQ(outcome("CONNECT example.com: HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("CONNECT :443 HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("CONNECT a@b:443 HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("CONNECT http://a:443 HTTP/1.1\r\n\r\n"), 400);
    r = parse("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n");
    EXPECT_TRUE(r.upgrade);
    EXPECT_EQ(r.path, "[::1]:443");
    r = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(r.path, "*");
    EXPECT_EQ(r.refusal_status(), 0);
    r = parse("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n");  // the parser accepts, the server refuses
    const char* why = nullptr;
    EXPECT_EQ(r.refusal_status(&why), 400);
    EXPECT_STREQ(why, "asterisk-form with a method other than OPTIONS");
    EXPECT_EQ(outcome("GET ** HTTP/1.1\r\n\r\n"), 400);
}

// zan switches to no other protocol, so an Upgrade offer is ignored (RFC
// 9110 7.8): the field is an ordinary one, the request is framed like any
// other, may be served and keeps its connection; what follows it is HTTP.
TEST(HttpParser, UpgradeFieldIsAnOrdinaryField) {
    const std::string offers[] = {
        // curl --http2 http://...
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
    };
    for (const std::string& in : offers) {
        SCOPED_TRACE(in);
        std::string next = get("");
        for (bool store : {true, false}) {
            HttpParser p(HttpLimits(), store);
            EXPECT_EQ(p.feed((in + next).data(), in.size() + next.size()), in.size());
            ASSERT_EQ(p.state(), HttpParser::kComplete);
            EXPECT_FALSE(p.request().upgrade);
            EXPECT_TRUE(p.request().keep_alive);
            EXPECT_FALSE(p.ends_connection());
            if (store) {
                EXPECT_EQ(p.request().refusal_status(), 0);
                EXPECT_TRUE(p.request().has_token("Connection", "upgrade"));  // there for the application
                ASSERT_NE(p.request().header("Upgrade"), nullptr);
            }
            p.reset();
            EXPECT_EQ(p.feed(next.data(), next.size()), next.size());  // the next request is HTTP
            EXPECT_EQ(p.state(), HttpParser::kComplete);
        }
    }
    // The bytes after the offer are HTTP, not data of the offered protocol.
    std::string ws = offers[1] + "\x81\x05hello";
    HttpParser p;
    EXPECT_EQ(p.feed(ws.data(), ws.size()), offers[1].size());
    p.reset();
    EXPECT_EQ(p.feed("\x81", 1), 0u);
    EXPECT_EQ(p.error_status(), 400);
    EXPECT_STREQ(p.error_reason(), "invalid method");

    // A body is read as usual, whatever the offer.
    HttpRequest r = parse("POST /demo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: HTTP/2.0\r\n"
                          "Content-Length: 15\r\n\r\nsweet post body");
    EXPECT_FALSE(r.upgrade);
    EXPECT_EQ(r.body, "sweet post body");
    r = parse("PUT /u HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: ws\r\n"
              "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n");
    EXPECT_FALSE(r.upgrade);
    EXPECT_EQ(r.body, "abcd");
    EXPECT_EQ(outcome("PUT /u HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: ws\r\n"
                      "Content-Length: 4\r\n\r\nab"),
              -1);  // waits for the rest of the body

    // Keep-alive follows the usual rules.
    EXPECT_FALSE(parse(get("Connection: close, upgrade\r\nUpgrade: websocket\r\n")).keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n").keep_alive);
    EXPECT_FALSE(parse(get("Upgrade: websocket\r\n")).upgrade);
    EXPECT_FALSE(parse(get("Connection: upgrade\r\n")).upgrade);
    // The server's other checks still apply.
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n").refusal_status(), 400);
}

// CONNECT and the HTTP/2 preface cannot be served by an HTTP/1.1 server:
// they are marked upgrade, end the connection and are refused 501.
TEST(HttpParser, ConnectAndHttp2PrefaceMarked) {
    std::string in = "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n";
    HttpParser p;
    EXPECT_EQ(p.feed((in + "\x16\x03\x01").data(), in.size() + 3), in.size());  // stops at the message end
    ASSERT_EQ(p.state(), HttpParser::kComplete);
    EXPECT_TRUE(p.request().upgrade);
    const char* why = nullptr;
    EXPECT_EQ(p.request().refusal_status(&why), 501);
    EXPECT_STREQ(why, "CONNECT and the HTTP/2 preface are not supported");
    EXPECT_TRUE(p.ends_connection());
    p.reset();
    EXPECT_EQ(p.feed("\x16", 1), 0u);  // what follows is not HTTP
    EXPECT_EQ(p.state(), HttpParser::kError);
    EXPECT_STREQ(p.error_reason(), "data after a CONNECT or HTTP/2 preface request");
    HttpRequest r = parse("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 5\r\n\r\n");
    EXPECT_TRUE(r.upgrade);
    EXPECT_EQ(r.body, "");  // CONNECT has no content; the rest would be tunnel data
    r = parse("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n");
    EXPECT_TRUE(r.upgrade);
    EXPECT_EQ(r.refusal_status(), 501);
    r = parse("PRI * HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(r.upgrade);
    EXPECT_EQ(r.refusal_status(), 501);
    EXPECT_EQ(outcome("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);  // the real preface: not HTTP/1.x
    EXPECT_FALSE(parse("PRI / HTTP/1.1\r\nHost: a\r\n\r\n").upgrade);  // only with asterisk-form
}

TEST(HttpParser, KeepAliveRules) {
    EXPECT_TRUE(parse(get("")).keep_alive);
    EXPECT_FALSE(parse(get("Connection: close\r\n")).keep_alive);
    EXPECT_FALSE(parse(get("Connection: Keep-Alive\r\nConnection: CLOSE\t\r\n")).keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").keep_alive);
    EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
    EXPECT_TRUE(parse(get("Connection: closed, x-close\r\n")).keep_alive);
    EXPECT_EQ(outcome(get("Connection: a b\r\n")), 400);
    EXPECT_EQ(outcome(get("Connection: \"close\"\r\n")), 400);
}

TEST(HttpParser, ExpectContinue) {
    std::string in = "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
    HttpParser p;
    p.feed(in.data(), in.size());
    EXPECT_EQ(p.state(), HttpParser::kBody);
    EXPECT_TRUE(p.expects_continue());
    EXPECT_FALSE(parse("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx").expect_continue);
    EXPECT_EQ(outcome(get("Expect: the-unexpected\r\n")), 417);
    EXPECT_EQ(outcome(get("Expect: 100-continue; a=b\r\n")), 417);
    EXPECT_EQ(outcome(get("Expect: 100-continue, 200-ok\r\n")), 417);
}

TEST(HttpParser, HostCheckIsSeparate) {
    const char* why = nullptr;
    HttpRequest r = parse("GET / HTTP/1.1\r\n\r\n");  // the parser accepts...
    EXPECT_EQ(r.refusal_status(&why), 400);           // ...the server refuses (RFC 9112 3.2)
    EXPECT_STREQ(why, "HTTP/1.1 request without Host");
    EXPECT_EQ(parse("GET / HTTP/1.0\r\n\r\n").refusal_status(), 0);
    EXPECT_EQ(parse(get("Host: b\r\n")).refusal_status(), 400);
    for (const char* bad : {"a/b", "a b", "a:x", "[::1", "a@b", "[::1]x", "a]"})
        EXPECT_EQ(parse(std::string("GET / HTTP/1.1\r\nHost: ") + bad + "\r\n\r\n").refusal_status(), 400) << bad;
    for (const char* ok : {"", "example.com", "example.com:8080", "[::1]:80", "0.0.0.0=5000", "a.b_c~d%20"})
        EXPECT_EQ(parse(std::string("GET / HTTP/1.1\r\nHost: ") + ok + "\r\n\r\n").refusal_status(), 0) << ok;
}

TEST(HttpParser, LeadingEmptyLines) {
    HttpLimits l;
    EXPECT_EQ(outcome("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    EXPECT_EQ(outcome(std::string(l.max_empty_lines * 2, '\r').replace(1, 1, "\n") + "GET / HTTP/1.1\r\n\r\n"), 400);
    std::string many;
    for (size_t i = 0; i <= l.max_empty_lines; ++i) many += "\r\n";
    EXPECT_EQ(outcome(many + "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    HttpParser p;
    p.feed("\r\n", 2);
    EXPECT_EQ(p.state(), HttpParser::kStart);  // still idle
    EXPECT_EQ(p.message_bytes(), 2u);
}

TEST(HttpParser, ByteAtATimeEqualsOneShot) {
    // outcome() compares one-shot, 1/2/3/7-byte pieces and store=false;
    // here also every two-piece split of complete messages, field by field.
    std::vector<std::string> msgs = {
        "POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX:  v \r\n\r\nhello",
        post_chunked("3;e=\"q\\\"\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n"),
        "\r\nGET http://h/p?q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    for (const std::string& m : msgs) {
        HttpRequest whole = parse(m);
        for (size_t k = 1; k < m.size(); ++k) {
            HttpParser p;
            size_t a = p.feed(m.data(), k);
            ASSERT_EQ(a, k);
            ASSERT_EQ(p.feed(m.data() + k, m.size() - k), m.size() - k);
            ASSERT_EQ(p.state(), HttpParser::kComplete);
            const HttpRequest& r = p.request();
            EXPECT_EQ(r.method, whole.method);
            EXPECT_EQ(r.target, whole.target);
            EXPECT_EQ(r.path, whole.path);
            EXPECT_EQ(r.query, whole.query);
            EXPECT_EQ(r.body, whole.body);
            ASSERT_EQ(r.headers.size(), whole.headers.size());
            for (size_t i = 0; i < r.headers.size(); ++i) {
                EXPECT_EQ(r.headers[i].name, whole.headers[i].name);
                EXPECT_EQ(r.headers[i].value, whole.headers[i].value);
            }
            EXPECT_EQ(r.trailers.size(), whole.trailers.size());
            EXPECT_EQ(r.keep_alive, whole.keep_alive);
        }
    }
}

TEST(HttpParser, PipelinedRequestsWithReset) {
    std::string in = "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
                     post_chunked("6\r\nfoobar\r\n0\r\n\r\n") + "\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n" +
                     "GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    for (bool store : {true, false}) {
        HttpParser p(HttpLimits(), store);
        std::vector<std::string> bodies;
        std::vector<size_t> sizes;
        size_t at = 0;
        while (at < in.size()) {
            at += p.feed(in.data() + at, in.size() - at);
            ASSERT_EQ(p.state(), HttpParser::kComplete);
            bodies.push_back(p.request().body);
            sizes.push_back(p.message_bytes());
            EXPECT_EQ(p.ends_connection(), at == in.size());  // only the last says close
            if (at < in.size()) p.reset();
        }
        p.reset();
        EXPECT_EQ(p.feed("G", 1), 0u);  // after Connection: close
        EXPECT_EQ(p.state(), HttpParser::kError);
        p.reset_connection();
        EXPECT_EQ(p.feed("G", 1), 1u);
        ASSERT_EQ(sizes.size(), 4u);
        EXPECT_EQ(sizes[0], 51u);
        if (store) {
            EXPECT_EQ(bodies[0], "abc");
            EXPECT_EQ(bodies[1], "foobar");  // the last request's body answered on its own
        } else {
            EXPECT_EQ(bodies[1], "");  // store=false copies nothing
        }
    }
}

TEST(HttpParser, DataAfterCloseOrErrorIsRejected) {
    HttpParser p;
    std::string in = "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n";
    size_t n = p.feed(in.data(), in.size());
    EXPECT_EQ(n, 18u);
    EXPECT_TRUE(p.ends_connection());  // the server answers, reads no further and closes
    p.reset();
    EXPECT_FALSE(p.ends_connection());
    EXPECT_EQ(p.feed(in.data() + n, in.size() - n), 0u);
    EXPECT_EQ(p.error_status(), 400);
    EXPECT_STREQ(p.error_reason(), "data after a Connection: close request");
    p.reset();  // an error keeps the connection finished too
    EXPECT_EQ(p.feed(in.data(), in.size()), 0u);
    EXPECT_EQ(p.state(), HttpParser::kError);
    p.reset_connection();  // a new connection (or a Worker's next whole message)
    EXPECT_EQ(p.feed(in.data(), in.size()), 18u);
    EXPECT_EQ(p.state(), HttpParser::kComplete);
    std::string ka = get("");
    p.reset_connection();
    EXPECT_EQ(p.feed(ka.data(), ka.size()), ka.size());
    EXPECT_FALSE(p.ends_connection());
}

TEST(HttpParser, ErrorOffsetPointsAtBadByte) {
    std::string in = "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n";
    HttpParser p;
    EXPECT_EQ(p.feed(in.data(), in.size()), in.find("Bad ") + 3);
    EXPECT_EQ(p.message_bytes(), in.find("Bad ") + 3);
    EXPECT_EQ(p.error_status(), 400);
}

TEST(HttpParser, LimitRequestLine414) {
    HttpLimits l;
    l.max_request_line = 64;
    std::string line = "GET /" + std::string(64 - 16, 'a') + " HTTP/1.1\r\n";  // exactly 64 bytes
    ASSERT_EQ(line.size(), 64u);
    EXPECT_EQ(outcome(line + "Host: a\r\n\r\n", l), 0);
    std::string over = "GET /" + std::string(64 - 15, 'a') + " HTTP/1.1\r\n";
    EXPECT_EQ(outcome(over + "Host: a\r\n\r\n", l), 414);
    EXPECT_EQ(outcome("GET /" + std::string(1000, 'a'), l), 414);  // no need to wait for the CRLF
    EXPECT_EQ(outcome("\r\n\r\n" + line + "\r\n", l), 0);           // leading CRLFs do not count
}

TEST(HttpParser, LimitHeaderBytes431) {
    HttpLimits l;
    l.max_header_bytes = 100;
    std::string head = "GET / HTTP/1.1\r\n";
    std::string fields = "Host: a\r\nX: " + std::string(100 - 9 - 5 - 2, 'v') + "\r\n\r\n";  // exactly 100
    ASSERT_EQ(fields.size(), 100u);
    EXPECT_EQ(outcome(head + fields, l), 0);
    EXPECT_EQ(outcome(head + "Host: a\r\nX: " + std::string(100 - 9 - 5 - 1, 'v') + "\r\n\r\n", l), 431);
    EXPECT_EQ(outcome(head + "X: " + std::string(5000, 'v'), l), 431);  // caught before the CRLF
    // Also as the second pipelined request.
    std::string two = head + fields + head + "Host: a\r\nX: " + std::string(200, 'v') + "\r\n\r\n";
    HttpParser p(l);
    size_t n = p.feed(two.data(), two.size());
    EXPECT_EQ(p.state(), HttpParser::kComplete);
    p.reset();
    p.feed(two.data() + n, two.size() - n);
    EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpParser, LimitHeaderCount431) {
    HttpLimits l;
    l.max_headers = 5;
    std::string five, six;
    for (int i = 0; i < 5; ++i) five += "A" + std::to_string(i) + ": x\r\n";
    six = five + "A5: x\r\n";
    EXPECT_EQ(outcome("GET / HTTP/1.1\r\n" + five + "\r\n", l), 0);
    EXPECT_EQ(outcome("GET / HTTP/1.1\r\n" + six + "\r\n", l), 431);
    EXPECT_EQ(outcome(post_chunked("0\r\n") + six + "\r\n", l), 431);  // trailers have the same cap
    EXPECT_EQ(outcome(post_chunked("0\r\n") + five + "\r\n", l), 0);
}

TEST(HttpParser, LimitBody413) {
    HttpLimits l;
    l.max_body = 10;
    std::string head = "POST / HTTP/1.1\r\nHost: a\r\n";
    EXPECT_EQ(outcome(head + "Content-Length: 10\r\n\r\n0123456789", l), 0);
    EXPECT_EQ(outcome(head + "Content-Length: 11\r\n", l), 413);  // before any body byte
    EXPECT_EQ(outcome(head + "Content-Length: 99999999999999999999999999\r\n\r\n", l), 413);
    EXPECT_EQ(outcome(post_chunked("5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"), l), 0);
    EXPECT_EQ(outcome(post_chunked("5\r\n01234\r\n6\r\n"), l), 413);
    EXPECT_EQ(outcome(post_chunked("b\r\n"), l), 413);
}

TEST(HttpParser, LimitChunkLineAndTrailers) {
    HttpLimits l;
    l.max_chunk_line = 16;
    EXPECT_EQ(outcome(post_chunked("1;abcdefghijkl\r\nx\r\n0\r\n\r\n"), l), 0);  // 16 bytes
    EXPECT_EQ(outcome(post_chunked("1;abcdefghijklm\r\nx\r\n0\r\n\r\n"), l), 400);
    EXPECT_EQ(outcome(post_chunked(std::string(100, '0')), l), 400);
    l = HttpLimits();
    l.max_header_bytes = 64;
    EXPECT_EQ(outcome("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(80, 'x'), l), 431);
}

TEST(HttpParser, StoreFalseKeepsScalarsOnly) {
    std::string in = "PUT /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\nExpect: 100-continue\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n";
    HttpParser p(HttpLimits(), false);
    EXPECT_EQ(p.feed(in.data(), in.size()), in.size());
    ASSERT_EQ(p.state(), HttpParser::kComplete);
    const HttpRequest& r = p.request();
    EXPECT_TRUE(r.method.empty() && r.target.empty() && r.headers.empty() && r.trailers.empty() && r.body.empty());
    EXPECT_FALSE(r.keep_alive);
    EXPECT_TRUE(r.chunked);
    EXPECT_TRUE(r.expect_continue);
    EXPECT_EQ(p.message_bytes(), in.size());
}

// load() that refuses bytes leaves the parser as reset_connection() does,
// whatever an earlier feed() left half done, so feed() can take over.
TEST(HttpParser, RefusedLoadLeavesAFreshParser) {
    const std::string ok = "GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    for (const char* bad : {"not a request", "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
                            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}) {
        HttpParser p;
        const char partial[] = "GET / HTTP/1.1\r\nHo";
        ASSERT_EQ(p.feed(partial, sizeof(partial) - 1), sizeof(partial) - 1);
        EXPECT_FALSE(p.load(bad, strlen(bad))) << bad;
        EXPECT_EQ(p.state(), HttpParser::kStart) << bad;
        EXPECT_TRUE(p.request().method.empty() && p.request().headers.empty()) << bad;
        ASSERT_EQ(p.feed(ok.data(), ok.size()), ok.size()) << bad;
        ASSERT_EQ(p.state(), HttpParser::kComplete) << bad;
        EXPECT_EQ(p.request().path, "/a");
        EXPECT_EQ(p.request().query, "b");
        EXPECT_FALSE(p.request().keep_alive);
    }
    // And one it takes after a half-done feed() is whole.
    HttpParser p;
    ASSERT_EQ(p.feed("PUT", 3), 3u);
    ASSERT_TRUE(p.load(ok.data(), ok.size()));
    EXPECT_EQ(p.request().method, "GET");
    EXPECT_TRUE(p.ends_connection());
}

TEST(HttpParser, DribbledHeaderCostIsLinear) {
    // A header section fed one byte per call must cost O(n): compare 16 KiB
    // with 256 KiB; quadratic work would make the ratio about 256, linear 16.
    auto cost = [](size_t n) {
        HttpLimits l;
        l.max_header_bytes = n + 64;
        std::string in = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(n, 'v') + "\r\n\r\n";
        double best = 1e9;
        for (int round = 0; round < 3; ++round) {
            HttpParser p(l, false);
            timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            for (size_t i = 0; i < in.size(); ++i) p.feed(in.data() + i, 1);
            clock_gettime(CLOCK_MONOTONIC, &b);
            EXPECT_EQ(p.state(), HttpParser::kComplete);
            best = std::min(best, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
        }
        return best;
    };
    double small = cost(16 * 1024), large = cost(256 * 1024);
    EXPECT_LT(large, small * 64 + 0.005) << small << " s vs " << large << " s";
}

// Host values (RFC 9110 7.2: uri-host [":" port]): reg-name, IPv4 and
// IP-literal characters, then only digits after the port colon.
TEST(HttpRequest, HostValidity) {
    auto status = [](const std::string& host) {
        return parse("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n").refusal_status();
    };
    for (const char* ok : {"a", "example.com", "a-b.c_d~e", "127.0.0.1:8080", "[::1]", "[::1]:443",
                           "x%41y", "a!$&'()*+,;=b", "h:"})
        EXPECT_EQ(0, status(ok)) << ok;
    for (const char* bad : {"a/b", "a@b", "a:8x", "a:1:2", "1.2.3.4:80]", "[::1", "a]", "a[b]", "[::1]x", "a\"b", "a<b",
                            "a{b}", "a^b", "a|b", "a`b", "a\\b"})
        EXPECT_EQ(400, status(bad)) << bad;
}

// ---- response mode ----

namespace {

HttpParser response_parser(HttpLimits l = HttpLimits(), bool store = true) {
    return HttpParser(l, store, HttpParser::kResponses);
}

}  // namespace

TEST(HttpParserResponse, StatusLineAndFields) {
    HttpParser p = response_parser();
    std::string in = "HTTP/1.0 404 Not  Found\r\nContent-Length: 3\r\nX: y\r\n\r\nabc";
    EXPECT_EQ(p.feed(in.data(), in.size()), in.size());
    ASSERT_EQ(p.state(), HttpParser::kComplete);
    EXPECT_EQ(p.status(), 404);
    EXPECT_EQ(p.reason(), "Not  Found");
    EXPECT_EQ(p.message().version_minor, 0);
    EXPECT_FALSE(p.message().keep_alive);
    EXPECT_EQ(*p.message().header("x"), "y");
    EXPECT_EQ(p.message().body, "abc");
    EXPECT_TRUE(p.ends_connection());
    EXPECT_TRUE(p.request().method.empty());
    // Responses are never load()ed: that shortcut trusts a request framer.
    HttpParser q = response_parser();
    EXPECT_FALSE(q.load(in.data(), in.size()));
    EXPECT_EQ(q.state(), HttpParser::kStart);
}

TEST(HttpParserResponse, EveryFailureIs502) {
    HttpLimits l;
    l.max_header_bytes = 32;
    for (const char* in : {"HTTP/1.1 200 OK\r\nA: " "0123456789012345678901234567890123\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                           "HTTP/1.1 2 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"}) {
        HttpParser p = response_parser(l);
        p.feed(in, strlen(in));
        ASSERT_EQ(p.state(), HttpParser::kError) << in;
        EXPECT_EQ(p.error_status(), 502) << in;
    }
}

TEST(HttpParserResponse, EofEndsOnlyACloseDelimitedBody) {
    HttpParser p = response_parser();
    EXPECT_EQ(p.eof(), HttpParser::kStart);  // a clean close between responses
    std::string in = "HTTP/1.1 200 OK\r\n\r\nsome";
    p.feed(in.data(), in.size());
    EXPECT_EQ(p.state(), HttpParser::kBody);
    EXPECT_EQ(p.eof(), HttpParser::kComplete);
    EXPECT_EQ(p.message().body, "some");
    EXPECT_FALSE(p.message().keep_alive);
    p.reset();
    EXPECT_EQ(p.feed("H", 1), 0u);
    EXPECT_EQ(p.state(), HttpParser::kError) << "data after a close-delimited response";

    HttpParser q = response_parser();
    in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc";
    q.feed(in.data(), in.size());
    EXPECT_EQ(q.eof(), HttpParser::kError);
    EXPECT_EQ(q.error_status(), 502);
    EXPECT_EQ(q.message_bytes(), in.size());
}

TEST(HttpParserResponse, ResponseToHeadIsForgottenByReset) {
    HttpParser p = response_parser();
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
    p.response_to("HEAD");
    EXPECT_EQ(p.feed(head.data(), head.size()), head.size());
    EXPECT_EQ(p.state(), HttpParser::kComplete);
    p.reset();
    EXPECT_EQ(p.feed(head.data(), head.size()), head.size());
    EXPECT_EQ(p.state(), HttpParser::kBody) << "a GET response after reset() has its body";
}

TEST(HttpParserResponse, InterimResponsesAreReportedAndSkipped) {
    HttpParser p = response_parser();
    std::vector<std::string> seen;
    p.on_interim([&seen](const HttpParser& q) {
        std::string s = std::to_string(q.status()) + " " + q.reason();
        for (const auto& h : q.message().headers) s += " " + h.name + "=" + h.value;
        seen.push_back(s);
    });
    std::string in = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    EXPECT_EQ(p.feed(in.data(), in.size()), in.size());
    ASSERT_EQ(p.state(), HttpParser::kComplete);
    EXPECT_EQ(p.status(), 200);
    EXPECT_EQ(p.interim_responses(), 2u);
    EXPECT_EQ(p.message().headers.size(), 1u);
    EXPECT_EQ(p.message_bytes(), in.size());
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], "100 Continue");
    EXPECT_EQ(seen[1], "103 Early Hints Link=</a>");
    // An endless stream of 1xx is refused.
    HttpParser q = response_parser();
    std::string flood;
    for (int i = 0; i < 20; ++i) flood += "HTTP/1.1 100 Continue\r\n\r\n";
    q.feed(flood.data(), flood.size());
    EXPECT_EQ(q.state(), HttpParser::kError);
}

// A body larger than any limit streams through the sink a piece at a
// time; nothing of it is kept.
TEST(HttpParserResponse, BodySinkStreamsA20MiBBody) {
    HttpLimits l;
    l.max_body = SIZE_MAX;
    for (bool chunked : {false, true}) {
        HttpParser p = response_parser(l);
        size_t got = 0, calls = 0;
        bool same = true;
        p.set_body_sink([&](std::string_view b) {
            for (char c : b) same &= c == 'z';
            got += b.size();
            ++calls;
        });
        const size_t total = 20u << 20, piece = 64 << 10;
        std::string head = chunked ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   : "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n";
        ASSERT_EQ(p.feed(head.data(), head.size()), head.size());
        char size_line[32];
        snprintf(size_line, sizeof(size_line), "%zx\r\n", piece);
        std::string data(piece, 'z');
        std::string block = chunked ? size_line + data + "\r\n" : data;
        for (size_t sent = 0; sent < total; sent += piece) ASSERT_EQ(p.feed(block.data(), block.size()), block.size());
        if (chunked) p.feed("0\r\n\r\n", 5);
        ASSERT_EQ(p.state(), HttpParser::kComplete);
        EXPECT_EQ(got, total);
        EXPECT_TRUE(same);
        EXPECT_EQ(calls, total / piece);
        EXPECT_TRUE(p.message().body.empty());
    }
}
