// Integration tests of the request handling of zan-httpd itself (not of
// the library): preconditions in the order of RFC 9110 section 13.2.2,
// merged slashes and safe redirects, Range only for GET, and an Allow
// field on every 405. Each test starts build/tools/zan-httpd on 127.0.0.1
// with --port 0 (zt::ServerTest, which stops it even when an assertion
// fails) and sends raw requests, one connection each, with deadlines.
// Temporary directories are removed at scope exit.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/http_client.h"
#include "t/server_fixture.h"
#include "t/tmp_helpers.h"

namespace {

using zt::HttpClient;
using zt::HttpReply;

std::string req(const std::string& method, const std::string& target, const std::string& extra = "")
{
    return method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

// Sends `raw` on a new connection and reads one response (a HEAD one has
// no body). Status 0 when none came within the deadline.
HttpReply ask(int port, const std::string& raw, bool head = false)
{
    HttpReply r;
    HttpClient c(port);
    if (!c.ok() || !c.request(raw, &r, head, 5000))
        r.status = 0;
    return r;
}

// Header lines for a SCOPED_TRACE, CR and LF shown.
std::string shown(const std::string& s)
{
    std::string out;
    for (char c : s)
        out += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
    return out;
}

std::string header_or(const HttpReply& r, const char* name, const char* dflt = "(none)")
{
    const std::string* v = r.header(name);
    return v ? *v : dflt;
}

// www/r.txt (20 bytes, modified at kMtime), www/evil.com/index.html,
// www/a b/ and www/x<CR><LF>y/ (directories).
const time_t kMtime = 1577836800;  // 2020-01-01 00:00:00 UTC
const std::string kText = "0123456789abcdefghij";

struct Site {
    zt::TempDir dir;
    std::string root;
    bool make()
    {
        root = dir.path + "/www";
        return ::mkdir(root.c_str(), 0755) == 0 && zt::write_file(root + "/r.txt", kText) &&
               zt::set_mtime(root + "/r.txt", kMtime) && ::mkdir((root + "/evil.com").c_str(), 0755) == 0 &&
               zt::write_file(root + "/evil.com/index.html", "evil index\n") &&
               ::mkdir((root + "/a b").c_str(), 0755) == 0 &&
               ::mkdir((root + "/x\r\ny").c_str(), 0755) == 0;
    }
};

// The names say HttpServer so that `make valgrind`, which runs only the
// tests without servers, leaves them out.
class HttpServerStatic : public zt::ServerTest {
protected:
    ::testing::AssertionResult start_site(const Site& site)
    {
        return start_httpd({"--root", site.root, "--worker-num", "1", "--net-worker-num", "1"});
    }
};
using HttpServerHello = zt::ServerTest;

// RFC 9110 5.6.7: a recipient accepts all three HTTP-date formats. The
// file is from 2020-01-01 00:00:00; each date is an hour after it (304)
// or an hour before (200).
TEST_F(HttpServerStatic, IfModifiedSinceInAllThreeDateFormats)
{
    Site site;
    ASSERT_TRUE(site.make());
    ASSERT_TRUE(start_site(site));
    const struct {
        const char* date;
        int status;
    } cases[] = {
        {"Wed, 01 Jan 2020 01:00:00 GMT", 304},   // IMF-fixdate
        {"Tue, 31 Dec 2019 23:00:00 GMT", 200},
        {"Wednesday, 01-Jan-20 01:00:00 GMT", 304},  // RFC 850
        {"Tuesday, 31-Dec-19 23:00:00 GMT", 200},
        {"Wed Jan  1 01:00:00 2020", 304},  // asctime
        {"Tue Dec 31 23:00:00 2019", 200},
        {"2020-01-01T01:00:00Z", 200},  // not an HTTP-date: ignored
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.date);
        HttpReply r = ask(port_, req("GET", "/r.txt", "If-Modified-Since: " + std::string(c.date) + "\r\n"));
        EXPECT_EQ(r.status, c.status);
    }
}

// RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is
// present. With no ETag, only "*" matches (the file exists): 304.
TEST_F(HttpServerStatic, IfNoneMatchOverridesIfModifiedSince)
{
    Site site;
    ASSERT_TRUE(site.make());
    ASSERT_TRUE(start_site(site));
    const std::string later = "If-Modified-Since: " + zt::http_date(kMtime + 3600) + "\r\n";
    const std::string earlier = "If-Modified-Since: " + zt::http_date(kMtime - 3600) + "\r\n";

    // Alone, If-Modified-Since still works both ways.
    HttpReply r = ask(port_, req("GET", "/r.txt", later));
    EXPECT_EQ(r.status, 304);
    r = ask(port_, req("GET", "/r.txt", earlier));
    EXPECT_EQ(r.status, 200);

    // An entity-tag list never matches (no ETag): 200, the date ignored.
    for (const char* inm : {"\"abc\"", "W/\"abc\"", "\"a\", \"b\""}) {
        SCOPED_TRACE(inm);
        r = ask(port_, req("GET", "/r.txt", "If-None-Match: " + std::string(inm) + "\r\n" + later));
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, kText);
        r = ask(port_, req("HEAD", "/r.txt", later + "If-None-Match: " + inm + "\r\n"), true);
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(header_or(r, "Content-Length"), "20");
    }
    // "*" matches an existing file: 304 for GET and HEAD, whatever the date.
    for (const std::string& ims : {std::string(), later, earlier}) {
        SCOPED_TRACE(shown(ims));
        r = ask(port_, req("GET", "/r.txt", "If-None-Match: *\r\n" + ims));
        EXPECT_EQ(r.status, 304);
        EXPECT_TRUE(r.body.empty());
        EXPECT_EQ(header_or(r, "Last-Modified"), zt::http_date(kMtime));
        r = ask(port_, req("HEAD", "/r.txt", ims + "If-None-Match: *\r\n"), true);
        EXPECT_EQ(r.status, 304);
    }
    // A missing file is answered as without the precondition.
    r = ask(port_, req("GET", "/none.txt", "If-None-Match: *\r\n"));
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(stop_and_check(), "");
}

