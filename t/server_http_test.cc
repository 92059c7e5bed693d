// Integration tests of HttpServer through zan-httpd, the demo server.
// Most tests start the real build/tools/zan-httpd on 127.0.0.1 with
// --port 0 and talk to it with real clients (curl, Python's http.client)
// and with raw sockets for what those clients cannot send: pipelining,
// smuggling vectors, limits, slowloris, half-close. The HttpResponse API
// that zan-httpd does not use is tested on a library server in a forked
// child (LibServer). Every wait has a deadline; the zt::ServerTest
// fixture and LibServer stop their server (and its children) even when an
// assertion fails, and temporary directories are removed at scope exit.
//
// Client sockets are locals of the test, so they close before the fixture
// stops the server: its graceful stop has no keep-alive connection to
// wait for.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "t/forked_main.h"
#include "t/forked_server.h"
#include "t/http_client.h"
#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/http_server.h"

namespace {

using zt::HttpClient;
using zt::HttpReply;
using zt::Sock;

std::string get(const std::string& path, const std::string& extra = "",
                const std::string& method = "GET")
{
    return method + " " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

std::string post(const std::string& path, const std::string& body, const std::string& extra = "")
{
    return "POST " + path + " HTTP/1.1\r\nHost: test\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// Connects, sends `raw` in one write and reads `n` responses.
std::vector<HttpReply> exchange(int port, const std::string& raw, size_t n, bool* closed = nullptr,
                                int timeout_ms = 5000)
{
    std::vector<HttpReply> out;
    HttpClient c(port);
    if (!c.ok() || !c.send(raw))
        return out;
    HttpReply r;
    while (out.size() < n && c.next(&r, false, timeout_ms))
        out.push_back(r);
    if (closed)
        *closed = c.closed(2000);
    return out;
}

// A fresh connection still gets 200 for GET / (the server survived).
void expect_serves(int port, const std::string& what = "")
{
    auto rs = exchange(port, get("/"), 1);
    ASSERT_EQ(rs.size(), 1u) << what;
    EXPECT_EQ(rs[0].status, 200) << what;
}

// Runs a shell command (curl, python3) and returns its stdout; the exit
// code goes to *rc.
std::string sh(const std::string& cmd, int* rc = nullptr, int timeout_s = 30)
{
    std::string out;
    int r = zt::run_command(cmd, &out, timeout_s);
    if (rc)
        *rc = r;
    return out;
}

std::string url(int port, const std::string& path = "/")
{
    return "http://127.0.0.1:" + std::to_string(port) + path;
}

// curl with proxies off (the tests talk to 127.0.0.1 only) and a time
// limit of `max_s` seconds, scaled; the options and URL follow.
std::string curl_cmd(int max_s = 10)
{
    return "curl --noproxy '*' --max-time " + std::to_string(zt::scaled(max_s * 1000) / 1000) + " ";
}

// Parses the output of curl -i (one response; interim ones skipped).
HttpReply curl_reply(const std::string& out, bool head = false)
{
    HttpReply r;
    size_t pos = 0;
    for (;;) {
        long n = zt::parse_http_reply(out, pos, head, true, &r);
        if (n <= 0 || r.status >= 200)
            return r;
        pos += static_cast<size_t>(n);
    }
}

// curl -s -i with `args` (options and URL): its response; curl's exit
// code goes to *rc.
HttpReply curl(const std::string& args, int* rc = nullptr)
{
    return curl_reply(sh(curl_cmd() + "-s -i " + args, rc));
}

// Deterministic incompressible bytes.
std::string random_bytes(size_t n, uint64_t seed)
{
    std::string s(n, '\0');
    uint64_t x = seed ? seed : 88172645463325252ULL;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(&s[i], &x, n - i < 8 ? n - i : 8);
    }
    return s;
}

uint64_t fnv1a(const std::string& s)
{
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

// One zan-httpd per test (zt::ServerTest).
class HttpServer : public zt::ServerTest {
protected:
    // zan-httpd with one NetWorker and one Worker; *c is a keep-alive
    // connection on which GET / was answered. Then the Worker (*worker) is
    // frozen, so that further requests stay in flight until SIGCONT.
    ::testing::AssertionResult start_with_frozen_worker(HttpClient* c, pid_t* worker)
    {
        ::testing::AssertionResult started = start_httpd({"--worker-num", "1", "--net-worker-num", "1"});
        if (!started)
            return started;
        *worker = wait_for_name("zan-worker-0", 0);
        if (*worker <= 0)
            return ::testing::AssertionFailure() << "no zan-worker-0";
        *c = HttpClient(port_);
        HttpReply r;
        if (!c->ok() || !c->request(get("/"), &r))
            return ::testing::AssertionFailure() << "no answer to GET /";
        if (!freeze(*worker))
            return ::testing::AssertionFailure() << "cannot SIGSTOP the Worker";
        return ::testing::AssertionSuccess();
    }
};

// ---------------------------------------------------------------- clients

TEST_F(HttpServer, CurlHelloHeadHttp10AndKeepAlive)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "2"}));
    int rc = -1;

    HttpReply r = curl(url(port_), &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.version, "HTTP/1.1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello\n");
    ASSERT_TRUE(r.header("Content-Length"));
    EXPECT_EQ(*r.header("Content-Length"), "6");
    ASSERT_TRUE(r.header("Server"));
    EXPECT_EQ(*r.header("Server"), "zan");
    ASSERT_TRUE(r.header("Date"));
    EXPECT_NE(r.header("Date")->find(" GMT"), std::string::npos);
    EXPECT_FALSE(r.closes());

    r = curl(url(port_, "/missing"), &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.status, 404);

    r = curl("-X POST --data-binary abc " + url(port_), &rc);
    EXPECT_EQ(r.status, 405);

    // HEAD: the GET headers with the GET Content-Length, and no body.
    std::string out = sh(curl_cmd() + "-s -I " + url(port_), &rc);
    EXPECT_EQ(rc, 0);
    r = curl_reply(out, true);
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.header("Content-Length"));
    EXPECT_EQ(*r.header("Content-Length"), "6");
    EXPECT_EQ(out.find("hello"), std::string::npos);

    // HTTP/1.0 without keep-alive: a response (HTTP/1.1, RFC 9110 6.2) that closes.
    r = curl("--http1.0 " + url(port_), &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.version, "HTTP/1.1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello\n");
    EXPECT_TRUE(r.closes());

    // curl reuses one connection for three URLs: num_connects 1, 0, 0.
    out = sh(curl_cmd() + "-s -w '%{http_code} %{num_connects}\\n' -o /dev/null " +
                 url(port_) + " -o /dev/null " + url(port_, "/x") + " -o /dev/null " + url(port_),
             &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(out, "200 1\n404 0\n200 0\n");
}

TEST_F(HttpServer, PythonHttpClientKeepAlive)
{
    ASSERT_TRUE(start_httpd());
    std::string py =
        "import http.client\n"
        "c = http.client.HTTPConnection('127.0.0.1', " + std::to_string(port_) +
        ", timeout=" + std::to_string(zt::scaled(10000) / 1000) + ")\n"
        "out = []\n"
        "for i in range(5):\n"
        "    c.request('GET', '/')\n"
        "    r = c.getresponse(); b = r.read()\n"
        "    out.append('GET %d %s %r' % (r.status, r.getheader('Content-Length'), b))\n"
        "s0 = c.sock\n"
        "c.request('HEAD', '/'); r = c.getresponse(); b = r.read()\n"
        "out.append('HEAD %d %s %r' % (r.status, r.getheader('Content-Length'), b))\n"
        "c.request('POST', '/upload', body=b'x' * 300000)\n"
        "r = c.getresponse(); r.read(); out.append('POST %d' % r.status)\n"
        "c.request('PUT', '/chunked', body=iter([b'abc', b'def', b'g' * 70000]), encode_chunked=True)\n"
        "r = c.getresponse(); r.read(); out.append('CHUNKED %d' % r.status)\n"
        "out.append('reused %s' % (c.sock is s0))\n"
        "c.request('GET', '/', headers={'Connection': 'close'})\n"
        "r = c.getresponse(); b = r.read()\n"
        "out.append('CLOSE %d %s %s %r' % (r.status, r.getheader('Connection'), r.will_close, b))\n"
        "print('\\n'.join(out))\n";
    int rc = -1;
    std::string out = sh("python3 -c " + zt::shell_quote(py), &rc);
    EXPECT_EQ(rc, 0);
    std::string want;
    for (int i = 0; i < 5; i++)
        want += "GET 200 6 b'hello\\n'\n";
    want += "HEAD 200 6 b''\n"
            "POST 404\n"
            "CHUNKED 404\n"
            "reused True\n"
            "CLOSE 200 close True b'hello\\n'\n";
    EXPECT_EQ(out, want);
}

