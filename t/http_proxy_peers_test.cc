// zan-httpd --proxy in front of real origin servers rather than an
// in-test one: Debian's nginx (a 20 MiB static file with sendfile and
// its own keep-alive rules, a small `return`, a 404) and zan-baseline
// --http (keep-alive answers as fast as one process can give them).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/net_helpers.h"
#include "t/nginx_proc.h"
#include "t/proc_helpers.h"
#include "t/proxy_upstream.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

namespace {

const size_t k20MiB = 20u << 20;

class HttpProxyPeers : public zt::ServerTest {
protected:
    ::testing::AssertionResult start_proxy(int upstream_port)
    {
        return start_httpd({"--worker-num", "1", "--net-worker-num", "1", "--proxy",
                            "127.0.0.1:" + std::to_string(upstream_port), "--proxy-timeout", "10000"});
    }

    zt::Reply get(int fd, const std::string& target, const std::string& method = "GET")
    {
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: front.example\r\n\r\n";
        if (!zt::send_str(fd, req))
            return zt::Reply();
        return zt::read_reply(fd, method, zt::scaled(10000));
    }
};

// nginx serving files from dir/www on keep-alive connections.
std::string nginx_origin(const std::string& dir)
{
    return "    server {\n"
           "        listen 127.0.0.1:{PORT};\n"
           "        keepalive_requests 100000;\n"
           "        root " + dir + "/www;\n"
           "        log_not_found off;\n"
           "        location = /hello { return 200 \"hello\\n\"; }\n"
           "    }\n";
}

TEST_F(HttpProxyPeers, RelaysNginxByteExact)
{
    ASSERT_EQ(::access(zt::kNginx, X_OK), 0) << zt::kNginx << " is missing: run t/prereqs.sh";
    zt::TempDir dir;
    ASSERT_EQ(::mkdir((dir.path + "/www").c_str(), 0755), 0);
    std::string big = zt::pattern(k20MiB);
    ASSERT_TRUE(zt::write_file(dir.path + "/www/big.bin", big));
    // nginx started as root serves as nobody: let it read the files.
    ASSERT_EQ(::chmod(dir.path.c_str(), 0755), 0);
    ASSERT_EQ(::chmod((dir.path + "/www/big.bin").c_str(), 0644), 0);
    zt::Proc nginx;
    int up = 0;
    ASSERT_EQ(zt::start_nginx(&nginx, dir.path, nginx_origin(dir.path), "/hello", &up), "");
    ASSERT_TRUE(start_proxy(up));

    zt::Sock c = connect();
    ASSERT_TRUE(c.ok());
    zt::Reply r = get(c.get(), "/big.bin");
    EXPECT_EQ(200, r.status);
    EXPECT_EQ(static_cast<long long>(k20MiB), r.length);
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(r.body == big) << "body of " << r.body.size() << " bytes differs";
    EXPECT_EQ("1.1 zan", r.field("Via"));

    r = get(c.get(), "/big.bin", "HEAD");
    EXPECT_EQ(200, r.status);
    EXPECT_EQ(static_cast<long long>(k20MiB), r.length);
    EXPECT_TRUE(r.body.empty());

    r = get(c.get(), "/missing");
    EXPECT_EQ(404, r.status);
    EXPECT_TRUE(r.complete);

    // Many small answers over the upstream connections the pool keeps
    // (zan-httpd closes a client connection after its 1,000th request,
    // as nginx does: then the client connects again).
    int ok = 0;
    for (int i = 0; i < 2000; ++i) {
        r = get(c.get(), "/hello");
        if (r.status != 200 || r.body != "hello\n" || !r.complete)
            break;
        ++ok;
        if (r.closed || r.field("Connection") == "close") {
            c = connect();
            ASSERT_TRUE(c.ok());
        }
    }
    EXPECT_EQ(2000, ok) << "status " << r.status << ", closed " << r.closed << ", complete " << r.complete << "\n" << r.head << r.body;
    c.reset();
    EXPECT_EQ("", stop_and_check());
    nginx.signal(SIGQUIT);
    EXPECT_NE(nginx.wait_exit(zt::scaled(5000)), -1);
    std::string log = zt::read_file(dir.path + "/error.log");
    EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
}

TEST_F(HttpProxyPeers, RelaysZanBaselineOverKeepAlive)
{
    zt::Proc baseline;
    int up = zt::start_server(&baseline, {zt::tool("zan-baseline"), "--http", "--port", "0"});
    ASSERT_GT(up, 0) << baseline.output();
    ASSERT_TRUE(start_proxy(up));
    int ok = 0;
    for (int conn = 0; conn < 4; ++conn) {
        zt::Sock c = connect();
        ASSERT_TRUE(c.ok());
        for (int i = 0; i < 500; ++i) {
            zt::Reply r = get(c.get(), "/");
            if (r.status != 200 || r.body != "hello\n" || !r.complete)
                break;
            ++ok;
        }
    }
    EXPECT_EQ(2000, ok);
    EXPECT_EQ("", stop_and_check());
    baseline.signal(SIGTERM);
    EXPECT_NE(baseline.wait_exit(zt::scaled(5000)), -1);
}

}  // namespace
