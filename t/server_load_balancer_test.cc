// zan behind a load balancer: Debian's nginx on loopback in front of two
// zan-httpd instances, driven by wrk, while one instance is stopped with
// SIGTERM and started again on the same port. The graceful stop must cost
// the clients nothing: no failed request, and no upstream connection that
// nginx saw reset or closed before its response (nginx would retry such a
// GET elsewhere and hide it from wrk; its error log does not).
//
// nginx proxies two locations: /new/ opens a connection per request (the
// default, HTTP/1.0 to the upstream), which exercises the listening
// socket's close, and /ka/ keeps upstream connections alive (keepalive,
// HTTP/1.1), which exercises "Connection: close" on the last replies and
// the closing of idle keep-alive connections. fail_timeout=1s brings the
// restarted instance back into rotation soon enough to be seen.
//
// Drain.*: the same stop seen by a single HTTP client, without nginx.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "t/http_client.h"
#include "t/net_helpers.h"
#include "t/nginx_proc.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

namespace {

const char* kWrk = "/usr/bin/wrk";

// Two instances on ports a and b behind nginx: /new/ opens a connection
// per request, /ka/ keeps them.
std::string nginx_http(int a, int b)
{
    std::string servers = "        server 127.0.0.1:" + std::to_string(a) +
                          " max_fails=1 fail_timeout=1s;\n        server 127.0.0.1:" +
                          std::to_string(b) + " max_fails=1 fail_timeout=1s;\n";
    return "    upstream zan { \n" + servers + "    }\n"
           "    upstream zan_ka {\n" + servers + "        keepalive 16;\n    }\n"
           "    server {\n"
           "        listen 127.0.0.1:{PORT};\n"
           "        add_header X-Upstream $upstream_addr always;\n"
           "        location /new/ { proxy_pass http://zan/; }\n"
           "        location /ka/ {\n"
           "            proxy_pass http://zan_ka/;\n"
           "            proxy_http_version 1.1;\n"
           "            proxy_set_header Connection \"\";\n"
           "        }\n"
           "    }\n";
}

// wrk's report: "" when every request got a 2xx answer, else the report.
std::string wrk_failures(const std::string& out)
{
    if (out.find("requests in") == std::string::npos)
        return "no wrk report:\n" + out;
    if (out.find("Non-2xx") != std::string::npos || out.find("Socket errors") != std::string::npos)
        return out;
    return "";
}

// The error log lines that are not the expected refusals of the stopped
// instance's port ("connect() failed (111: Connection refused)").
std::string unexpected_errors(const std::string& log)
{
    std::string bad;
    size_t at = 0;
    while (at < log.size()) {
        size_t end = log.find('\n', at);
        if (end == std::string::npos)
            end = log.size();
        std::string line = log.substr(at, end - at);
        at = end + 1;
        bool noted = line.find("[error]") != std::string::npos || line.find("[crit]") != std::string::npos ||
                     line.find("[alert]") != std::string::npos;
        if (noted && line.find("(111: Connection refused)") == std::string::npos)
            bad += line + "\n";
    }
    return bad;
}

TEST(LoadBalancer, GracefulStopBehindNginxFailsNoRequest)
{
    ASSERT_EQ(::access(zt::kNginx, X_OK), 0) << zt::kNginx << " is missing: run t/prereqs.sh";
    ASSERT_EQ(::access(kWrk, X_OK), 0) << kWrk << " is missing: run t/prereqs.sh";
    zt::TempDir dir;
    std::vector<std::string> opts = {"--worker-num", "1", "--net-worker-num", "1"};
    zt::Proc a, b, a2, nginx;
    int pa = zt::start_httpd(&a, opts);
    ASSERT_GT(pa, 0) << a.output();
    int pb = zt::start_httpd(&b, opts);
    ASSERT_GT(pb, 0) << b.output();
    int port = 0;
    std::string err = zt::start_nginx(&nginx, dir.path, nginx_http(pa, pb), "/new/", &port);
    ASSERT_EQ(err, "");

    // wrk's timeout is past a SYN's retransmission (1 s): a connection
    // request that met the stopping listener is dropped, sent again, and
    // only then refused and retried elsewhere by nginx.
    std::string base = "http://127.0.0.1:" + std::to_string(port);
    zt::Proc load_new, load_ka;
    ASSERT_TRUE(load_new.spawn({kWrk, "-t1", "-c2", "-d5s", "--timeout", "5s", base + "/new/"}));
    ASSERT_TRUE(load_ka.spawn({kWrk, "-t1", "-c2", "-d5s", "--timeout", "5s", base + "/ka/"}));

    ::usleep(1000 * 1000);  // under load for a while before the stop
    long long t0 = zt::now_ms();
    a.signal(SIGTERM);
    int st = a.wait_exit(zt::scaled(5000));
    ASSERT_NE(st, -1) << "the stopped instance did not exit";
    long long took = zt::now_ms() - t0;
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << a.output();
    EXPECT_EQ(a.output().find("SIGKILL"), std::string::npos) << a.output();
    EXPECT_LT(took, zt::scaled(3000)) << "the drain outlasted max_wait_time";
    std::vector<std::string> again = {zt::tool("zan-httpd"), "--host", "127.0.0.1", "--port",
                                      std::to_string(pa)};
    again.insert(again.end(), opts.begin(), opts.end());
    ASSERT_EQ(zt::start_server(&a2, again), pa) << a2.output();

    ASSERT_NE(load_new.wait_exit(zt::scaled(15000)), -1);
    ASSERT_NE(load_ka.wait_exit(zt::scaled(15000)), -1);
    EXPECT_EQ(wrk_failures(load_new.output()), "");
    EXPECT_EQ(wrk_failures(load_ka.output()), "");
    std::string log = zt::read_file(dir.path + "/error.log");
    EXPECT_EQ(unexpected_errors(log), "") << "nginx saw upstream failures";
    printf("drain: stopped in %lld ms\n%s\n%s", took, load_new.output().c_str(),
           load_ka.output().c_str());

    // The restarted instance is back in rotation once fail_timeout passed.
    std::string mark = "127.0.0.1:" + std::to_string(pa);
    bool seen = false;
    long long deadline = zt::now_ms() + zt::scaled(5000);
    while (!seen && zt::now_ms() < deadline) {
        zt::HttpClient c(port);
        zt::HttpReply r;
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(c.request("GET /new/ HTTP/1.1\r\nHost: lb\r\n\r\n", &r));
        EXPECT_EQ(r.status, 200);
        const std::string* up = r.header("X-Upstream");
        seen = up && up->find(mark) != std::string::npos;
        if (!seen)
            zt::wait_fd(-1, 0, 50);
    }
    EXPECT_TRUE(seen) << "the restarted instance gets no request";
    EXPECT_EQ(zt::stop_and_check(&a2), "");
    EXPECT_EQ(zt::stop_and_check(&b), "");
    nginx.signal(SIGQUIT);
    EXPECT_NE(nginx.wait_exit(zt::scaled(5000)), -1);
}

// A keep-alive connection during the stop: a request sent once the stop
// has begun is answered with "Connection: close" and the connection then
// ends; an idle one is closed no sooner than its quiet time (500 ms since
// its last request), with a clean end, never a reset.
TEST(Drain, KeepAliveConnectionsEndCleanly)
{
    zt::Proc srv;
    int port = zt::start_httpd(&srv, {"--worker-num", "1", "--net-worker-num", "1"});
    ASSERT_GT(port, 0) << srv.output();
    pid_t net = zt::find_by_name(srv.pid(), "zan-net-0");
    ASSERT_GT(net, 0);
    const std::string get = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    zt::HttpClient idle(port), busy(port);
    zt::HttpReply r;
    ASSERT_TRUE(idle.request(get, &r));
    long long idle_last = zt::now_ms();
    ASSERT_TRUE(busy.request(get, &r));
    long long last = zt::now_ms();
    EXPECT_FALSE(r.closes());
    srv.signal(SIGTERM);
    long long deadline = zt::now_ms() + zt::scaled(5000);
    while (zt::holds_listener(net, port) && zt::now_ms() < deadline)
        zt::wait_fd(-1, 0, 2);  // polling /proc: no event for it
    ASSERT_FALSE(zt::holds_listener(net, port)) << "the stop did not begin";
    ASSERT_TRUE(busy.send(get));
    if (busy.next(&r)) {
        EXPECT_EQ(r.status, 200);
        EXPECT_TRUE(r.closes()) << "a reply during the stop keeps the connection alive";
        EXPECT_TRUE(busy.closed(zt::scaled(3000)));
    } else {
        // Only a connection quiet for 500 ms may be closed unasked (a
        // loaded machine may take that long to get here).
        EXPECT_GE(zt::now_ms() - last, 500) << "closed while a request could be on its way";
    }
    EXPECT_FALSE(busy.reset()) << "the connection was reset";
    EXPECT_TRUE(idle.closed(zt::scaled(3000))) << "an idle connection stayed open";
    EXPECT_FALSE(idle.reset()) << "the idle connection was reset";
    EXPECT_GE(zt::now_ms() - idle_last, 500) << "the idle connection was closed before its quiet time";
    int st = srv.wait_exit(zt::scaled(5000));
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.output();
    EXPECT_EQ(srv.output().find("SIGKILL"), std::string::npos) << srv.output();
}

}  // namespace