TEST_F(HttpServer, CurlExpectContinue)
{
    ASSERT_TRUE(start_httpd());
    zt::TempDir dir;
    std::string file = dir.path + "/upload.bin";
    ASSERT_TRUE(zt::write_file(file, random_bytes(300000, 7)));
    int rc = -1;
    std::string out = sh(curl_cmd() + "-s -v -H 'Expect: 100-continue' --data-binary @" + file +
                             " -o /dev/null -w 'code %{http_code}\\n' " + url(port_, "/upload") + " 2>&1",
                         &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("< HTTP/1.1 100 Continue"), std::string::npos) << out;
    EXPECT_NE(out.find("code 404"), std::string::npos) << out;
}

// ---------------------------------------------------------------- raw sockets

TEST_F(HttpServer, ExpectContinueByVersion)
{
    ASSERT_TRUE(start_httpd());
    {
        // HTTP/1.1: 100 Continue once the headers are in, before the body.
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(c.send("POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                           "Content-Length: 5\r\n\r\n"));
        HttpReply r;
        ASSERT_TRUE(c.next(&r, false, 3000)) << "no 100 Continue";
        EXPECT_EQ(r.status, 100);
        EXPECT_EQ(r.version, "HTTP/1.1");
        ASSERT_TRUE(c.request("hello", &r));
        EXPECT_EQ(r.status, 404);
        // The connection stays usable.
        ASSERT_TRUE(c.request(get("/"), &r));
        EXPECT_EQ(r.status, 200);
    }
    {
        // HTTP/1.0: no interim response; the final one comes after the body.
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(c.send("POST /up HTTP/1.0\r\nExpect: 100-continue\r\n"
                           "Content-Length: 5\r\n\r\n"));
        EXPECT_TRUE(c.quiet(400)) << "answered an HTTP/1.0 Expect: " << c.pending();
        HttpReply r;
        ASSERT_TRUE(c.request("hello", &r));
        EXPECT_EQ(r.status, 404);
        EXPECT_EQ(r.version, "HTTP/1.1");
    }
    {
        // An expectation we cannot meet: 417 and close, the body never read.
        bool closed = false;
        auto rs = exchange(port_,
                           "POST /up HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\n"
                           "Content-Length: 5\r\n\r\n",
                           1, &closed);
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].status, 417);
        EXPECT_TRUE(rs[0].closes());
        EXPECT_TRUE(closed);
    }
    {
        // Expect on a pipelined request behind one still being answered:
        // the 100 must not overtake the first response.
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(c.send(get("/") + "POST /up HTTP/1.1\r\nHost: t\r\n"
                                      "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
        HttpReply r;
        ASSERT_TRUE(c.next(&r));
        EXPECT_EQ(r.status, 200);
        ASSERT_TRUE(c.next(&r, false, 3000));
        EXPECT_EQ(r.status, 100);
        ASSERT_TRUE(c.request("abc", &r));
        EXPECT_EQ(r.status, 404);
    }
}

// Requests of three kinds whose statuses (200, 404, 405) reveal the order.
std::string mixed_request(int i, int* status, bool* head)
{
    *head = false;
    switch (i % 4) {
    case 0: *status = 200; return get("/");
    case 1: *status = 404; return get("/missing/" + std::to_string(i));
    case 2: *status = 405; return post("/", "body " + std::to_string(i));
    default: *status = 200; *head = true; return get("/", "", "HEAD");
    }
}

void check_pipeline(int port, size_t piece)
{
    const int n = 40;
    std::string all;
    std::vector<int> want;
    std::vector<bool> heads;
    for (int i = 0; i < n; i++) {
        int st;
        bool head;
        all += mixed_request(i, &st, &head);
        want.push_back(st);
        heads.push_back(head);
    }
    HttpClient c(port);
    ASSERT_TRUE(c.ok());
    int one = 1;
    ::setsockopt(c.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t off = 0; off < all.size(); off += piece)
        ASSERT_TRUE(c.send(all.substr(off, piece)));
    for (int i = 0; i < n; i++) {
        HttpReply r;
        ASSERT_TRUE(c.next(&r, heads[static_cast<size_t>(i)], 10000))
            << "response " << i << " missing (piece " << piece << "), pending: " << c.pending();
        EXPECT_EQ(r.status, want[static_cast<size_t>(i)]) << "response " << i;
        if (r.status == 200 && !heads[static_cast<size_t>(i)]) {
            EXPECT_EQ(r.body, "hello\n");
        }
        EXPECT_FALSE(r.closes());
    }
    EXPECT_TRUE(c.quiet(100)) << "extra bytes: " << c.pending();
}

TEST_F(HttpServer, PipeliningKeepsOrder)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "2"}));
    check_pipeline(port_, 1 << 20);  // all in one write
    check_pipeline(port_, 7);        // a request spans many reads
}

// The same with the hop's processes blocking at once (hop_yield 0) and
// yielding up to 64 times before they block.
TEST_F(HttpServer, PipeliningKeepsOrderBlockingAtOnce)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "2", "--hop-yield", "0"}));
    check_pipeline(port_, 1 << 20);
    check_pipeline(port_, 7);
}

TEST_F(HttpServer, PipeliningKeepsOrderWithLongYields)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "2", "--hop-yield", "64"}));
    check_pipeline(port_, 1 << 20);
    check_pipeline(port_, 7);
}

// Pipelined requests with Content-Length and chunked bodies.
TEST_F(HttpServer, PipelinedBodies)
{
    ASSERT_TRUE(start_httpd());
    std::string smuggled = get("/admin");  // a body, never a request
    std::string all =
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nfoo\r\n3;ext=1\r\nbar\r\n0\r\nTrailer-X: y\r\n\r\n" +
        post("/x", "foobar") + get("/") + post("/x", smuggled) +
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfoobar\r\n0\r\n\r\n" +
        post("/", "foobar");
    std::vector<int> want = {405, 404, 200, 404, 405, 405};
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send(all));
    for (size_t i = 0; i < want.size(); i++) {
        HttpReply r;
        ASSERT_TRUE(c.next(&r)) << "response " << i;
        EXPECT_EQ(r.status, want[i]) << "response " << i;
    }
    EXPECT_TRUE(c.quiet(200)) << "the body was taken for a request: " << c.pending();
    // The last body ("foobar") was answered on its own: the connection is
    // at a message boundary.
    HttpReply r;
    ASSERT_TRUE(c.request(get("/"), &r));
    EXPECT_EQ(r.status, 200);
}

struct BadVector {
    const char* what;
    std::string raw;
    std::vector<int> statuses;  // acceptable answers
};