// RFC 9110 13.1.1 and 13.1.4, evaluated in the order of 13.2.2.
TEST_F(HttpServerStatic, IfMatchAndIfUnmodifiedSince)
{
    Site site;
    ASSERT_TRUE(site.make());
    ASSERT_TRUE(start_site(site));
    const std::string ius_before = "If-Unmodified-Since: " + zt::http_date(kMtime - 1) + "\r\n";
    const std::string ius_same = "If-Unmodified-Since: " + zt::http_date(kMtime) + "\r\n";
    const std::string ius_after = "If-Unmodified-Since: " + zt::http_date(kMtime + 3600) + "\r\n";
    struct {
        const char* method;
        std::string headers;
        int status;
    } cases[] = {
        // If-Match: "*" matches the file; an entity-tag list cannot.
        {"GET", "If-Match: *\r\n", 200},
        {"GET", "If-Match: \"abc\"\r\n", 412},
        {"GET", "If-Match: \"a\", \"b\"\r\n", 412},
        {"GET", "If-Match: W/\"abc\"\r\n", 412},
        {"HEAD", "If-Match: \"abc\"\r\n", 412},
        // If-Unmodified-Since: 412 when the file is newer than the date.
        {"GET", ius_before, 412},
        {"HEAD", ius_before, 412},
        {"GET", ius_same, 200},
        {"GET", ius_after, 200},
        {"GET", "If-Unmodified-Since: yesterday\r\n", 200},  // not a date: ignored
        // ... and ignored when If-Match is present.
        {"GET", "If-Match: *\r\n" + ius_before, 200},
        {"GET", ius_after + "If-Match: \"abc\"\r\n", 412},
        // If-Match and If-Unmodified-Since come before If-None-Match.
        {"GET", "If-Match: \"abc\"\r\nIf-None-Match: *\r\n", 412},
        {"GET", ius_before + "If-None-Match: *\r\n", 412},
        {"GET", "If-Match: *\r\nIf-None-Match: *\r\n", 304},
        {"GET", ius_after + "If-None-Match: *\r\n", 304},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.method) + " " + shown(c.headers));
        bool head = std::string(c.method) == "HEAD";
        HttpReply r = ask(port_, req(c.method, "/r.txt", c.headers), head);
        EXPECT_EQ(r.status, c.status);
        if (c.status == 200 && !head) {
            EXPECT_EQ(r.body, kText);
        }
    }
    // A range is served once the preconditions hold.
    HttpReply r = ask(port_, req("GET", "/r.txt", "If-Match: *\r\nRange: bytes=0-3\r\n"));
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.body, "0123");
    // A missing file is answered as without the precondition.
    r = ask(port_, req("GET", "/none.txt", "If-Match: \"abc\"\r\n"));
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(stop_and_check(), "");
}

