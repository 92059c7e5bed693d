// Pipe messages between server processes (send_message()) of several
// MiB arrive whole, unchanged and in order, also when the fragments of
// two senders interleave in one inbox. The server is a TcpServer in a
// forked Master (t/forked_server.h).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "t/forked_server.h"
#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/test_env.h"
#include "zan/tcp_server.h"

namespace {

using zt::Sock;
using zt::report;
using zt::words;
using zt::word_num;
using zt::line_of;
using zt::pattern;
using zt::proc_state;
using zt::eventually;
using zt::Resume;
using zt::forked_server_config;
using zt::ForkedServer;

// What the Workers of the pipe-message test report: "pipe <me> from <src>
// seed <seed> len <n> ok|bad@<offset>" for each big message, and "tail
// <me> from <src> seed <seed> after-big <0|1>" for the small message sent
// right behind it.
void check_pipe_message(int rep, int me, int src, std::string_view data, std::set<unsigned>* seen)
{
    // "big <seed> <len>\n" + pattern(len, seed), or "tail <seed>".
    std::string head(data.substr(0, data.find('\n')));
    std::vector<std::string> w = words(head);
    if (w.size() == 2 && w[0] == "tail") {
        unsigned seed = static_cast<unsigned>(atol(w[1].c_str()));
        report(rep, "tail " + std::to_string(me) + " from " + std::to_string(src) + " seed " + w[1] +
                        " after-big " + (seen->count(seed) ? "1" : "0"));
        return;
    }
    if (w.size() != 3 || w[0] != "big" || head.size() == data.size()) {
        report(rep, "pipe " + std::to_string(me) + " from " + std::to_string(src) + " junk");
        return;
    }
    unsigned seed = static_cast<unsigned>(atol(w[1].c_str()));
    size_t len = static_cast<size_t>(atoll(w[2].c_str()));
    std::string_view body = data.substr(head.size() + 1);
    std::string want = pattern(len, seed);
    std::string verdict = "ok";
    if (body.size() != len) {
        verdict = "bad-length-" + std::to_string(body.size());
    } else if (body != want) {
        size_t i = 0;
        while (body[i] == want[i])
            i++;
        verdict = "bad@" + std::to_string(i);
    }
    seen->insert(seed);
    report(rep, "pipe " + std::to_string(me) + " from " + std::to_string(src) + " seed " + w[1] + " len " +
                    w[2] + " " + verdict);
}

std::string big_message(size_t len, unsigned seed)
{
    return "big " + std::to_string(seed) + " " + std::to_string(len) + "\n" + pattern(len, seed);
}

// Big pipe messages arrive intact. A Worker sends 5 MiB + 3 bytes
// to the other Worker with send_message(), then a short message: the big
// one arrives whole and unchanged, and before the short one. Then the
// fragments of two senders interleave in one inbox: a UserWorker's 3 MiB
// + 5 arrive between the fragments of Worker 0's 12 MiB + 1 (stopping
// the processes in turn makes it so), while Worker 1 sends 9 MiB + 1 to
// Worker 0; every message arrives intact.
TEST(ServerPipeMessage, PipeMessagesOfSeveralMegabytesArriveIntact)
{
    zan::ServerConfig cfg = forked_server_config(2);
    cfg.max_wait_time = 3;  // the UserWorker's send waits for room that long
    ForkedServer srv;
    ASSERT_TRUE(srv.start(cfg, [](zan::TcpServer& s, const ForkedServer::Ends& e) {
        int rep = e.report, trg = e.trigger;
        // Per Worker process: the seeds of the big messages received.
        auto seen = std::make_shared<std::set<unsigned>>();
        s.on_pipe_message([rep, seen](zan::TcpServer& s, int src, std::string_view data) {
            check_pipe_message(rep, s.worker_id(), src, data, seen.get());
        });
        s.on_receive([](zan::TcpServer& s, zan::SessionId id, std::string_view msg) {
            std::vector<std::string> w = words(line_of(msg));
            if (w.size() == 1 && w[0] == "whoami") {
                s.send(id, "worker " + std::to_string(s.worker_id()) + "\n");
            } else if (w.size() == 3 && w[0] == "big") {  // big <len> <seed>
                unsigned seed = static_cast<unsigned>(atol(w[2].c_str()));
                int other = 1 - s.worker_id();
                bool a = s.send_message(big_message(static_cast<size_t>(atoll(w[1].c_str())), seed), other);
                bool b = s.send_message("tail " + std::to_string(seed), other);
                s.send(id, std::string("queued ") + (a ? "1" : "0") + " " + (b ? "1" : "0") + "\n");
            } else {
                s.send(id, msg);
            }
        });
        // The UserWorker sends 3 MiB + 5 (seed 23) to Worker 1 when the
        // test writes 'U' to the trigger pipe.
        s.add_process([rep, trg](zan::TcpServer& s) {
            while (!s.stopping()) {
                struct pollfd p = {trg, POLLIN, 0};
                if (::poll(&p, 1, 100) <= 0)
                    continue;
                char c;
                if (::read(trg, &c, 1) != 1 || c != 'U')
                    continue;
                bool ok = s.send_message(big_message(3 * 1024 * 1024 + 5, 23), 1);
                report(rep, std::string("user-sent ") + (ok ? "1" : "0"));
            }
        });
    }));
    // A connection homed on each Worker.
    std::map<int, Sock> on;
    for (int i = 0; i < 6 && on.size() < 2; i++) {
        Sock c = srv.connect();
        ASSERT_TRUE(c.ok());
        std::string r = zt::request(c.get(), "whoami");
        ASSERT_EQ(r.rfind("worker ", 0), 0u) << r;
        on[static_cast<int>(word_num(r, 1))] = std::move(c);
    }
    ASSERT_EQ(on.size(), 2u);

    const std::string five = std::to_string(5 * 1024 * 1024 + 3);
    EXPECT_EQ(zt::request(on[0].get(), "big " + five + " 11"), "queued 1 1");
    std::string l;
    ASSERT_TRUE(srv.take("pipe ", &l)) << "the 5 MiB message did not arrive\n" << srv.log();
    EXPECT_EQ(l, "pipe 1 from 0 seed 11 len " + five + " ok");
    ASSERT_TRUE(srv.take("tail ", &l)) << srv.log();
    EXPECT_EQ(l, "tail 1 from 0 seed 11 after-big 1") << "the short message overtook the big one";

    // Interleaved fragments. Worker 1 is stopped while Worker 0 sends it
    // 12 MiB + 1: the first records fill Worker 1's inbox and Worker 0
    // keeps the rest. Then Worker 0 is stopped and Worker 1 resumed, and
    // the UserWorker's 3 MiB + 5 come in whole between Worker 0's first
    // fragments and the rest, which follow once Worker 0 runs again.
    // Meanwhile Worker 1 sends 9 MiB + 1 to the stopped Worker 0 (its
    // clients are still answered).
    pid_t w0 = srv.child("zan-worker-0"), w1 = srv.child("zan-worker-1");
    ASSERT_GT(w0, 0);
    ASSERT_GT(w1, 0);
    ASSERT_EQ(::kill(w1, SIGSTOP), 0);
    Resume resume1(w1);
    ASSERT_TRUE(eventually([&] { return proc_state(w1) == 'T'; }, 2000));
    const std::string twelve = std::to_string(12 * 1024 * 1024 + 1);
    const std::string nine = std::to_string(9 * 1024 * 1024 + 1);
    // Worker 0 answers after it has written what fits into the inbox.
    EXPECT_EQ(zt::request(on[0].get(), "big " + twelve + " 21"), "queued 1 1");
    ASSERT_EQ(::kill(w0, SIGSTOP), 0);
    Resume resume0(w0);
    ASSERT_TRUE(eventually([&] { return proc_state(w0) == 'T'; }, 2000));
    resume1.now();
    ASSERT_TRUE(srv.trigger('U'));
    ASSERT_TRUE(srv.take("user-sent ", &l)) << srv.log();
    EXPECT_EQ(l, "user-sent 1");
    ASSERT_TRUE(srv.take("pipe ", &l)) << srv.reports() << srv.log();
    EXPECT_EQ(l, "pipe 1 from 3 seed 23 len " + std::to_string(3 * 1024 * 1024 + 5) + " ok");
    EXPECT_EQ(zt::request(on[1].get(), "big " + nine + " 22"), "queued 1 1");
    EXPECT_EQ(zt::request(on[1].get(), "still answering"), "still answering");
    resume0.now();
    std::set<std::string> got;
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(srv.take("pipe ", &l)) << "a big message did not arrive\n" << srv.reports() << srv.log();
        got.insert(l);
    }
    EXPECT_EQ(got, (std::set<std::string>{"pipe 1 from 0 seed 21 len " + twelve + " ok",
                                          "pipe 0 from 1 seed 22 len " + nine + " ok"}));
    std::set<std::string> tails;
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(srv.take("tail ", &l)) << srv.reports();
        tails.insert(l);
    }
    EXPECT_EQ(tails, (std::set<std::string>{"tail 1 from 0 seed 21 after-big 1",
                                            "tail 0 from 1 seed 22 after-big 1"}));
    EXPECT_EQ(srv.log().find("send_message()"), std::string::npos) << srv.log();
    int st = srv.stop(5000);
    EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << srv.log();
}

}  // namespace