TEST_F(HttpServer, SmugglingVectorsGet400AndClose)
{
    ASSERT_TRUE(start_httpd());
    const std::string h = "POST / HTTP/1.1\r\nHost: t\r\n";
    // RFC 9112 6.1 wants 501 for a transfer coding the server does not
    // know; zan answers "foo" with 501 and a known non-final one with 400.
    const std::vector<BadVector> vectors = {
        {"TE + CL", h + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", {400}},
        {"CL + TE", h + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", {400}},
        {"duplicate CL, same value", h + "Content-Length: 3\r\nContent-Length: 3\r\n\r\n", {400}},
        {"duplicate CL, different", h + "Content-Length: 3\r\nContent-Length: 5\r\n\r\n", {400}},
        {"CL list", h + "Content-Length: 3, 3\r\n\r\n", {400}},
        {"CL negative", h + "Content-Length: -1\r\n\r\n", {400}},
        {"CL plus sign", h + "Content-Length: +3\r\n\r\n", {400}},
        {"CL hex", h + "Content-Length: 0x10\r\n\r\n", {400}},
        {"CL empty", h + "Content-Length: \r\n\r\n", {400}},
        {"CL inner space", h + "Content-Length: 1 2\r\n\r\n", {400}},
        {"TE unknown", h + "Transfer-Encoding: foo\r\n\r\n", {400, 501}},
        {"TE unknown before chunked", h + "Transfer-Encoding: foo, chunked\r\n\r\n", {400, 501}},
        {"TE chunked not last", h + "Transfer-Encoding: chunked, gzip\r\n\r\n", {400}},
        {"TE chunked twice", h + "Transfer-Encoding: chunked, chunked\r\n\r\n", {400}},
        {"TE xchunked", h + "Transfer-Encoding: xchunked\r\n\r\n", {400, 501}},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", {400}},
        {"obs-fold of TE", h + "Transfer-Encoding:\r\n chunked\r\n\r\n", {400}},
        {"bare LF everywhere", "GET / HTTP/1.1\nHost: t\n\n", {400}},
        {"bare LF in a header line", "GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", {400}},
        {"bare CR", "GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n", {400}},
        {"bare CR in the request line", "GET / HTTP/1.1\rHost: t\r\n\r\n", {400}},
        {"space before colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", {400}},
        {"tab before colon", h + "Transfer-Encoding\t: chunked\r\n\r\n", {400}},
        {"space before the first field", "GET / HTTP/1.1\r\n Host: t\r\n\r\n", {400}},
        {"NUL in a value", std::string("GET / HTTP/1.1\r\nHost: t\r\nX: a") + '\0' + "b\r\n\r\n", {400}},
        {"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {400}},
    };
    for (const BadVector& v : vectors) {
        SCOPED_TRACE(v.what);
        bool closed = false;
        auto rs = exchange(port_, v.raw, 1, &closed);
        ASSERT_EQ(rs.size(), 1u) << "no response";
        bool allowed = false;
        for (int st : v.statuses)
            allowed |= rs[0].status == st;
        EXPECT_TRUE(allowed) << "got " << rs[0].status;
        EXPECT_TRUE(rs[0].closes());
        EXPECT_TRUE(closed) << "connection left open";
    }
    // Behind a good request: the good one is answered, the smuggled
    // "GET /admin" inside the bad one never is.
    bool closed = false;
    auto rs = exchange(port_,
                       get("/") + h + "Content-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
                           get("/admin"),
                       3, &closed);
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].status, 200);
    EXPECT_EQ(rs[1].status, 400);
    EXPECT_TRUE(closed);
}

TEST_F(HttpServer, LimitsAnswerAndClose)
{
    ASSERT_TRUE(start_httpd());
    const std::string long_target = "/" + std::string(9000, 'a');
    const std::string big_field = "X-Big: " + std::string(17000, 'b') + "\r\n";
    std::string many_fields;
    for (int i = 0; i < 101; i++)
        many_fields += "X-" + std::to_string(i) + ": v\r\n";
    const std::vector<BadVector> vectors = {
        {"request line too long", get(long_target), {414}},
        {"header section too large", get("/", big_field), {431}},
        {"too many fields", get("/", many_fields), {431}},
        {"Content-Length over the body limit",
         "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9437184\r\n\r\n", {413}},
        {"chunk over the body limit",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n900000\r\n", {413}},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", {505}},
        {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: t\r\n\r\n", {505}},
        {"not HTTP", "HELLO\r\n\r\n", {400}},
        {"control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: t\r\n\r\n", {400}},
        {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", {400}},
        // Over the limit as the 2nd pipelined request.
        {"2nd request: header too large", get("/") + get("/", big_field), {200, 431}},
        {"2nd request: line too long", get("/") + get(long_target), {200, 414}},
    };
    for (const BadVector& v : vectors) {
        SCOPED_TRACE(v.what);
        bool closed = false;
        size_t n = v.statuses.size() == 2 ? 2 : 1;
        auto rs = exchange(port_, v.raw, n + 1, &closed);
        ASSERT_EQ(rs.size(), n);
        if (n == 2) {
            EXPECT_EQ(rs[0].status, 200);
            EXPECT_EQ(rs[0].body, "hello\n");
            EXPECT_FALSE(rs[0].closes());
            // 400 would also be right for the second (nginx answers 400).
            EXPECT_TRUE(rs[1].status == v.statuses[1] || rs[1].status == 400) << rs[1].status;
        } else {
            EXPECT_EQ(rs[0].status, v.statuses[0]);
        }
        EXPECT_TRUE(rs.back().closes());
        EXPECT_TRUE(closed) << "connection left open";
    }
    // Just under the limits: served, alone and as the 2nd pipelined request.
    const std::string near_target = "/" + std::string(8000, 'a');
    const std::string near_field = "X-Big: " + std::string(15000, 'b') + "\r\n";
    std::string ok_fields;
    for (int i = 0; i < 90; i++)
        ok_fields += "X-" + std::to_string(i) + ": v\r\n";
    auto rs = exchange(port_, get(near_target) + get("/", near_field) + get("/", ok_fields) +
                                  get("/") + get(near_target) + get("/", near_field),
                       6);
    ASSERT_EQ(rs.size(), 6u);
    std::vector<int> want = {404, 200, 200, 200, 404, 200};
    for (size_t i = 0; i < want.size(); i++)
        EXPECT_EQ(rs[i].status, want[i]) << "request " << i;
    // The Worker survived all of it.
    expect_serves(port_);
}

TEST_F(HttpServer, SlowlorisGets408)
{
    ASSERT_TRUE(start_httpd({"--header-timeout", "500"}));
    {
        // Half a header section, then silence.
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        long long t0 = zt::now_ms();
        HttpReply r;
        ASSERT_TRUE(c.request("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ", &r, false, 3000)) << "no 408";
        long long took = zt::now_ms() - t0;
        EXPECT_EQ(r.status, 408);
        EXPECT_TRUE(r.closes());
        EXPECT_GE(took, 400);
        EXPECT_LE(took, zt::scaled(2000));
        EXPECT_TRUE(c.closed(1000));
    }
    {
        // One byte every 100 ms: trickling does not restart the clock.
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        std::string slow = "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(100, 'z');
        long long t0 = zt::now_ms();
        size_t i = 0;
        struct pollfd pf = {c.fd(), POLLIN, 0};
        while (i < slow.size() && zt::now_ms() - t0 < 3000 && ::poll(&pf, 1, 100) == 0)
            if (!c.send(slow.substr(i++, 1)))
                break;
        HttpReply r;
        ASSERT_TRUE(c.next(&r, false, 1000)) << "no 408 after " << i << " bytes";
        EXPECT_EQ(r.status, 408);
        EXPECT_LE(zt::now_ms() - t0, zt::scaled(2000));
        EXPECT_TRUE(c.closed(1000));
    }
    // A whole request is still served.
    expect_serves(port_);
}

// The header timeout is for the header section: a body that keeps
// arriving (here a byte every 100 ms for 1.5 s, three times the 500 ms
// header timeout) is read to its end and answered by the handler.
TEST_F(HttpServer, SlowBodyIsNotCutByTheHeaderTimeout)
{
    ASSERT_TRUE(start_httpd({"--header-timeout", "500"}));
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    const int kBody = 15;
    ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(kBody) +
                       "\r\n\r\n"));
    struct pollfd pf = {c.fd(), POLLIN, 0};
    int sent = 0;
    while (sent < kBody && ::poll(&pf, 1, 100) == 0)  // paced: one byte per 100 ms
        if (c.send("x"))
            sent++;
    HttpReply r;
    ASSERT_TRUE(c.next(&r, false, 3000));
    EXPECT_EQ(sent, kBody) << "answered before the body was complete";
    EXPECT_EQ(r.status, 404);
}

TEST_F(HttpServer, IdleKeepAliveTimesOut)
{
    ASSERT_TRUE(start_httpd({"--keepalive-timeout", "500"}));
    {
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        HttpReply r;
        ASSERT_TRUE(c.request(get("/"), &r));
        EXPECT_EQ(r.status, 200);
        long long t0 = zt::now_ms();
        EXPECT_TRUE(c.closed(3000)) << "idle keep-alive connection left open";
        long long took = zt::now_ms() - t0;
        EXPECT_GE(took, 400);
        EXPECT_LE(took, zt::scaled(2000));
        EXPECT_TRUE(c.pending().empty()) << c.pending();
    }
    {
        // A connection that never sends a byte.
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        EXPECT_TRUE(c.closed(3000));
    }
    {
        // Activity keeps a connection open past the timeout.
        HttpClient c(port_);
        ASSERT_TRUE(c.ok());
        for (int i = 0; i < 6; i++) {
            ASSERT_TRUE(c.send(get("/"))) << i;
            HttpReply r;
            ASSERT_TRUE(c.next(&r)) << "request " << i;
            EXPECT_EQ(r.status, 200);
            ::usleep(200 * 1000);  // pacing the client, below the timeout
        }
    }
}

TEST_F(HttpServer, MaxRequestsPerConnection)
{
    ASSERT_TRUE(start_httpd());
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    const int kMax = 1000, kBatch = 50;
    int got = 0;
    for (int b = 0; b < kMax / kBatch; b++) {
        std::string batch;
        for (int i = 0; i < kBatch; i++)
            batch += get("/");
        ASSERT_TRUE(c.send(batch)) << "batch " << b;
        for (int i = 0; i < kBatch; i++) {
            HttpReply r;
            ASSERT_TRUE(c.next(&r, false, 10000)) << "response " << got + 1;
            got++;
            ASSERT_EQ(r.status, 200);
            if (got < kMax)
                ASSERT_FALSE(r.closes()) << "response " << got << " closes";
            else
                EXPECT_TRUE(r.closes()) << "the 1000th response lacks Connection: close";
        }
    }
    EXPECT_EQ(got, kMax);
    EXPECT_TRUE(c.closed(2000));
    EXPECT_TRUE(c.pending().empty());
}

TEST_F(HttpServer, HalfCloseGetsFullResponse)
{
    ASSERT_TRUE(start_httpd());
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send(get("/") + get("/nope") + get("/")));
    ASSERT_EQ(::shutdown(c.fd(), SHUT_WR), 0);
    std::vector<int> want = {200, 404, 200};
    for (size_t i = 0; i < want.size(); i++) {
        HttpReply r;
        ASSERT_TRUE(c.next(&r)) << "response " << i;
        EXPECT_EQ(r.status, want[i]);
    }
    EXPECT_TRUE(c.closed(2000)) << "not closed after a half-close";
    EXPECT_FALSE(c.reset());
}

