// Requests that offer a protocol upgrade, through a live zan-httpd on
// 127.0.0.1. zan switches to no other protocol, so it ignores the offer
// (RFC 9110 section 7.8): the request is served as an ordinary HTTP/1.1
// request, never with 101, and the connection is kept alive as usual; the
// client learns from the status that no upgrade happened. Only CONNECT and
// the HTTP/2 preface (PRI *) cannot be served by an HTTP/1.1 server and
// are refused. The fixture stops the server even when an assertion fails.
#include <stdio.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/http_client.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

namespace {

using zt::HttpClient;
using zt::HttpReply;

// What `curl --http2 http://...` sends (curl 7.88).
const char kH2cGet[] =
    "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";

// A WebSocket opening handshake (RFC 6455 section 1.2).
std::string websocket_get(const std::string& path)
{
    return "GET " + path +
           " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

const char kText[] = "upgrade test\n";

// zan-httpd serving a directory that holds a.txt.
class HttpServerUpgrade : public zt::ServerTest {
protected:
    ::testing::AssertionResult start_site()
    {
        if (!zt::write_file(dir_.path + "/a.txt", kText))
            return ::testing::AssertionFailure() << "cannot write " << dir_.path << "/a.txt";
        return start_httpd({"--root", dir_.path});
    }

    zt::TempDir dir_;
};

// The answer to a request whose upgrade offer was ignored: a final status
// (not 101), no Upgrade field (zan has no protocol to advertise, RFC 9110
// section 7.8) and a connection that stays open.
void expect_ordinary(const HttpReply& r, int status)
{
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.header("Upgrade"), nullptr);
    EXPECT_FALSE(r.closes());
}

}  // namespace

TEST_F(HttpServerUpgrade, H2cUpgradeGetIsServedAndTheConnectionKept)
{
    ASSERT_TRUE(start_site());
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    HttpReply r;
    ASSERT_TRUE(c.request(kH2cGet, &r));
    expect_ordinary(r, 200);
    EXPECT_EQ(r.version, "HTTP/1.1");
    EXPECT_EQ(r.body, kText);
    // A second request on the same connection, with and without an offer.
    ASSERT_TRUE(c.request("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", &r))
        << (c.eof() ? "closed" : "no answer");
    expect_ordinary(r, 200);
    EXPECT_EQ(r.body, kText);
    ASSERT_TRUE(c.request(kH2cGet, &r));
    expect_ordinary(r, 200);
    EXPECT_TRUE(c.quiet(200)) << "closed or more bytes: " << c.pending();
}

// Pipelined behind an upgrade offer, the next request is HTTP, not tunnel
// data: both are answered, in order.
TEST_F(HttpServerUpgrade, RequestPipelinedAfterAnUpgradeOfferIsAnswered)
{
    ASSERT_TRUE(start_site());
    HttpClient c(port_);
    ASSERT_TRUE(c.send(std::string(kH2cGet) + "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"));
    HttpReply r;
    ASSERT_TRUE(c.next(&r));
    expect_ordinary(r, 200);
    EXPECT_EQ(r.body, kText);
    ASSERT_TRUE(c.next(&r)) << (c.eof() ? "closed" : "no answer");
    expect_ordinary(r, 404);
}

TEST_F(HttpServerUpgrade, WebSocketHandshakeIsServedAsAnOrdinaryGet)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "1"}));  // the demo: GET / is "hello\n"
    HttpClient c(port_);
    HttpReply r;
    ASSERT_TRUE(c.request(websocket_get("/"), &r));
    expect_ordinary(r, 200);
    EXPECT_EQ(r.body, "hello\n");
    EXPECT_EQ(r.header("Sec-WebSocket-Accept"), nullptr);
    ASSERT_TRUE(c.request(websocket_get("/chat"), &r));
    expect_ordinary(r, 404);
    ASSERT_TRUE(c.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r));
    expect_ordinary(r, 200);
    // Connection: close still ends the connection, offer or not.
    ASSERT_TRUE(c.request("GET / HTTP/1.1\r\nHost: x\r\nConnection: close, upgrade\r\n"
                          "Upgrade: websocket\r\n\r\n",
                          &r));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.closes());
    EXPECT_TRUE(c.closed(2000));
}

// The body of a request with an upgrade offer is read as its body
// (Content-Length or chunked), and what follows it is the next request.
TEST_F(HttpServerUpgrade, RequestWithBodyAndUpgradeIsServed)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "1"}));
    HttpClient c(port_);
    ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: HTTP/2.0\r\n"
                       "Content-Length: 15\r\n\r\nsweet post body"
                       "POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    HttpReply r;
    ASSERT_TRUE(c.next(&r));
    expect_ordinary(r, 405);  // the demo serves GET and HEAD only: the handler saw it
    ASSERT_TRUE(c.next(&r)) << (c.eof() ? "closed" : "no answer");
    expect_ordinary(r, 405);
    ASSERT_TRUE(c.next(&r)) << (c.eof() ? "closed" : "no answer");
    expect_ordinary(r, 200);
    EXPECT_EQ(r.body, "hello\n");
}

// CONNECT and the HTTP/2 preface are still refused and end the connection:
// 501 for CONNECT and "PRI * HTTP/1.1", 505 for the real preface
// "PRI * HTTP/2.0" (its version is not HTTP/1.x).
TEST_F(HttpServerUpgrade, ConnectAndHttp2PrefaceAreStillRefused)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "1"}));
    const struct {
        const char* raw;
        int status;
    } refused[] = {
        {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501},
        {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: upgrade\r\n"
         "Upgrade: h2c\r\n\r\n",
         501},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        {"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n", 501},
    };
    for (const auto& t : refused) {
        SCOPED_TRACE(t.raw);
        HttpClient c(port_);
        HttpReply r;
        ASSERT_TRUE(c.request(std::string(t.raw) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r));
        EXPECT_EQ(r.status, t.status);
        EXPECT_TRUE(r.closes());
        EXPECT_TRUE(c.closed(2000));
        EXPECT_EQ(c.pending(), "") << "more after the refusal";
    }
}

// curl --http2 on an http:// URL offers h2c and falls back to HTTP/1.1
// when the server ignores the offer; it reuses the connection.
TEST_F(HttpServerUpgrade, CurlHttp2FallsBackToHttp11)
{
    std::string out;
    if (zt::run_command("curl --version", &out) != 0 || out.find("HTTP2") == std::string::npos)
        GTEST_SKIP() << "curl without HTTP/2 support";
    ASSERT_TRUE(start_site());
    std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/a.txt";
    std::string cmd = "curl --noproxy '*' -s --http2 --max-time " + std::to_string(zt::scaled(10000) / 1000) +
                      " -w '%{http_code} %{num_connects} %{http_version}\\n'";
    int rc = zt::run_command(cmd + " -o /dev/null " + url + " -o /dev/null " + url, &out);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(out, "200 1 1.1\n200 0 1.1\n");
}
