// Integration tests of the access log (zan-httpd --access-log): 100,000
// requests over 2 NetWorkers and 2 Workers give exactly 100,000 lines,
// each whole and well-formed (a strict regex), none torn or interleaved;
// a rotation (rename, zanctl reopen) under load loses no line; lines are
// flushed on exit and within about a second while idle; and the replies
// a NetWorker or Worker makes itself (bad input, refused requests) are
// logged with their request line escaped; so are detached and streamed
// responses of a library server. zan-httpd runs on 127.0.0.1
// with --port 0 under zt::ServerTest, which stops it even when an
// assertion fails; the load comes from build/tools/zan-bench.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
// GCC 12 takes a std::function inside <regex> for uninitialized when it
// inlines this file's patterns with sanitizers on: a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/forked_main.h"
#include "t/http_client.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"
#include "zan/http_server.h"

namespace {

// A line of zan-bench's GET / (no Referer, no User-Agent) answered 200.
const std::regex kBenchLine(
    "127\\.0\\.0\\.1 - - \\[[0-3][0-9]/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/"
    "[0-9]{4}:[0-2][0-9]:[0-5][0-9]:[0-6][0-9] [+-][0-9]{4}\\] \"GET / HTTP/1\\.1\" 200 6 "
    "\"-\" \"-\" [0-9]+\\.[0-9]{3}");

// The lines of a file; a last piece without its '\n' is returned too,
// flagged in *torn.
std::vector<std::string> lines_of(const std::string& path, bool* torn)
{
    std::string text = zt::read_file(path);
    std::vector<std::string> out;
    size_t pos = 0;
    *torn = false;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) {
            out.push_back(text.substr(pos));
            *torn = true;
            break;
        }
        out.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

// Lines that are not zan-bench's, with the first few shown in *bad.
size_t malformed(const std::vector<std::string>& lines, std::string* bad)
{
    size_t n = 0;
    for (const std::string& l : lines) {
        if (std::regex_match(l, kBenchLine))
            continue;
        if (n++ < 5)
            *bad += l + "\n";
    }
    return n;
}

// zan-bench --http: `requests` GETs of / over 50 connections; the
// requests it counted (answered 200), -1 when it failed.
long long bench(int port, long long requests)
{
    std::string out;
    int rc = zt::run_command(zt::shell_quote(zt::tool("zan-bench")) + " --port " + std::to_string(port) +
                                 " --http --connections 50 --json --requests " + std::to_string(requests),
                             &out, 120);
    if (rc != 0 || zt::json_int(out, "errors") != 0)
        return -1;
    return zt::json_int(out, "requests");
}

int zanctl(const std::string& args, std::string* out)
{
    return zt::run_command(zt::shell_quote(zt::tool("zanctl")) + " " + args + " 2>&1", out, 30);
}

class AccessLogTest : public zt::ServerTest {
protected:
    zt::TempDir dir_;
    std::string log_ = dir_.path + "/access.log";
    std::string pid_file_ = dir_.path + "/httpd.pid";