TEST_F(HttpServer, HeadHasLengthButNoBody)
{
    ASSERT_TRUE(start_httpd());
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    HttpReply r;
    ASSERT_TRUE(c.request(get("/", "", "HEAD") + get("/missing", "", "HEAD") + get("/"), &r, true));
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.header("Content-Length"));
    EXPECT_EQ(*r.header("Content-Length"), "6");
    ASSERT_TRUE(c.next(&r, true));
    EXPECT_EQ(r.status, 404);
    ASSERT_TRUE(r.header("Content-Length"));
    EXPECT_EQ(*r.header("Content-Length"), "14");
    // Had either HEAD response carried a body, this would not parse.
    ASSERT_TRUE(c.next(&r)) << "pending: " << c.pending();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello\n");
    EXPECT_TRUE(c.quiet(100));
}

TEST_F(HttpServer, ConnectionCloseBothWays)
{
    ASSERT_TRUE(start_httpd());
    // The client asks: the answer says so and the server closes; what
    // follows in the same write is not answered.
    for (const char* token : {"close", "Close", "keep-alive, close"}) {
        SCOPED_TRACE(token);
        bool closed = false;
        auto rs = exchange(port_, get("/", std::string("Connection: ") + token + "\r\n") + get("/"), 2,
                           &closed);
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].status, 200);
        EXPECT_TRUE(rs[0].closes());
        EXPECT_TRUE(closed);
    }
    // The server decides: HTTP/1.0 without keep-alive.
    bool closed = false;
    auto rs = exchange(port_, "GET / HTTP/1.0\r\n\r\n", 2, &closed);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].version, "HTTP/1.1");
    EXPECT_TRUE(rs[0].closes());
    EXPECT_TRUE(closed);
    // A 1.1 client that closes right after its request (no half-close):
    // the server just sees EOF, nothing breaks.
    {
        Sock s = connect();
        ASSERT_TRUE(s.ok());
        ASSERT_TRUE(zt::send_str(s.get(), get("/")));
    }
    expect_serves(port_);
}

TEST_F(HttpServer, Http10KeepAlive)
{
    ASSERT_TRUE(start_httpd());
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 3; i++) {
        HttpReply r;
        ASSERT_TRUE(c.request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r)) << "request " << i;
        EXPECT_EQ(r.version, "HTTP/1.1");
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "hello\n");
        ASSERT_TRUE(r.header("Connection"));
        EXPECT_EQ(*r.header("Connection"), "keep-alive");
        ASSERT_TRUE(r.header("Content-Length"));
    }
    HttpReply r;
    ASSERT_TRUE(c.request("GET / HTTP/1.0\r\n\r\n", &r));
    EXPECT_TRUE(r.closes());
    EXPECT_TRUE(c.closed(2000));
}

// A Worker parses each request with one HttpParser for all connections:
// a request that ends its connection (Connection: close, HTTP/1.0, a
// refused request, CONNECT or the HTTP/2 preface) must not leave that
// parser refusing the next connection's requests. One Worker, so every
// request meets it.
TEST_F(HttpServer, WorkerServesAfterConnectionEndingRequests)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "1"}));
    const struct {
        const char* what;
        std::string raw;
        int status;
    } enders[] = {
        {"Connection: close", get("/", "Connection: close\r\n"), 200},
        {"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 200},
        {"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
        {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501},
        {"HTTP/2 preface", "PRI * HTTP/1.1\r\n\r\n", 501},
    };
    for (const auto& e : enders) {
        SCOPED_TRACE(e.what);
        auto rs = exchange(port_, e.raw, 1);
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].status, e.status);
        rs = exchange(port_, get("/") + get("/"), 2);
        ASSERT_EQ(rs.size(), 2u);
        EXPECT_EQ(rs[0].status, 200) << "the Worker refuses requests after a " << e.what << " request";
        EXPECT_EQ(rs[1].status, 200);
    }
    EXPECT_EQ(server_.count("failed to parse in the Worker"), 0) << server_.output();
}

// ---------------------------------------------------------------- static files

struct StaticSite {
    zt::TempDir dir;
    std::string root;
    std::string text = "0123456789abcdefghij";  // r.txt
    bool make()
    {
        root = dir.path + "/www";
        return ::mkdir(root.c_str(), 0755) == 0 && ::mkdir((root + "/sub").c_str(), 0755) == 0 &&
               zt::write_file(dir.path + "/secret.txt", "TOP-SECRET\n") &&
               zt::write_file(root + "/index.html", "<h1>index</h1>\n") &&
               zt::write_file(root + "/sub/index.html", "<h1>sub</h1>\n") &&
               zt::write_file(root + "/style.css", "body{}\n") &&
               zt::write_file(root + "/app.js", "1;\n") && zt::write_file(root + "/data.json", "{}\n") &&
               zt::write_file(root + "/logo.png", "\x89PNG") && zt::write_file(root + "/blob.bin", "?") &&
               zt::write_file(root + "/r.txt", text) &&
               ::symlink((dir.path + "/secret.txt").c_str(), (root + "/escape.txt").c_str()) == 0 &&
               ::symlink(dir.path.c_str(), (root + "/updir").c_str()) == 0;
    }
};

TEST_F(HttpServer, StaticFiles)
{
    StaticSite site;
    ASSERT_TRUE(site.make());
    ASSERT_TRUE(start_httpd({"--root", site.root}));
    int rc = -1;

    HttpReply r = curl(url(port_), &rc);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "<h1>index</h1>\n");
    ASSERT_TRUE(r.header("Content-Type"));
    EXPECT_EQ(r.header("Content-Type")->rfind("text/html", 0), 0u);
    ASSERT_TRUE(r.header("Last-Modified"));

    r = curl(url(port_, "/sub/"), &rc);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "<h1>sub</h1>\n");
    r = curl(url(port_, "/sub"), &rc);
    EXPECT_EQ(r.status, 301);
    ASSERT_TRUE(r.header("Location"));
    EXPECT_EQ(*r.header("Location"), "/sub/");

    // MIME types by extension.
    std::string cmd = curl_cmd() + "-s -w '%{content_type}\\n'";
    for (const char* f : {"/style.css", "/app.js", "/data.json", "/logo.png", "/blob.bin", "/r.txt"})
        cmd += " -o /dev/null " + url(port_, f);
    std::string out = sh(cmd);
    EXPECT_EQ(out,
              "text/css\ntext/javascript\napplication/json\nimage/png\n"
              "application/octet-stream\ntext/plain; charset=utf-8\n");

    r = curl(url(port_, "/no-such-file"), &rc);
    EXPECT_EQ(r.status, 404);

    // HEAD of a file: its length, no body.
    out = sh(curl_cmd() + "-s -I " + url(port_, "/r.txt"));
    r = curl_reply(out, true);
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.header("Content-Length"));
    EXPECT_EQ(*r.header("Content-Length"), "20");
    EXPECT_EQ(out.find("0123456789"), std::string::npos);

    // Path traversal, raw (curl would normalise the path) and by symlink.
    for (const char* path : {"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
                             "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
                             "/%2e%2e%2fsecret.txt", "/..%2fsecret.txt", "/escape.txt",
                             "/updir/secret.txt"}) {
        SCOPED_TRACE(path);
        auto rs = exchange(port_, get(path), 1);
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_TRUE(rs[0].status == 403 || rs[0].status == 404) << rs[0].status;
        EXPECT_EQ(rs[0].body.find("TOP-SECRET"), std::string::npos);
    }
    // Only GET and HEAD.
    r = curl("-X DELETE " + url(port_, "/r.txt"), &rc);
    EXPECT_EQ(r.status, 405);
}

TEST_F(HttpServer, StaticConditionalAndRanges)
{
    StaticSite site;
    ASSERT_TRUE(site.make());
    const time_t mtime = 1577836800;  // 2020-01-01 00:00:00 UTC
    zt::set_mtime(site.root + "/r.txt", mtime);
    ASSERT_TRUE(start_httpd({"--root", site.root}));
    int rc = -1;
    std::string u = url(port_, "/r.txt");

    HttpReply r = curl(u, &rc);
    ASSERT_TRUE(r.header("Last-Modified"));
    EXPECT_EQ(*r.header("Last-Modified"), zt::http_date(mtime));

    // If-Modified-Since: not modified since then (same second or later).
    for (time_t t : {mtime, mtime + 3600}) {
        r = curl("-z " + zt::shell_quote(zt::http_date(t)) + " " + u, &rc);
        EXPECT_EQ(r.status, 304);
        EXPECT_TRUE(r.body.empty());
        EXPECT_FALSE(r.header("Content-Length") && *r.header("Content-Length") != "0");
    }
    r = curl("-z " + zt::shell_quote(zt::http_date(mtime - 60)) + " " + u, &rc);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, site.text);

    // Ranges.
    struct {
        const char* range;
        const char* content_range;
        std::string body;
    } cases[] = {
        {"0-9", "bytes 0-9/20", "0123456789"},
        {"5-", "bytes 5-19/20", site.text.substr(5)},
        {"-5", "bytes 15-19/20", site.text.substr(15)},
        {"10-100", "bytes 10-19/20", site.text.substr(10)},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.range);
        r = curl(std::string("-r ") + c.range + " " + u, &rc);
        EXPECT_EQ(r.status, 206);
        ASSERT_TRUE(r.header("Content-Range"));
        EXPECT_EQ(*r.header("Content-Range"), c.content_range);
        EXPECT_EQ(r.body, c.body);
    }
    r = curl("-r 30-40 " + u, &rc);
    EXPECT_EQ(r.status, 416);
    ASSERT_TRUE(r.header("Content-Range"));
    EXPECT_EQ(*r.header("Content-Range"), "bytes */20");
    // The connection survives a 416 and a 206 (raw, pipelined).
    auto rs = exchange(port_,
                       get("/r.txt", "Range: bytes=30-40\r\n") + get("/r.txt", "Range: bytes=0-0\r\n") +
                           get("/r.txt"),
                       3);
    ASSERT_EQ(rs.size(), 3u);
    EXPECT_EQ(rs[0].status, 416);
    EXPECT_EQ(rs[1].status, 206);
    EXPECT_EQ(rs[1].body, "0");
    EXPECT_EQ(rs[2].status, 200);
    EXPECT_EQ(rs[2].body, site.text);
}