// `GET //evil.com` must not be redirected to //evil.com/ (another host for
// a browser): repeated slashes are merged, and the redirect is built from
// the merged, percent-encoded path.
TEST_F(HttpServerStatic, RepeatedSlashesAreMergedAndRedirectsStayLocal)
{
    Site site;
    ASSERT_TRUE(site.make());
    ASSERT_TRUE(start_site(site));
    struct {
        const char* target;
        const char* location;
    } redirects[] = {
        {"//evil.com", "/evil.com/"},
        {"///evil.com", "/evil.com/"},
        {"/%2Fevil.com", "/evil.com/"},
        {"/%2F/evil.com", "/evil.com/"},
        {"http://test//evil.com", "/evil.com/"},
        {"/a%20b", "/a%20b/"},
        {"/x%0D%0Ay", "/x%0D%0Ay/"},  // no header injection
        {"//evil.com?a=1&b=%20", "/evil.com/?a=1&b=%20"},  // the query goes along
    };
    for (const auto& c : redirects) {
        SCOPED_TRACE(c.target);
        HttpReply r = ask(port_, req("GET", c.target));
        EXPECT_EQ(r.status, 301);
        std::string loc = header_or(r, "Location");
        EXPECT_EQ(loc, c.location);
        EXPECT_NE(loc.compare(0, 2, "//"), 0);
        EXPECT_EQ(r.count("Location"), 1);
    }
    for (const char* target : {"//evil.com/", "//evil.com//", "///evil.com//index.html"}) {
        SCOPED_TRACE(target);
        HttpReply r = ask(port_, req("GET", target));
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "evil index\n");
    }
    HttpReply r = ask(port_, req("GET", "//r.txt"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, kText);
    EXPECT_EQ(stop_and_check(), "");
}

// RFC 9110 14.2: Range is defined for GET only; HEAD gets the whole length.
TEST_F(HttpServerStatic, HeadIgnoresRange)
{
    Site site;
    ASSERT_TRUE(site.make());
    ASSERT_TRUE(start_site(site));
    for (const char* range : {"bytes=0-4", "bytes=-3", "bytes=5-", "bytes=30-40"}) {
        SCOPED_TRACE(range);
        HttpReply r = ask(port_, req("HEAD", "/r.txt", "Range: " + std::string(range) + "\r\n"), true);
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(header_or(r, "Content-Length"), "20");
        EXPECT_FALSE(r.header("Content-Range"));
    }
    // GET still gets its range.
    HttpReply r = ask(port_, req("GET", "/r.txt", "Range: bytes=0-4\r\n"));
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.body, "01234");
    EXPECT_EQ(header_or(r, "Content-Range"), "bytes 0-4/20");
    EXPECT_EQ(stop_and_check(), "");
}

// RFC 9110 15.5.6: every 405 carries Allow.
TEST_F(HttpServerHello, MethodNotAllowedHasAllow)
{
    ASSERT_TRUE(start_httpd({"--worker-num", "1", "--net-worker-num", "1"}));
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
        SCOPED_TRACE(method);
        HttpReply r = ask(port_, req(method, "/", "Content-Length: 0\r\n"));
        EXPECT_EQ(r.status, 405);
        EXPECT_EQ(header_or(r, "Allow"), "GET, HEAD");
    }
    HttpReply r = ask(port_, req("GET", "/"));
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.header("Allow"));
    EXPECT_EQ(stop_and_check(), "");
}

TEST_F(HttpServerStatic, MethodNotAllowedHasAllow)
{
    Site site;
    ASSERT_TRUE(site.make());
    ASSERT_TRUE(start_site(site));
    for (const char* target : {"/", "/r.txt", "/none.txt", "//evil.com"}) {
        for (const char* method : {"POST", "PUT", "DELETE"}) {
            SCOPED_TRACE(std::string(method) + " " + target);
            HttpReply r = ask(port_, req(method, target, "Content-Length: 0\r\n"));
            EXPECT_EQ(r.status, 405);
            EXPECT_EQ(header_or(r, "Allow"), "GET, HEAD");
        }
    }
    HttpReply r = ask(port_, req("OPTIONS", "*"));
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(header_or(r, "Allow"), "GET, HEAD");
    EXPECT_EQ(stop_and_check(), "");
}

}  // namespace