    ::testing::AssertionResult start(int workers, int net_workers)
    {
        return start_httpd({"--worker-num", std::to_string(workers), "--net-worker-num",
                            std::to_string(net_workers), "--access-log", log_, "--pid-file", pid_file_,
                            "--log-file", dir_.path + "/error.log"});
    }
    size_t line_count(const std::string& path)
    {
        std::string t = zt::read_file(path);
        return static_cast<size_t>(std::count(t.begin(), t.end(), '\n'));
    }
};

TEST_F(AccessLogTest, HundredThousandRequestsOverFourProcessesGiveThatManyWholeLines)
{
    ASSERT_TRUE(start(2, 2));
    const long long kRequests = 100000;
    ASSERT_EQ(kRequests, bench(port_, kRequests));
    ASSERT_EQ("", stop_and_check());  // every process flushes as it exits
    bool torn = false;
    std::vector<std::string> lines = lines_of(log_, &torn);
    EXPECT_FALSE(torn) << "the file ends inside a line";
    EXPECT_EQ(static_cast<size_t>(kRequests), lines.size());
    std::string bad;
    EXPECT_EQ(0u, malformed(lines, &bad)) << "torn, interleaved or wrong lines, e.g.:\n" << bad;
}

TEST_F(AccessLogTest, RotationUnderLoadLosesNoLine)
{
    ASSERT_TRUE(start(2, 2));
    std::string rotated = log_ + ".1";
    // Load in the background; rotate once its first lines are in the file.
    zt::Proc load;
    ASSERT_TRUE(load.spawn({zt::tool("zan-bench"), "--port", std::to_string(port_), "--http",
                            "--connections", "50", "--json", "--requests", "60000"}));
    struct stat st;
    long long deadline = zt::now_ms() + zt::scaled(10000);
    while ((::stat(log_.c_str(), &st) != 0 || st.st_size == 0) && zt::now_ms() < deadline)
        ::usleep(1000);
    ASSERT_GT(st.st_size, 0) << "no line in the access log";
    ASSERT_EQ(0, ::rename(log_.c_str(), rotated.c_str()));
    std::string out;
    ASSERT_EQ(0, zanctl("-p " + zt::shell_quote(pid_file_) + " reopen", &out)) << out;
    ASSERT_NE(-1, load.wait_exit(zt::scaled(60000))) << "zan-bench did not finish";
    std::string result = load.output();
    ASSERT_EQ(0, zt::json_int(result, "errors")) << result;
    long long made = zt::json_int(result, "requests");
    ASSERT_EQ(60000, made) << result;
    // And after the reopen, more load into the new file.
    ASSERT_EQ(10000, bench(port_, 10000));
    made += 10000;
    ASSERT_EQ("", stop_and_check());
    bool torn1 = false, torn2 = false;
    std::vector<std::string> old_lines = lines_of(rotated, &torn1);
    std::vector<std::string> new_lines = lines_of(log_, &torn2);
    EXPECT_FALSE(torn1 || torn2);
    EXPECT_GE(new_lines.size(), 10000u) << "the processes did not reopen the file";
    EXPECT_EQ(static_cast<size_t>(made), old_lines.size() + new_lines.size())
        << old_lines.size() << " lines before the rotation, " << new_lines.size() << " after";
    std::string bad;
    EXPECT_EQ(0u, malformed(old_lines, &bad) + malformed(new_lines, &bad)) << bad;
}

TEST_F(AccessLogTest, LinesAreFlushedOnExit)
{
    ASSERT_TRUE(start(1, 1));
    for (int i = 0; i < 3; i++) {
        zt::HttpClient c(port_);
        zt::HttpReply r;
        ASSERT_TRUE(c.ok() && c.request("GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r, false, 5000));
        ASSERT_EQ(200, r.status);
    }
    ASSERT_EQ("", stop_and_check());  // at once: well before the 1 s flush
    EXPECT_EQ(3u, line_count(log_)) << zt::read_file(log_);
}

TEST_F(AccessLogTest, IdleProcessFlushesWithinASecond)
{
    ASSERT_TRUE(start(1, 1));
    zt::HttpClient c(port_);
    zt::HttpReply r;
    ASSERT_TRUE(c.ok() && c.request("GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: idle\r\n\r\n", &r, false, 5000));
    long long answered = zt::now_ms();
    long long deadline = answered + zt::scaled(3000);
    while (line_count(log_) < 1 && zt::now_ms() < deadline)
        ::usleep(5000);
    long long took = zt::now_ms() - answered;
    ASSERT_EQ(1u, line_count(log_)) << "not flushed within " << took << " ms";
    EXPECT_LE(took, zt::scaled(1500));
    EXPECT_NE(std::string::npos, zt::read_file(log_).find("\"GET / HTTP/1.1\" 200 6 \"-\" \"idle\""))
        << zt::read_file(log_);
}

// The NetWorker answers bad input itself and logs it; the Worker logs the
// requests it refuses (an HTTP/1.1 request without Host) and the
// application's replies, Referer, User-Agent and Basic user included.
TEST_F(AccessLogTest, RefusalsAndEscapedRequestLinesAreLogged)
{
    ASSERT_TRUE(start(1, 1));
    struct Case {
        std::string raw;
        int status;
    };
    std::vector<Case> cases = {
        {"GET /a\"b HTTP/1.1\r\nHost: t\r\nno colon\r\n\r\n", 400},   // NetWorker: bad field
        {"GET /a\x01" "b HTTP/1.1\r\nHost: t\r\n\r\n", 400},               // NetWorker: bad target
        {"GET / HTTP/1.7\r\nHost: t\r\n\r\n", 505},                     // NetWorker
        {"GET / HTTP/1.1\r\n\r\n", 400},                                // Worker: no Host
        {"GET /missing HTTP/1.1\r\nHost: t\r\nReferer: http://r/\"x\r\n"
         "User-Agent: ua\\1\r\nAuthorization: Basic Ym9iOnB3\r\n\r\n", 404},  // the application
    };
    for (const Case& k : cases) {
        zt::HttpClient c(port_);
        zt::HttpReply r;
        ASSERT_TRUE(c.ok() && c.request(k.raw, &r, false, 5000)) << k.raw;
        ASSERT_EQ(k.status, r.status) << k.raw;
    }
    ASSERT_EQ("", stop_and_check());
    std::string text = zt::read_file(log_);
    EXPECT_EQ(5u, line_count(log_)) << text;
    for (const char* want : {
             "127.0.0.1 - - [", "] \"GET /a\\x22b HTTP/1.1\" 400 ", "] \"GET /a\\x01b HTTP/1.1\" 400 ",
             "\"GET / HTTP/1.7\" 505 ", "\"GET / HTTP/1.1\" 400 ",
             "127.0.0.1 - bob [",
             "] \"GET /missing HTTP/1.1\" 404 14 \"http://r/\\x22x\" \"ua\\x5C1\" "}) {
        EXPECT_NE(std::string::npos, text.find(want)) << "no \"" << want << "\" in\n" << text;
    }
}

TEST(AccessLogStart, AFileThatCannotBeOpenedFailsTheStart)
{
    zt::TempDir dir;
    zt::Proc p;
    ASSERT_TRUE(p.spawn({zt::tool("zan-httpd"), "--port", "0", "--access-log", dir.path + "/no/such/dir/a.log"}));
    int st = p.wait_exit(zt::scaled(10000));
    ASSERT_NE(-1, st) << p.output();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st << "\n" << p.output();
    EXPECT_NE(std::string::npos, p.output().find("cannot open access log")) << p.output();
}

// A library HttpServer with an access log, forked (it becomes its own
// Master): responses detach()ed and finished later, and streamed ones.
// The destructor stops it and waits for it, so its lines are flushed.
class LibServer {
public:
    explicit LibServer(const std::string& access_log)
        : main_([access_log](int ready_fd) { return run(ready_fd, access_log); })
    {
    }
    int port() const { return main_.port(); }
    // SIGTERM, and the exit status (-1 when it had to be killed).
    int stop() { return main_.stop(); }

private:
    static int run(int ready_fd, const std::string& access_log)
    {
        zan::ServerConfig cfg;
        cfg.worker_num = 1;
        cfg.net_worker_num = 1;
        cfg.log_level = zan::Level::error;
        zan::HttpConfig hc;
        hc.access_log = access_log;
        zan::HttpServer srv(cfg, hc);
        if (!srv.listen("127.0.0.1", 0))
            return 1;
        srv.on_start([ready_fd](zan::TcpServer& s) { zt::ForkedMain::report_port(ready_fd, s.port()); });
        srv.on_request([](zan::HttpServer& s, zan::HttpRequest& req, zan::HttpResponse& resp) {
            if (req.path == "/slow") {  // finished 150 ms later, from a timer
                auto late = std::make_shared<zan::HttpResponse>(resp.detach());
                s.run_after(150, [late] {
                    late->set_status(202);
                    late->end("slow\n");
                });
            } else if (req.path == "/stream") {
                resp.write("a");
                resp.write("bb");
                resp.end("ccc");
            } else {
                resp.end("hello\n");
            }
        });
        return srv.start();
    }

    zt::ForkedMain main_;
};

// A detached response is logged when it is finished, with what its
// request said (the request itself is long gone); a streamed one with
// its body bytes as sent, chunk framing included (as nginx counts).
TEST(AccessLogLibrary, DetachedAndStreamedResponses)
{
    zt::TempDir dir;
    std::string path = dir.path + "/access.log";
    LibServer srv(path);
    ASSERT_GT(srv.port(), 0);
    zt::HttpClient c(srv.port());
    zt::HttpReply r;
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.request("GET /slow?x HTTP/1.1\r\nHost: t\r\nUser-Agent: late\r\nReferer: /r\r\n\r\n",
                          &r, false, 5000));
    ASSERT_EQ(202, r.status);
    ASSERT_TRUE(c.request("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n", &r, false, 5000));
    ASSERT_EQ("abbccc", r.body);
    ASSERT_EQ(0, srv.stop());
    std::string text = zt::read_file(path);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, std::regex("127\\.0\\.0\\.1 - - \\[[^\\]]+\\] \"GET /slow\\?x HTTP/1\\.1\" 202 5 \"/r\" \"late\" ([0-9]+\\.[0-9]{3})\n")))
        << text;
    double took = atof(m[1].str().c_str());
    EXPECT_GE(took, 0.14) << text;
    EXPECT_LT(took, 5.0) << text;
    // 1\r\na\r\n 2\r\nbb\r\n 3\r\nccc\r\n 0\r\n\r\n
    EXPECT_NE(std::string::npos, text.find("\"GET /stream HTTP/1.1\" 200 26 \"-\" \"-\" ")) << text;
}

}  // namespace