TEST_F(HttpServer, LargeFileByteExactWithCurl)
{
    zt::TempDir dir;
    const std::string data = random_bytes(20 << 20, 20);
    ASSERT_TRUE(zt::write_file(dir.path + "/big.bin", data));
    ASSERT_TRUE(start_httpd({"--root", dir.path}));
    std::string dst = dir.path + ".download";
    int rc = -1;
    std::string out = sh(curl_cmd(40) + "-s -o " + dst + " -w '%{http_code} %{size_download}' " +
                             url(port_, "/big.bin"),
                         &rc, 45);
    std::string got = zt::read_file(dst);
    ::unlink(dst.c_str());
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(out, "200 " + std::to_string(data.size()));
    ASSERT_EQ(got.size(), data.size());
    EXPECT_EQ(fnv1a(got), fnv1a(data)) << "content differs";
    EXPECT_TRUE(got == data);
    // Half-close right after the request: still every byte, then EOF.
    HttpClient c(port_);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send(get("/big.bin")));
    ::shutdown(c.fd(), SHUT_WR);
    HttpReply r;
    ASSERT_TRUE(c.next(&r, false, 20000));
    EXPECT_EQ(r.body.size(), data.size());
    EXPECT_TRUE(r.body == data);
    EXPECT_TRUE(c.closed(3000));
}

// A client with a 64 KiB receive buffer that reads 8-64 KiB
// every 10 ms gets every byte of a large file (sendfile back-pressure).
TEST_F(HttpServer, SlowReaderGetsEveryByte)
{
    zt::TempDir dir;
    const std::string data = random_bytes(3 << 20, 27);
    ASSERT_TRUE(zt::write_file(dir.path + "/slow.bin", data));
    ASSERT_TRUE(start_httpd({"--root", dir.path}));
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    Sock s(fd);
    int rcvbuf = 64 * 1024;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = zt::loopback_addr(port_);
    ASSERT_EQ(::connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_TRUE(zt::send_str(fd, get("/slow.bin")));
    std::string in;
    const size_t sizes[] = {8 << 10, 24 << 10, 64 << 10, 16 << 10, 40 << 10};
    std::vector<char> buf(64 << 10);
    long long deadline = zt::now_ms() + zt::scaled(30000);
    size_t want = 0;
    for (int i = 0; zt::now_ms() < deadline; i++) {
        if (want == 0) {
            size_t hdr = in.find("\r\n\r\n");
            if (hdr != std::string::npos) {
                HttpReply r;
                zt::parse_http_reply(in.substr(0, hdr + 4), 0, true, false, &r);
                ASSERT_EQ(r.status, 200);
                ASSERT_TRUE(r.header("Content-Length"));
                want = hdr + 4 + std::stoul(*r.header("Content-Length"));
            }
        }
        if (want && in.size() >= want)
            break;
        struct pollfd pf = {fd, POLLIN, 0};
        if (::poll(&pf, 1, 1000) <= 0)
            continue;
        ssize_t n = ::recv(fd, buf.data(), sizes[i % 5], 0);
        if (n <= 0)
            break;
        in.append(buf.data(), static_cast<size_t>(n));
        ::usleep(10 * 1000);  // the slow reader's pace
    }
    ASSERT_GT(want, 0u) << "no response header";
    ASSERT_EQ(in.size(), want) << "short or long response";
    EXPECT_TRUE(in.compare(want - data.size(), data.size(), data) == 0) << "body differs";
}

// A client that asks for a large file 200 times in one write and reads
// nothing: the queued files cost the NetWorker no descriptors (they are
// opened when their turn comes), and after --send-timeout without a byte
// taken the connection is cut, while other clients are served.
TEST_F(HttpServer, ClientThatStopsReadingIsCutAfterSendTimeout)
{
    zt::TempDir dir;
    ASSERT_TRUE(zt::write_file(dir.path + "/big.bin", random_bytes(1 << 20, 9)));
    ASSERT_TRUE(zt::write_file(dir.path + "/small.txt", "small\n"));
    ASSERT_TRUE(start_httpd({"--root", dir.path, "--worker-num", "1", "--net-worker-num", "1",
                             "--send-timeout", "500", "--log-level", "debug"}));
    pid_t net = find_by_name("zan-net-0");
    ASSERT_GT(net, 0);
    const int fds_before = zt::open_fds(net);
    ASSERT_GT(fds_before, 0);

    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    Sock stuck(fd);
    int rcvbuf = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = zt::loopback_addr(port_);
    ASSERT_EQ(::connect(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof(a)), 0);
    std::string burst;
    for (int i = 0; i < 200; i++)
        burst += get("/big.bin");
    const long long sent = zt::now_ms();
    ASSERT_TRUE(zt::send_str(fd, burst));

    // Until the NetWorker logs the cut: its descriptors stay where they
    // were, give or take the connection and the one file being sent.
    int most = 0;
    bool cut = false;
    while (!cut && zt::now_ms() - sent < 5000) {
        most = std::max(most, zt::open_fds(net));
        cut = server_.wait_for("closed: send timeout", 20);
    }
    const long long took = zt::now_ms() - sent;
    ASSERT_TRUE(cut) << "not cut within 5 s\n" << server_.output();
    EXPECT_GE(took, 450) << "cut before the send timeout";
    EXPECT_LE(most, fds_before + 3) << "queued files held descriptors";
    EXPECT_TRUE(zt::wait_closed(fd, 5000));

    HttpClient other(port_);
    ASSERT_TRUE(other.ok());
    HttpReply r;
    ASSERT_TRUE(other.request(get("/small.txt"), &r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "small\n");
}

// ---------------------------------------------------------------- the library API

// An HttpServer built from the library, run in a forked child that
// becomes its Master (one NetWorker; one Worker unless told otherwise).
// Its handler exercises the parts of HttpResponse that zan-httpd does
// not: write() streaming, detach() with a late end(), exceptions,
// unfinished responses and the headers the server keeps for itself. The
// destructor stops it.
// Pipe messages a LibServer Worker received, and how many came out of order.
long g_pipe_count = 0;
long g_pipe_disorder = 0;
// A LibServer Worker's /gone: what the late end() returned, and whether
// the kept response was freed.
std::string g_gone = "none";
int g_gone_freed = 0;

class LibServer {
public:
    // log_file: the server logs there at level warn (default: errors only,
    // to standard error).
    explicit LibServer(int worker_num = 1, int dispatch_mode = 2, const std::string& log_file = "")
        : main_([=](int ready_fd) { return run(ready_fd, worker_num, dispatch_mode, log_file); })
    {
    }
    int port() const { return main_.port(); }
    pid_t pid() const { return main_.pid(); }

private:
    static int run(int ready_fd, int worker_num, int dispatch_mode, const std::string& log_file)
    {
        zan::ServerConfig cfg;
        cfg.worker_num = worker_num;
        cfg.dispatch_mode = dispatch_mode;
        cfg.net_worker_num = 1;
        cfg.log_level = log_file.empty() ? zan::Level::error : zan::Level::warn;
        cfg.log_file = log_file;
        zan::HttpServer srv(cfg);
        if (!srv.listen("127.0.0.1", 0))
            return 1;
        srv.on_start([ready_fd](zan::TcpServer& s) { zt::ForkedMain::report_port(ready_fd, s.port()); });
        srv.on_request([](zan::HttpServer& s, zan::HttpRequest& req, zan::HttpResponse& resp) {
            const std::string& path = req.path;
            if (path == "/slow") {  // answered 150 ms later, from a timer
                auto late = std::make_shared<zan::HttpResponse>(resp.detach());
                s.run_after(150, [late] { late->end("slow\n"); });
            } else if (path == "/kept") {  // moved out, answered 150 ms later
                auto kept = std::make_shared<zan::HttpResponse>(std::move(resp));
                s.run_after(150, [kept] { kept->end("slow\n"); });
            } else if (path == "/gone") {  // answered after the client has gone
                g_gone = "pending";
                std::shared_ptr<zan::HttpResponse> kept(new zan::HttpResponse(std::move(resp)),
                                                        [](zan::HttpResponse* r) {
                                                            delete r;
                                                            g_gone_freed++;
                                                        });
                s.run_after(zt::scaled(300), [kept] { g_gone = kept->end("late\n") ? "sent" : "refused"; });
            } else if (path == "/gone-result") {
                resp.end(g_gone + " " + std::to_string(g_gone_freed));
            } else if (path == "/abandon") {  // kept, then dropped unfinished
                auto* kept = new zan::HttpResponse(std::move(resp));
                kept->set_header("X-Dropped", "1");
                s.run_after(50, [kept] { delete kept; });
            } else if (path == "/sleep") {  // a handler that blocks its Worker
                ::usleep(150 * 1000);
                resp.end("slow\n");
            } else if (path == "/stream") {
                resp.set_header("Content-Type", "text/plain");
                resp.write("a");
                resp.write("");
                resp.write("bb");
                resp.end("ccc");
            } else if (path == "/throw") {
                throw std::runtime_error("handler failed");
            } else if (path == "/unfinished") {
                // returns without end(): the server answers 500
            } else if (path == "/no-content") {
                resp.set_status(204);  // finished by the server, no body
            } else if (path == "/framing") {
                resp.set_header("Content-Length", "999");
                resp.set_header("Transfer-Encoding", "chunked");
                resp.set_header("Connection", "close");
                resp.add_header("Set-Cookie", "a=1");
                resp.add_header("Set-Cookie", "b=2");
                resp.set_status(299, "Custom Reason");
                resp.end("framed\n");
            } else if (path == "/fields") {  // set, replaced in other case, and a long one
                resp.set_header("X-One", "1");
                resp.set_header("x-ONE", "2");
                resp.add_header("X-Long", std::string(300, 'l'));
                resp.set_status(201);
                resp.end("fields\n");
            } else if (path == "/forge") {  // request data that would forge header lines
                std::string evil = "v\r\nX-Evil: " + req.body;
                resp.set_status(299, "Fine\r\nX-Evil: status");
                bool set = resp.set_header("X-Value", evil);
                bool added = resp.add_header("X-Evil: 1\r\nX", "v");
                bool named = resp.add_header("", "v");
                bool nul = resp.set_header("X-Nul", std::string("a\0b", 3));
                bool ok = resp.set_header("X-Tab", "a\tb");
                resp.end(std::to_string(set) + std::to_string(added) + std::to_string(named) +
                         std::to_string(nul) + std::to_string(ok));
            } else if (path == "/huge") {  // over buffer_output_size (2 MiB)
                resp.end(std::string(3 << 20, 'x'));
            } else if (path == "/echo") {
                resp.end(req.method + " " + req.target + " " + req.body);
            } else if (path == "/pipe-flood") {
                // 3000 pipe messages of 4 KiB for the other Worker: far
                // more than its inbox holds while it is slow to read.
                int other = 1 - s.worker_id();
                int queued = 0;
                for (int i = 0; i < 3000; i++) {
                    std::string m = std::to_string(i) + ":";
                    m.resize(4096, 'p');
                    queued += s.send_message(m, other) ? 1 : 0;
                }
                resp.end("queued " + std::to_string(queued) + "\n");
            } else if (path == "/pipe-count") {
                resp.end(std::to_string(s.worker_id()) + " " + std::to_string(g_pipe_count) + " " +
                         std::to_string(g_pipe_disorder) + "\n");
            } else {
                resp.end("fast\n");
            }
        });
        srv.on_pipe_message([](zan::TcpServer&, int, std::string_view data) {
            ::usleep(1000);  // a slow reader: the sender's queue must absorb the rest
            if (atol(std::string(data.substr(0, data.find(':'))).c_str()) != g_pipe_count)
                g_pipe_disorder++;
            g_pipe_count++;
        });
        int rc = srv.start();
        if (rc != 0)
            fprintf(stderr, "LibServer: %s\n", srv.error().c_str());
        return rc;
    }

    zt::ForkedMain main_;
};

// Header names, values and reason phrases that would end a line early are
// refused, so request data cannot forge header lines.
TEST_F(HttpServer, HeaderSettersRefuseLineBreaks)
{
    LibServer srv;
    ASSERT_GT(srv.port(), 0);
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    HttpReply r;
    ASSERT_TRUE(c.request(post("/forge", "body"), &r));
    EXPECT_EQ(r.status, 299);
    EXPECT_EQ(r.reason, "Unknown") << "the forged reason phrase was sent";
    EXPECT_FALSE(r.header("X-Evil"));
    EXPECT_FALSE(r.header("X-Value"));
    EXPECT_FALSE(r.header("X-Nul"));
    ASSERT_TRUE(r.header("X-Tab"));
    EXPECT_EQ(*r.header("X-Tab"), "a\tb");
    EXPECT_EQ(r.body, "00001");
}

// A response the Worker refuses (over buffer_output_size) cannot be sent
// in part: the connection is closed at once instead of waiting for the
// response's end for ever, and the server goes on serving.
TEST_F(HttpServer, ResponseOverTheOutputLimitClosesTheConnection)
{
    LibServer srv;
    ASSERT_GT(srv.port(), 0);
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send(get("/huge") + get("/fast")));
    EXPECT_TRUE(c.closed(3000)) << "connection left waiting for a response that never comes";
    HttpClient d(srv.port());
    ASSERT_TRUE(d.ok());
    HttpReply r;
    ASSERT_TRUE(d.request(get("/fast"), &r));
    EXPECT_EQ(r.body, "fast\n");
}

// Sends `slow`, /fast, `slow`, /fast in one write: the answers (200 each)
// must come in request order, "slow\n" first, though /fast is done first.
void expect_request_order(HttpClient& c, const std::string& slow)
{
    ASSERT_TRUE(c.send(get(slow) + get("/fast") + get(slow) + get("/fast")));
    for (const char* want : {"slow\n", "fast\n", "slow\n", "fast\n"}) {
        HttpReply r;
        ASSERT_TRUE(c.next(&r)) << "missing response " << want;
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, want) << "responses out of request order";
    }
}

