// Integration tests of the two floors `make bench` measures zan against:
// zan-baseline --http (one process) and zan-hopfloor (the bare
// NetWorker->Worker hop). A floor that answered wrongly or dropped a
// pipelined request would make every ratio in tools/BENCH.md a lie, so
// both get the same checks: pipelined and split requests on several
// connections, a 404, connections shared out evenly over the hop's pairs,
// and a clean stop that leaves no process behind. Each program runs on
// 127.0.0.1 with --port 0 under zt::Proc, which stops it (and anything it
// forked) even when an assertion fails.
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "t/http_client.h"
#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "zan/sys.h"

namespace {

const char kGet[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

// Sends, on each of `conns` connections, three pipelined requests in one
// write and a fourth split over two writes, and expects four "hello"
// answers in order on each; then a 404 for another path.
void expect_answers(int port, int conns)
{
    std::vector<zt::HttpClient> cs;
    for (int i = 0; i < conns; i++) {
        cs.emplace_back(port);
        ASSERT_TRUE(cs.back().ok()) << "connection " << i;
    }
    auto expect_hellos = [&](int n) {
        for (size_t i = 0; i < cs.size(); i++) {
            for (int k = 0; k < n; k++) {
                zt::HttpReply r;
                ASSERT_TRUE(cs[i].next(&r)) << "connection " << i << ", answer " << k;
                EXPECT_EQ(200, r.status);
                EXPECT_EQ("hello\n", r.body);
            }
        }
    };
    for (auto& c : cs)
        ASSERT_TRUE(c.send(std::string(kGet) + kGet + kGet + "GET / HT"));
    expect_hellos(3);  // so the head's first part was surely read alone
    for (auto& c : cs)
        ASSERT_TRUE(c.send("TP/1.1\r\nHost: a\r\n\r\n"));
    expect_hellos(1);
    for (size_t i = 0; i < cs.size(); i++)
        EXPECT_TRUE(cs[i].quiet(20)) << "more answers than requests on connection " << i;
    zt::HttpReply r;
    ASSERT_TRUE(cs[0].request("GET /other HTTP/1.1\r\nHost: a\r\n\r\n", &r));
    EXPECT_EQ(404, r.status);
}

void expect_clean_stop(zt::Proc* p, const std::vector<pid_t>& kids)
{
    p->signal(SIGTERM);
    int st = p->wait_exit(5000);
    ASSERT_NE(-1, st) << "did not exit within 5 s of SIGTERM";
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << p->output();
    for (pid_t k : kids)
        EXPECT_TRUE(zt::wait_gone(k, 3000)) << "child " << k << " outlived its parent";
}

TEST(BenchFloor, BaselineAnswersPipelinedAndSplitRequests)
{
    zt::Proc p;
    int port = zt::start_server(&p, {zt::tool("zan-baseline"), "--http", "--port", "0"});
    ASSERT_GT(port, 0) << p.output();
    expect_answers(port, 6);
    expect_clean_stop(&p, {});
}

TEST(BenchFloor, HopFloorAnswersPipelinedAndSplitRequests)
{
    zt::Proc p;
    int port = zt::start_server(&p, {zt::tool("zan-hopfloor"), "--pairs", "2", "--port", "0"});
    ASSERT_GT(port, 0) << p.output();
    std::vector<pid_t> kids = zt::children_of(p.pid());
    ASSERT_EQ(4u, kids.size()) << "two pairs are four processes";
    expect_answers(port, 6);
    expect_clean_stop(&p, kids);
}

// The fronts, a NetWorker's part, ask for a NetWorker's short time slice
// as zan does (--slice-us, default 100); the backs keep the kernel's.
TEST(BenchFloor, HopFloorFrontsAskForAShortSlice)
{
    int dflt = zan::sched_slice_us(0);
    ASSERT_GE(dflt, 0);
    if (dflt == 0)
        GTEST_SKIP() << "the kernel reports no slice (before Linux 6.12)";
    for (const char* slice : {"", "300", "0"}) {
        zt::Proc p;
        std::vector<std::string> argv{zt::tool("zan-hopfloor"), "--pairs", "2", "--port", "0"};
        if (*slice) {
            argv.push_back("--slice-us");
            argv.push_back(slice);
        }
        int port = zt::start_server(&p, argv);
        ASSERT_GT(port, 0) << p.output();
        std::vector<pid_t> kids = zt::children_of(p.pid());
        ASSERT_EQ(4u, kids.size());
        int want = *slice ? atoi(slice) : 100, fronts = 0, backs = 0;
        for (pid_t k : kids) {
            int s = zan::sched_slice_us(k);
            fronts += s == want && want != 0;
            backs += s == dflt;
        }
        EXPECT_EQ(fronts, want ? 2 : 0) << "--slice-us " << slice;
        EXPECT_EQ(backs, want ? 2 : 4) << "--slice-us " << slice;
        expect_answers(port, 2);
        expect_clean_stop(&p, kids);
    }
}

// --strict, the conforming floor: the same answers, a body framed by
// Content-Length, a request the server refuses (no Host) answered 404
// like any other not-hello, and a malformed one closing the connection.
TEST(BenchFloor, HopFloorStrictFramesAndValidates)
{
    zt::Proc p;
    int port = zt::start_server(&p, {zt::tool("zan-hopfloor"), "--pairs", "2", "--strict", "--port", "0"});
    ASSERT_GT(port, 0) << p.output();
    std::vector<pid_t> kids = zt::children_of(p.pid());
    expect_answers(port, 6);

    zt::HttpClient c(port);
    ASSERT_TRUE(c.ok());
    zt::HttpReply r;
    // The body is not taken for a second request: two answers, not three.
    ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 27\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: a\r\n\r\n" + std::string(kGet)));
    ASSERT_TRUE(c.next(&r));
    EXPECT_EQ(404, r.status);
    ASSERT_TRUE(c.next(&r));
    EXPECT_EQ(200, r.status);
    EXPECT_TRUE(c.quiet(20));
    ASSERT_TRUE(c.request("GET / HTTP/1.1\r\n\r\n", &r));  // HTTP/1.1 without Host
    EXPECT_EQ(404, r.status);
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: a\r\nBad Field\r\n\r\n"));
    EXPECT_TRUE(c.closed(3000)) << "a malformed request must close the connection";
    expect_clean_stop(&p, kids);
}

// The fronts share connections out evenly (a front accepts only while it
// holds no more than the other), as zan's NetWorkers do. Seen from /proc:
// every process inherits the same descriptors, a front adds one per
// connection, so the two largest counts are the fronts'.
TEST(BenchFloor, HopFloorSharesConnectionsEvenly)
{
    zt::Proc p;
    int port = zt::start_server(&p, {zt::tool("zan-hopfloor"), "--pairs", "2", "--port", "0"});
    ASSERT_GT(port, 0) << p.output();
    std::vector<pid_t> kids = zt::children_of(p.pid());
    ASSERT_EQ(4u, kids.size());
    // A child says it is ready, then closes the pipe it said it on: count
    // its descriptors once it sleeps in its loop.
    for (pid_t k : kids)
        ASSERT_TRUE(zt::wait_in_syscall(k, {SYS_epoll_wait, SYS_epoll_pwait}, 5000)) << "child " << k << " not idle";
    std::vector<int> before;
    for (pid_t k : kids)
        before.push_back(zt::open_fds(k));
    std::vector<zt::HttpClient> cs;
    for (int i = 0; i < 10; i++) {  // one at a time, each answered before the next
        cs.emplace_back(port);
        zt::HttpReply r;
        ASSERT_TRUE(cs.back().request(kGet, &r)) << "connection " << i;
        ASSERT_EQ(200, r.status);
    }
    std::vector<int> grew;
    for (size_t i = 0; i < kids.size(); i++)
        grew.push_back(zt::open_fds(kids[i]) - before[i]);
    std::sort(grew.begin(), grew.end());
    EXPECT_EQ(0, grew[0]) << "a back holds no connection";
    EXPECT_EQ(0, grew[1]) << "a back holds no connection";
    EXPECT_EQ(5, grew[2]) << "10 connections over two fronts";
    EXPECT_EQ(5, grew[3]) << "10 connections over two fronts";
    cs.clear();
    expect_clean_stop(&p, kids);
}

// A client that sends its requests and half-closes gets every answer,
// then the end of file (the floors closed at once and dropped them).
TEST(BenchFloor, HalfClosedClientsGetTheirAnswers)
{
    for (const char* tool : {"zan-baseline", "zan-hopfloor"}) {
        zt::Proc p;
        std::vector<std::string> argv{zt::tool(tool), "--port", "0"};
        if (std::string(tool) == "zan-baseline")
            argv.insert(argv.begin() + 1, "--http");
        int port = zt::start_server(&p, argv);
        ASSERT_GT(port, 0) << p.output();
        zt::HttpClient c(port);
        ASSERT_TRUE(c.ok());
        std::string burst;
        for (int i = 0; i < 200; i++)
            burst += kGet;
        ASSERT_TRUE(c.send(burst));
        ASSERT_EQ(0, ::shutdown(c.fd(), SHUT_WR));
        for (int i = 0; i < 200; i++) {
            zt::HttpReply r;
            ASSERT_TRUE(c.next(&r)) << tool << ": answer " << i << " of 200";
            EXPECT_EQ(200, r.status);
        }
        EXPECT_TRUE(c.closed(5000)) << tool << " did not close after the last answer";
    }
}

// Thousands of pipelined heads in one write (more replies than a ring
// holds) and a head larger than a ring record: the pair that got them
// goes on serving, and a stop still works (both once froze a pair).
TEST(BenchFloor, HopFloorSurvivesHugeBurstsAndHeads)
{
    zt::Proc p;
    int port = zt::start_server(&p, {zt::tool("zan-hopfloor"), "--pairs", "1", "--port", "0"});
    ASSERT_GT(port, 0) << p.output();
    std::vector<pid_t> kids = zt::children_of(p.pid());
    {
        zt::HttpClient c(port);
        ASSERT_TRUE(c.ok());
        std::string burst;
        for (int i = 0; i < 5000; i++)
            burst += "GET / HTTP/1.0\r\n\r\n";
        ASSERT_TRUE(c.send(burst));
        for (int i = 0; i < 5000; i++) {
            zt::HttpReply r;
            ASSERT_TRUE(c.next(&r)) << "answer " << i << " of 5000";
        }
    }
    {
        zt::HttpClient c(port);
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nX-Big: " + std::string(300000, 'a')));
        c.send("\r\n\r\n");  // may fail: the floor may have closed already
        EXPECT_TRUE(c.closed(5000)) << "a 300 kB head was not refused";
    }
    expect_answers(port, 2);
    expect_clean_stop(&p, kids);
}

// Out of descriptors, the front refuses the extra clients (accepts and
// closes them) instead of polling a listening socket that stays readable.
TEST(BenchFloor, HopFloorOutOfDescriptorsDoesNotSpin)
{
    zt::Proc p;
    std::string cmd = "ulimit -n 24 && exec " + zt::shell_quote(zt::tool("zan-hopfloor")) + " --port 0";
    int port = zt::start_server(&p, {"/bin/sh", "-c", cmd});
    ASSERT_GT(port, 0) << p.output();
    std::vector<zt::Sock> cs;
    for (int i = 0; i < 30; i++)
        cs.emplace_back(zt::connect_local(port));
    zt::HttpClient probe(port);  // answered or refused: either way the front saw it
    probe.send(kGet);
    zt::HttpReply r;
    probe.next(&r, false, 3000);
    std::vector<pid_t> kids = zt::children_of(p.pid());
    ASSERT_EQ(2u, kids.size());
    long before = zt::cpu_ms(kids[0]) + zt::cpu_ms(kids[1]);
    struct timespec ts = {0, 500 * 1000 * 1000};
    nanosleep(&ts, nullptr);  // a measuring window, not a synchronisation
    long used = zt::cpu_ms(kids[0]) + zt::cpu_ms(kids[1]) - before;
    EXPECT_LT(used, 150) << "the pair used " << used << " ms of CPU in 500 ms while idle";
}

}  // namespace
