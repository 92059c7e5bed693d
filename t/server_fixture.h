// Starting zan-echod, zan-httpd or another tool on loopback and waiting
// for its "listening on" line; stopping it and checking it stopped
// cleanly; ServerTest, the fixture of the integration tests.
#ifndef ZAN_T_SERVER_FIXTURE_H
#define ZAN_T_SERVER_FIXTURE_H

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "t/net_helpers.h"
#include "t/proc_helpers.h"

namespace zt {

// Starts `tool` with "--port 0" semantics handled by the tool printing
// "listening on H:P"; returns the port, or 0 on failure.
int start_server(Proc* p, const std::vector<std::string>& argv, int timeout_ms = 10000);
// Starts build_dir()/tools/zan-echod on 127.0.0.1 with --port 0 plus
// `args`; returns the port, or 0 on failure.
int start_echod(Proc* p, const std::vector<std::string>& args, int timeout_ms = 10000);
// The same for build_dir()/tools/zan-httpd.
int start_httpd(Proc* p, const std::vector<std::string>& args = {}, int timeout_ms = 10000);

// Stops a server gracefully: SIGTERM, then waits up to timeout_ms for it
// to exit. Returns "" when it exited with status 0 and its output holds no
// sanitizer report (ASan, LSan, UBSan, from the Master or any child);
// otherwise a description of what went wrong.
std::string stop_and_check(Proc* p, int timeout_ms = 10000);
// The first sanitizer report in `out` (a few lines), or "".
std::string sanitizer_report(const std::string& out);

// Sets `stop` and joins every thread still joinable at scope exit, so an
// assertion that returns early never leaves a client thread running (nor
// destroys a joinable std::thread). Declare it after both.
class JoinGuard {
public:
    JoinGuard(std::atomic<bool>& stop, std::vector<std::thread>& threads) : stop_(stop), threads_(threads) {}
    ~JoinGuard();
    JoinGuard(const JoinGuard&) = delete;
    JoinGuard& operator=(const JoinGuard&) = delete;

private:
    std::atomic<bool>& stop_;
    std::vector<std::thread>& threads_;
};

// Fixture of the integration tests: one zan-echod or zan-httpd per test,
// e.g. `using ServerBasic = zt::ServerTest;` then TEST_F(ServerBasic, ...).
// A test's locals (client sockets) go before the fixture's members, so the
// server is stopped after its clients have closed; then queues_ removes
// any SysV queue the test capture()d. All of it also when a test fails.
class ServerTest : public ::testing::Test {
protected:
    // Starts build_dir()/tools/zan-echod (zan-httpd) on 127.0.0.1 with
    // --port 0 plus `args`; sets port_. The failure shows the output.
    ::testing::AssertionResult start_echod(const std::vector<std::string>& args);
    ::testing::AssertionResult start_httpd(const std::vector<std::string>& args = {});
    // A new connection to the server (check ok()).
    Sock connect(int timeout_ms = 3000) const { return Sock(connect_local(port_, timeout_ms)); }
    // zt::find_by_name() and zt::wait_for_name() below the Master.
    pid_t find_by_name(const std::string& name) const { return zt::find_by_name(server_.pid(), name); }
    pid_t wait_for_name(const std::string& name, pid_t not_pid, int timeout_ms = 5000) const
    {
        return zt::wait_for_name(server_.pid(), name, not_pid, timeout_ms);
    }
    // SIGSTOPs pid and waits until it is stopped; guard_ SIGKILLs it at
    // the end should it still be there.
    bool freeze(pid_t pid);
    // zt::stop_and_check() of the server: "" when it stopped cleanly.
    std::string stop_and_check(int timeout_ms = 10000) { return zt::stop_and_check(&server_, timeout_ms); }

    QueueGuard queues_;  // runs last: after the server has stopped
    Proc server_;
    PidGuard guard_;  // runs first: a frozen Worker would hold up the stop
    int port_ = 0;
};

}  // namespace zt

#endif