TEST_F(HttpServer, DetachedResponseKeepsPipelineOrder)
{
    LibServer srv;
    ASSERT_GT(srv.port(), 0);
    // The first response is finished 150 ms after the second request has
    // been handled: it must still come first.
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    ASSERT_NO_FATAL_FAILURE(expect_request_order(c, "/slow"));
    // Not pipelined: a detached response on its own.
    HttpReply r;
    ASSERT_TRUE(c.request(get("/slow"), &r));
    EXPECT_EQ(r.body, "slow\n");
}

// A response moved out of the handler (move-only HttpResponse) and ended
// from a timer keeps request order among pipelined requests.
static_assert(!std::is_copy_constructible<zan::HttpResponse>::value &&
                  !std::is_copy_assignable<zan::HttpResponse>::value &&
                  std::is_nothrow_move_constructible<zan::HttpResponse>::value,
              "HttpResponse is move-only: one owner per reply");

TEST_F(HttpServer, KeptResponseKeepsPipelineOrder)
{
    LibServer srv;
    ASSERT_GT(srv.port(), 0);
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    ASSERT_NO_FATAL_FAILURE(expect_request_order(c, "/kept"));
    HttpReply r;
    ASSERT_TRUE(c.request(get("/fast"), &r));
    EXPECT_EQ(r.body, "fast\n");
}

// The client resets its connection before the kept response is ended:
// end() returns false and the response is freed.
TEST_F(HttpServer, KeptResponseEndsFalseWhenTheClientIsGone)
{
    LibServer srv;
    ASSERT_GT(srv.port(), 0);
    Sock s(zt::connect_local(srv.port(), 3000));
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(zt::send_str(s.get(), get("/gone")));
    HttpClient probe(srv.port());
    ASSERT_TRUE(probe.ok());
    HttpReply r;
    // The request is with the Worker once /gone-result says pending.
    ASSERT_TRUE(zt::eventually([&] { return probe.request(get("/gone-result"), &r) && r.body != "none 0"; },
                           zt::scaled(5000)));
    EXPECT_EQ(r.body, "pending 0");
    zt::reset_close(&s);
    ASSERT_TRUE(zt::eventually([&] { return probe.request(get("/gone-result"), &r) && r.body != "pending 0"; },
                           zt::scaled(5000)));
    EXPECT_EQ(r.body, "refused 1") << "end() must fail and the response be freed";
    // The Worker goes on serving.
    ASSERT_TRUE(probe.request(get("/fast"), &r));
    EXPECT_EQ(r.body, "fast\n");
}

