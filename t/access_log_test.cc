// Unit tests for zan::AccessLog's formatter (nginx's combined format plus
// the request time, and nginx's escaping of the variables) and for
// zan::LineLog, the whole-line O_APPEND file under it: buffering, flush,
// reopen after a rename, whole lines on a pipe, and lines dropped and
// counted when the file refuses them.
#include "zan/detail/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "t/tmp_helpers.h"
#include "zan/detail/line_log.h"
#include "zan/sys.h"

using zan::AccessLog;
using zan::LineLog;

namespace {

std::string escaped(std::string_view v)
{
    std::string out(4 * v.size() + 1, '\0');
    char* end = AccessLog::escape(&out[0], v);
    out.resize(static_cast<size_t>(end - out.data()));
    return out;
}

std::string line_of(const AccessLog::Entry& e, std::string_view t = "05/Dec/2026:12:22:04 +0000")
{
    std::string out(AccessLog::max_line(e, t.size()), '\0');
    char* end = AccessLog::format(&out[0], e, t);
    EXPECT_LE(static_cast<size_t>(end - out.data()), out.size());
    out.resize(static_cast<size_t>(end - out.data()));
    return out;
}

TEST(AccessLog, EscapesQuotesBackslashesAsNginx)
{
    EXPECT_EQ("a\\x22b\\x5Cc", escaped("a\"b\\c"));
    EXPECT_EQ("GET /\\x22x\\x22 HTTP/1.1", escaped("GET /\"x\" HTTP/1.1"));
}

TEST(AccessLog, EscapesControlAndHighBytes)
{
    EXPECT_EQ("\\x00\\x01\\x09\\x0A\\x0D\\x1F", escaped(std::string("\0\x01\t\n\r\x1f", 6)));
    EXPECT_EQ("\\x7F\\x80\\xC3\\xA9\\xFF", escaped("\x7f\x80\xc3\xa9\xff"));
    // Everything else printable stays as it is, the space and ' included.
    std::string printable;
    for (int c = 0x20; c < 0x7f; c++)
        if (c != '"' && c != '\\')
            printable.push_back(static_cast<char>(c));
    EXPECT_EQ(printable, escaped(printable));
}

TEST(AccessLog, EmptyIsADash)
{
    EXPECT_EQ("-", escaped(""));
}

TEST(AccessLog, FormatsTheCombinedLinePlusRequestTime)
{
    AccessLog::Entry e;
    e.remote_addr = "127.0.0.1";
    e.request = "GET /index.html?q=1 HTTP/1.1";
    e.status = 200;
    e.body_bytes = 6;
    e.referer = "http://example.com/";
    e.user_agent = "curl/8.0";
    e.request_ms = 1234;
    EXPECT_EQ("127.0.0.1 - - [05/Dec/2026:12:22:04 +0000] \"GET /index.html?q=1 HTTP/1.1\" 200 6 "
              "\"http://example.com/\" \"curl/8.0\" 1.234\n",
              line_of(e));
}

TEST(AccessLog, EmptyRefererUserAgentAndRequestAreDashes)
{
    AccessLog::Entry e;
    e.remote_addr = "::1";
    e.status = 408;
    e.body_bytes = 0;
    EXPECT_EQ("::1 - - [05/Dec/2026:12:22:04 +0000] \"-\" 408 0 \"-\" \"-\" 0.000\n", line_of(e));
    e.remote_addr = "";
    e.remote_user = "bob";
    e.request_ms = 7;
    EXPECT_EQ("- - bob [05/Dec/2026:12:22:04 +0000] \"-\" 408 0 \"-\" \"-\" 0.007\n", line_of(e));
}

TEST(AccessLog, BadInputNeverBreaksTheLine)
{
    AccessLog::Entry e;
    e.remote_addr = "10.0.0.1";
    e.remote_user = "a\"b";
    const std::string request("GET /\"\\\n\r\x01 HTTP/1.1", 19), agent("x\0y\xff", 4);
    e.request = request;
    e.status = 400;
    e.body_bytes = 150;
    e.referer = "\"";
    e.user_agent = agent;
    e.request_ms = 50;
    std::string l = line_of(e);
    EXPECT_EQ("10.0.0.1 - a\\x22b [05/Dec/2026:12:22:04 +0000] "
              "\"GET /\\x22\\x5C\\x0A\\x0D\\x01 HTTP/1.1\" 400 150 \"\\x22\" \"x\\x00y\\xFF\" 0.050\n",
              l);
    // One line, and no quote but the six of the format.
    EXPECT_EQ(1, std::count(l.begin(), l.end(), '\n'));
    EXPECT_EQ(6, std::count(l.begin(), l.end(), '"'));
}

TEST(AccessLog, MaxLineBoundsTheWorstCase)
{
    std::string all(256, '\0');
    for (int i = 0; i < 256; i++)
        all[static_cast<size_t>(i)] = static_cast<char>(i);
    AccessLog::Entry e;
    e.remote_addr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    e.remote_user = e.request = e.referer = e.user_agent = all;
    e.status = 999;
    e.body_bytes = ~0ull;
    e.request_ms = ~0ull >> 1;
    std::string l = line_of(e);
    EXPECT_EQ('\n', l.back());
}

TEST(AccessLog, TimeLocalHasNginxForm)
{
    setenv("TZ", "UTC", 1);
    tzset();
    char buf[48];
    size_t n = AccessLog::time_local(1764937324, buf, sizeof(buf));  // 2025-12-05 12:22:04 UTC
    EXPECT_EQ("05/Dec/2025:12:22:04 +0000", std::string(buf, n));
    setenv("TZ", "XYZ-5:30", 1);  // 5 h 30 min east of UTC
    tzset();
    n = AccessLog::time_local(1764937324, buf, sizeof(buf));
    EXPECT_EQ("05/Dec/2025:17:52:04 +0530", std::string(buf, n));
    unsetenv("TZ");
    tzset();
}

TEST(AccessLog, RemoteUserFromBasicCredentials)
{
    EXPECT_EQ("bob", AccessLog::basic_user("Basic Ym9iOnB3"));          // bob:pw
    EXPECT_EQ("Aladdin", AccessLog::basic_user("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
    EXPECT_EQ("", AccessLog::basic_user("Bearer abc"));
    EXPECT_EQ("", AccessLog::basic_user("Basic "));
}

TEST(AccessLog, RequestLineOfAMessage)
{
    std::string m = "\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    EXPECT_EQ("GET /x HTTP/1.1", AccessLog::request_line(m.data(), m.size()));
    EXPECT_EQ("GET /partial", AccessLog::request_line("GET /partial", 12));
    EXPECT_EQ("", AccessLog::request_line("\r\n", 2));
}

TEST(AccessLog, AddressText)
{
    char out[AccessLog::kAddrMax];
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000001);
    EXPECT_EQ("127.0.0.1", std::string(out, AccessLog::addr_text(reinterpret_cast<sockaddr*>(&a), sizeof(a), out)));
    a.sin_addr.s_addr = htonl(0x0ac803ff);
    EXPECT_EQ("10.200.3.255", std::string(out, AccessLog::addr_text(reinterpret_cast<sockaddr*>(&a), sizeof(a), out)));
    a.sin_addr.s_addr = 0;
    EXPECT_EQ("0.0.0.0", std::string(out, AccessLog::addr_text(reinterpret_cast<sockaddr*>(&a), sizeof(a), out)));
    struct sockaddr_in6 b;
    memset(&b, 0, sizeof(b));
    b.sin6_family = AF_INET6;
    b.sin6_addr.s6_addr[15] = 1;
    EXPECT_EQ("::1", std::string(out, AccessLog::addr_text(reinterpret_cast<sockaddr*>(&b), sizeof(b), out)));
}

TEST(AccessLog, WritesBufferedLinesOnFlushAndClose)
{
    zt::TempDir dir;
    std::string path = dir.path + "/access.log";
    AccessLog log;
    ASSERT_TRUE(log.open(path, nullptr)) << strerror(errno);
    AccessLog::Entry e;
    e.remote_addr = "127.0.0.1";
    e.request = "GET / HTTP/1.1";
    e.status = 200;
    log.write(e);
    EXPECT_EQ("", zt::read_file(path)) << "a line was written unbuffered";
    ASSERT_TRUE(log.flush());
    std::string first = zt::read_file(path);
    EXPECT_EQ(1, std::count(first.begin(), first.end(), '\n'));
    log.write(e);
    log.close();
    std::string text = zt::read_file(path);
    EXPECT_EQ(2, std::count(text.begin(), text.end(), '\n')) << text;
}

TEST(LineLog, FlushesWholeLinesWhenTheBufferFills)
{
    zt::TempDir dir;
    std::string path = dir.path + "/lines";
    LineLog log;
    ASSERT_TRUE(log.open(path));
    std::string line(999, 'x');  // 1000 bytes with its '\n'
    size_t n = LineLog::kBufferSize / 1000 + 5;
    for (size_t i = 0; i < n; i++)
        log.append(line);
    std::string text = zt::read_file(path);
    EXPECT_GT(text.size(), 0u) << "a full buffer was not flushed";
    EXPECT_EQ(0u, text.size() % 1000) << "a flush split a line";
    log.close();
    EXPECT_EQ(n * 1000, zt::read_file(path).size());
}

TEST(LineLog, ALineLargerThanTheBufferGoesWhole)
{
    zt::TempDir dir;
    std::string path = dir.path + "/lines";
    LineLog log;
    ASSERT_TRUE(log.open(path));
    log.append("small");
    std::string big(3 * LineLog::kBufferSize, 'b');
    log.append(big);
    log.append("after");
    log.close();
    EXPECT_EQ("small\n" + big + "\nafter\n", zt::read_file(path));
}

TEST(LineLog, ReopenAfterRenameStartsANewFile)
{
    zt::TempDir dir;
    std::string path = dir.path + "/access.log";
    LineLog log;
    ASSERT_TRUE(log.open(path));
    log.append("one");
    ASSERT_EQ(0, ::rename(path.c_str(), (path + ".1").c_str()));
    log.append("two");
    ASSERT_TRUE(log.reopen()) << strerror(errno);  // flushes into the renamed file first
    log.append("three");
    log.close();
    EXPECT_EQ("one\ntwo\n", zt::read_file(path + ".1"));
    EXPECT_EQ("three\n", zt::read_file(path));
}

// On a pipe only PIPE_BUF bytes are written atomically: the flush cuts
// the buffer into writes of whole lines (a longer line alone); what
// arrives is every line, whole and in order.
TEST(LineLog, OnAPipeLinesArriveWholeAndInOrder)
{
    zan::Fd rd, wr;
    ASSERT_TRUE(zan::make_pipe(false, &rd, &wr));
    ASSERT_GE(::fcntl(wr.get(), F_SETPIPE_SZ, 1 << 20), 0);
    std::string path = "/proc/self/fd/" + std::to_string(wr.get());
    LineLog log;
    ASSERT_TRUE(log.open(path)) << strerror(errno);
    std::string want;
    for (int i = 0; i < 200; i++) {
        // 1 to 6000 bytes: some lines longer than PIPE_BUF.
        std::string l(static_cast<size_t>(397 * i % 6000 + 1), static_cast<char>('a' + i % 26));
        log.append(l);
        want += l + "\n";
    }
    ASSERT_TRUE(log.flush());
    log.close();
    wr.reset();
    std::string got;
    std::vector<char> buf(1 << 20);
    for (;;) {
        ssize_t n = ::read(rd.get(), buf.data(), buf.size());
        ASSERT_GE(n, 0) << strerror(errno);
        if (n == 0)
            break;
        got.append(buf.data(), static_cast<size_t>(n));
    }
    EXPECT_EQ(want, got);
}

TEST(LineLog, LinesTheFileRefusesAreDroppedAndCounted)
{
    zt::CapturedLog captured;  // the one error line
    LineLog log;
    ASSERT_TRUE(log.open("/dev/full")) << strerror(errno);
    for (int i = 0; i < 10; i++)
        log.append("a line");
    EXPECT_FALSE(log.flush());
    EXPECT_EQ(ENOSPC, errno);
    EXPECT_EQ(10u, log.dropped_lines());
    EXPECT_EQ(0u, log.pending());
    log.append("again");
    EXPECT_FALSE(log.flush());
    EXPECT_EQ(11u, log.dropped_lines());
    std::string text = captured.text();
    size_t first = text.find("lines dropped");
    EXPECT_NE(std::string::npos, first) << text;
    EXPECT_EQ(std::string::npos, text.find("lines dropped", first + 1)) << "a full disk logged twice:\n" << text;
}

}  // namespace