// A kept response destroyed unfinished answers 500 and says so in the log.
TEST_F(HttpServer, KeptResponseDestroyedUnfinishedAnswers500)
{
    zt::TempDir dir;
    std::string log = dir.path + "/zan.log";
    LibServer srv(1, 2, log);
    ASSERT_GT(srv.port(), 0);
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    HttpReply r;
    ASSERT_TRUE(c.request(get("/abandon") + get("/fast"), &r));
    EXPECT_EQ(r.status, 500);
    EXPECT_FALSE(r.header("X-Dropped")) << "the 500 carries none of the application's fields";
    ASSERT_TRUE(c.next(&r));
    EXPECT_EQ(r.body, "fast\n") << "the connection goes on after the 500";
    EXPECT_TRUE(zt::eventually(
        [&] { return zt::read_file(log).find("a kept HTTP response was destroyed unfinished") != std::string::npos; },
        zt::scaled(3000)))
        << zt::read_file(log);
}

// A request refused for its header section alone is answered when that
// section ends, before any of the body it announces, and the connection
// closes; a request that may be served waits for its body.
TEST_F(HttpServer, HeaderOnlyRefusalDoesNotWaitForTheBody)
{
    LibServer srv;
    ASSERT_GT(srv.port(), 0);
    struct Case {
        const char* head;
        int status;
    } cases[] = {
        {"POST /echo HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", 400},                      // no Host
        {"POST /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 10\r\n\r\n", 400},     // two
        {"POST /echo HTTP/1.1\r\nHost: a b\r\nTransfer-Encoding: chunked\r\n\r\n", 400},     // bad value
        {"POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 400},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE(k.head);
        HttpClient c(srv.port());
        ASSERT_TRUE(c.ok());
        HttpReply r;
        ASSERT_TRUE(c.request(k.head, &r, false, zt::scaled(3000))) << "no answer before the body";
        EXPECT_EQ(r.status, k.status) << "no 100 Continue, no waiting";
        ASSERT_TRUE(r.header("Connection"));
        EXPECT_EQ(*r.header("Connection"), "close");
        EXPECT_TRUE(c.closed(zt::scaled(3000)));
    }
    // Served requests still wait for their body.
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab"));
    EXPECT_TRUE(c.quiet(200));
    HttpReply r;
    ASSERT_TRUE(c.request("cd", &r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "POST /echo abcd");
}

// Pipelined responses keep request order whatever the dispatch mode.
TEST_F(HttpServer, PipelineOrderWithRoundRobinDispatch)
{
    LibServer srv(2, 1);
    ASSERT_GT(srv.port(), 0);
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    ASSERT_NO_FATAL_FAILURE(expect_request_order(c, "/sleep"));
}

TEST_F(HttpServer, ResponseApiFraming)
{
    LibServer srv;
    ASSERT_GT(srv.port(), 0);
    int port = srv.port();

    // write(): chunked on HTTP/1.1, keep-alive kept.
    HttpClient c(port);
    ASSERT_TRUE(c.ok());
    HttpReply r;
    ASSERT_TRUE(c.request(get("/stream"), &r));
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.header("Transfer-Encoding"));
    EXPECT_EQ(*r.header("Transfer-Encoding"), "chunked");
    EXPECT_FALSE(r.header("Content-Length"));
    EXPECT_EQ(r.body, "abbccc");
    EXPECT_FALSE(r.closes());
    // HEAD of a streamed response: headers only, and the connection is
    // still at a message boundary.
    ASSERT_TRUE(c.request(get("/stream", "", "HEAD") + get("/fast"), &r, true));
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(c.next(&r)) << "pending: " << c.pending();
    EXPECT_EQ(r.body, "fast\n");

    // write() on HTTP/1.0: the body ends with the connection.
    bool closed = false;
    auto rs = exchange(port, "GET /stream HTTP/1.0\r\n\r\n", 1, &closed);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].version, "HTTP/1.1");
    EXPECT_EQ(rs[0].body, "abbccc");
    EXPECT_TRUE(rs[0].closes());
    EXPECT_FALSE(rs[0].header("Transfer-Encoding"));

    // An exception or an unfinished response: 500; the connection goes on.
    rs = exchange(port, get("/throw") + get("/unfinished") + get("/no-content") + get("/fast"), 4);
    ASSERT_EQ(rs.size(), 4u);
    EXPECT_EQ(rs[0].status, 500);
    EXPECT_EQ(rs[1].status, 500);
    EXPECT_EQ(rs[2].status, 204);
    EXPECT_FALSE(rs[2].header("Content-Length"));
    EXPECT_EQ(rs[3].body, "fast\n");

    // Framing headers belong to the server; others are sent as given.
    rs = exchange(port, get("/framing") + get("/fast"), 2);
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].status, 299);
    EXPECT_EQ(rs[0].reason, "Custom Reason");
    ASSERT_TRUE(rs[0].header("Content-Length"));
    EXPECT_EQ(*rs[0].header("Content-Length"), "7");
    EXPECT_EQ(rs[0].count("Content-Length"), 1);
    EXPECT_FALSE(rs[0].header("Transfer-Encoding"));
    EXPECT_FALSE(rs[0].closes());
    EXPECT_EQ(rs[0].count("Set-Cookie"), 2);
    EXPECT_EQ(rs[0].body, "framed\n");
    EXPECT_EQ(rs[1].body, "fast\n");

    // One Worker reuses its response: nothing of one reaches the next.
    rs = exchange(port, get("/fields") + get("/fast") + get("/framing") + get("/fast") + get("/fields"), 5);
    ASSERT_EQ(rs.size(), 5u);
    for (size_t i : {0u, 4u}) {
        EXPECT_EQ(rs[i].status, 201);
        EXPECT_EQ(rs[i].reason, "Created");
        EXPECT_EQ(rs[i].count("X-One"), 1);
        ASSERT_TRUE(rs[i].header("X-One"));
        EXPECT_EQ(*rs[i].header("X-One"), "2");
        ASSERT_TRUE(rs[i].header("X-Long"));
        EXPECT_EQ(*rs[i].header("X-Long"), std::string(300, 'l'));
        EXPECT_EQ(rs[i].count("Set-Cookie"), 0);
        EXPECT_EQ(rs[i].body, "fields\n");
    }
    for (size_t i : {1u, 3u}) {
        EXPECT_EQ(rs[i].status, 200);
        EXPECT_EQ(rs[i].reason, "OK");
        EXPECT_FALSE(rs[i].header("X-One"));
        EXPECT_FALSE(rs[i].header("X-Long"));
        EXPECT_FALSE(rs[i].header("Set-Cookie"));
        EXPECT_TRUE(rs[i].header("Date") && rs[i].header("Server"));
        EXPECT_EQ(rs[i].body, "fast\n");
    }
    EXPECT_EQ(rs[2].reason, "Custom Reason");
    EXPECT_EQ(rs[2].count("Set-Cookie"), 2);

    // The request as the Worker sees it: a de-chunked body.
    rs = exchange(port,
                  "POST /echo?q=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n",
                  1);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].body, "POST /echo?q=1 abc");
}

// ---------------------------------------------------------------- process model

TEST_F(HttpServer, WorkerKilledWithRequestsInFlight)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "2", "--net-worker-num", "1"}));
    pid_t w0 = wait_for_name("zan-worker-0", 0);
    ASSERT_GT(w0, 0);
    ASSERT_TRUE(freeze(w0));
    // Connections are spread over both Workers; the stopped one's requests
    // stay in flight.
    std::vector<HttpClient> clients;
    for (int i = 0; i < 6; i++) {
        clients.emplace_back(port_);
        ASSERT_TRUE(clients.back().ok());
    }
    for (auto& c : clients)
        ASSERT_TRUE(c.send(get("/")));
    std::vector<size_t> stuck;
    long long settle = zt::now_ms() + zt::scaled(1000);
    for (size_t i = 0; i < clients.size(); i++) {
        HttpReply r;
        if (clients[i].next(&r, false, static_cast<int>(std::max(50LL, settle - zt::now_ms())))) {
            EXPECT_EQ(r.status, 200);
        } else {
            stuck.push_back(i);
        }
    }
    ASSERT_FALSE(stuck.empty()) << "no connection landed on the stopped Worker";
    ASSERT_LT(stuck.size(), clients.size()) << "the running Worker answered nothing";
    ASSERT_EQ(::kill(w0, SIGKILL), 0);
    long long t0 = zt::now_ms();
    int failed = 0;
    for (size_t i : stuck) {
        HttpReply r;
        bool got = clients[i].next(&r, false, 5000);
        if (got && r.status == 200)
            continue;  // a slow answer from the running Worker (loaded machine)
        failed++;
        if (got) {
            EXPECT_EQ(r.status, 503);
            EXPECT_TRUE(r.closes());
        }
        EXPECT_TRUE(clients[i].closed(5000)) << "client " << i << " hangs after its Worker died";
    }
    EXPECT_GT(failed, 0) << "no client was waiting on the killed Worker";
    EXPECT_LE(zt::now_ms() - t0, zt::scaled(6000));
    // A new Worker takes over; fresh connections are served.
    EXPECT_GT(wait_for_name("zan-worker-0", w0), 0);
    for (int i = 0; i < 4; i++) {
        expect_serves(port_, "connection " + std::to_string(i));
    }
}

TEST_F(HttpServer, ReloadDropsNoRequest)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "2"}));
    pid_t old0 = wait_for_name("zan-worker-0", 0);
    pid_t old1 = wait_for_name("zan-worker-1", 0);
    ASSERT_GT(old0, 0);
    ASSERT_GT(old1, 0);
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0};
    std::string first_failure;
    // Two clients: one opens a connection per request, one keeps a
    // connection alive for 20 requests at a time.
    auto client = [&](int per_conn) {
        while (!stop) {
            HttpClient c(port_, 2000);
            if (!c.ok()) {
                if (failed++ == 0)
                    first_failure = "connect failed";
                continue;
            }
            for (int i = 0; i < per_conn && !stop; i++) {
                HttpReply r;
                if (!c.request(get("/"), &r) || r.status != 200) {
                    if (failed++ == 0)
                        first_failure = "request " + std::to_string(i) + " on a connection: " +
                                        (r.status ? std::to_string(r.status) : "no response") +
                                        (c.eof() ? " (closed)" : "");
                    break;
                }
                ok++;
            }
        }
    };
    // Waits (polling the clients' counter) until `n` more requests than
    // `from` have been answered.
    auto served = [&](int from, int n) {
        long long deadline = zt::now_ms() + zt::scaled(10000);
        while (ok.load() < from + n && zt::now_ms() < deadline)
            zt::wait_fd(-1, 0, 1);
        return ok.load() >= from + n;
    };
    std::vector<std::thread> threads;
    zt::JoinGuard join_clients(stop, threads);
    threads.emplace_back(client, 1);
    threads.emplace_back(client, 20);
    ASSERT_TRUE(served(0, 20)) << "the clients are not served\n" << server_.output();
    server_.signal(SIGUSR1);
    pid_t new0 = wait_for_name("zan-worker-0", old0);
    pid_t new1 = wait_for_name("zan-worker-1", old1);
    bool replaced = new0 > 0 && new1 > 0;
    // The old Workers finish; then the clients run on the new ones.
    EXPECT_TRUE(zt::wait_gone(old0, 5000));
    EXPECT_TRUE(zt::wait_gone(old1, 5000));
    EXPECT_TRUE(served(ok.load(), 20)) << "no request served after the first reload";
    int before_second = ok;
    server_.signal(SIGUSR1);
    // The second reload completes under load too: both replaced, and the
    // clients served by the successors.
    EXPECT_GT(wait_for_name("zan-worker-0", new0), 0) << server_.output();
    EXPECT_GT(wait_for_name("zan-worker-1", new1), 0) << server_.output();
    EXPECT_TRUE(zt::wait_gone(new0, 5000));
    EXPECT_TRUE(zt::wait_gone(new1, 5000));
    EXPECT_TRUE(served(before_second, 20)) << "no request served after the second reload";
    stop = true;
    for (auto& t : threads)
        t.join();
    EXPECT_TRUE(replaced) << server_.output();
    EXPECT_FALSE(zt::pid_alive(old0));
    EXPECT_FALSE(zt::pid_alive(old1));
    EXPECT_EQ(failed.load(), 0) << "first failure: " << first_failure << "\n" << server_.output();
    EXPECT_GT(ok.load(), before_second);
    EXPECT_GT(ok.load(), 50);
}

// Requests in flight on a Worker when SIGUSR1 arrives are answered in
// full, and a keep-alive connection idle across the reload is served by
// the new Worker (or closed), never left hanging. In flight: the
// NetWorker has read each request off its socket (it forwards a request
// as it reads it) before the reload, and the only Worker, stopped, cannot
// have answered it.
TEST_F(HttpServer, ReloadFinishesInFlightRequests)
{
    HttpClient idle;
    pid_t old;
    ASSERT_TRUE(start_with_frozen_worker(&idle, &old));
    HttpReply r;
    std::vector<HttpClient> clients;
    for (int i = 0; i < 3; i++) {
        clients.emplace_back(port_);
        ASSERT_TRUE(clients.back().ok());
        ASSERT_TRUE(clients.back().send(get("/")));
    }
    for (size_t i = 0; i < clients.size(); i++)
        ASSERT_TRUE(zt::wait_server_read(clients[i].fd(), port_)) << "request " << i << " never left the kernel";
    server_.signal(SIGUSR1);
    // The successor starts while the old Worker is still stopped (the
    // master SIGKILLs a Worker that does not finish within max_wait_time,
    // 3 s after its successor is up, so resume it at once then).
    ASSERT_TRUE(server_.wait_for("reloading", 5000)) << server_.output();
    ASSERT_GT(wait_for_name("zan-worker-0", old), 0) << "no successor\n" << server_.output();
    for (size_t i = 0; i < clients.size(); i++)
        EXPECT_FALSE(zt::wait_fd(clients[i].fd(), POLLIN, 0)) << "request " << i << " answered by another Worker";
    ASSERT_EQ(::kill(old, SIGCONT), 0);
    for (size_t i = 0; i < clients.size(); i++) {
        ASSERT_TRUE(clients[i].next(&r)) << "in-flight request " << i << " lost in the reload";
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "hello\n");
    }
    EXPECT_TRUE(zt::wait_gone(old, 5000)) << "the old Worker did not exit";
    EXPECT_GT(wait_for_name("zan-worker-0", old), 0);
    ASSERT_TRUE(idle.send(get("/")));
    bool served = idle.next(&r, false, 3000);
    EXPECT_TRUE(served ? r.status == 200 : idle.eof()) << "idle connection hangs after the reload";
}

// A graceful stop ends keep-alive connections with an
// explicit "Connection: close" on the last response, so a client never
// sends a request into a connection the server is closing.
TEST_F(HttpServer, GracefulStopMarksConnectionClose)
{
    HttpClient c;
    pid_t w;
    ASSERT_TRUE(start_with_frozen_worker(&c, &w));
    HttpReply r;
    pid_t net = find_by_name("zan-net-0");
    ASSERT_GT(net, 0);
    ASSERT_TRUE(zt::holds_listener(net, port_));
    ASSERT_TRUE(c.send(get("/", "", "HEAD") + get("/", "", "HEAD")));
    // Both requests are with the server (the NetWorker read them), then
    // the stop has begun: the Master marks it in shared memory before it
    // tells the NetWorkers, and the NetWorker closes its listening socket
    // when told. Only then may the Worker answer.
    ASSERT_TRUE(zt::wait_server_read(c.fd(), port_));
    server_.signal(SIGTERM);
    ASSERT_TRUE(server_.wait_for("shutting down", 5000)) << server_.output();
    long long deadline = zt::now_ms() + zt::scaled(5000);
    while (zt::holds_listener(net, port_) && zt::now_ms() < deadline)
        zt::wait_fd(-1, 0, 2);  // polling /proc: no event for it
    ASSERT_FALSE(zt::holds_listener(net, port_)) << "the NetWorker did not begin its stop";
    ASSERT_EQ(::kill(w, SIGCONT), 0);
    ASSERT_TRUE(c.next(&r, true)) << "in-flight request lost in the stop";
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(c.next(&r, true)) << "in-flight request lost in the stop";
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.closes()) << "the last response before the close lacks Connection: close";
    EXPECT_TRUE(c.closed(5000));
    EXPECT_NE(server_.wait_exit(10000), -1);
}

}  // namespace

// send_message() from a Worker queues and returns: a full inbox at the
// other end never stalls the sender's loop, and every message arrives, in
// order, once the slow reader catches up.
TEST_F(HttpServer, PipeMessagesToAFullInboxDoNotBlockTheSender)
{
    LibServer srv(2);
    ASSERT_GT(srv.port(), 0);
    HttpClient c(srv.port());
    ASSERT_TRUE(c.ok());
    // The receiver needs about 3 s for them; the sender answers at once.
    long long t0 = zt::now_ms();
    HttpReply r;
    ASSERT_TRUE(c.request(get("/pipe-flood"), &r));
    EXPECT_EQ(r.body, "queued 3000\n");
    ASSERT_TRUE(c.request(get("/fast"), &r));
    EXPECT_EQ(r.body, "fast\n");
    EXPECT_LT(zt::now_ms() - t0, zt::scaled(1000)) << "the sending Worker was blocked";
    // Every message arrives, in order: ask each Worker until the receiver
    // has counted all 3000 (connections alternate between the Workers).
    long long deadline = zt::now_ms() + zt::scaled(30000);
    std::string last;
    bool done = false;
    while (!done && zt::now_ms() < deadline) {
        HttpClient q(srv.port());
        ASSERT_TRUE(q.ok());
        HttpReply cnt;
        ASSERT_TRUE(q.request(get("/pipe-count"), &cnt));
        last = cnt.body;
        int wid = 0;
        long got = 0, disorder = 0;
        if (sscanf(cnt.body.c_str(), "%d %ld %ld", &wid, &got, &disorder) == 3 && got > 0) {
            EXPECT_EQ(disorder, 0) << "pipe messages out of order";
            done = got == 3000;
        }
        if (!done)
            ::usleep(50 * 1000);  // the reader drains at its own pace; nothing to wait on
    }
    EXPECT_TRUE(done) << "last answer: " << last;
}
