#include "t/server_fixture.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "t/test_env.h"

namespace zt {

int start_server(Proc* p, const std::vector<std::string>& argv, int timeout_ms)
{
    if (!p->spawn(argv))
        return 0;
    std::string line;
    if (!p->wait_for("listening on ", timeout_ms, &line))
        return 0;
    size_t colon = line.rfind(':');
    if (colon == std::string::npos)
        return 0;
    return atoi(line.c_str() + colon + 1);
}

// Starts tool `name` on 127.0.0.1, port 0, plus `args`; returns the port.
static int start_on_loopback(Proc* p, const std::string& name, const std::vector<std::string>& args,
                             int timeout_ms)
{
    std::vector<std::string> argv{tool(name), "--host", "127.0.0.1", "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return start_server(p, argv, timeout_ms);
}

int start_echod(Proc* p, const std::vector<std::string>& args, int timeout_ms)
{
    return start_on_loopback(p, "zan-echod", args, timeout_ms);
}

int start_httpd(Proc* p, const std::vector<std::string>& args, int timeout_ms)
{
    return start_on_loopback(p, "zan-httpd", args, timeout_ms);
}

static ::testing::AssertionResult started(const char* what, Proc& p, int port)
{
    if (port > 0)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << " did not come up:\n" << p.output();
}

::testing::AssertionResult ServerTest::start_echod(const std::vector<std::string>& args)
{
    port_ = zt::start_echod(&server_, args);
    return started("zan-echod", server_, port_);
}

::testing::AssertionResult ServerTest::start_httpd(const std::vector<std::string>& args)
{
    port_ = zt::start_httpd(&server_, args);
    return started("zan-httpd", server_, port_);
}

bool ServerTest::freeze(pid_t pid)
{
    guard_.add(pid);
    // kill() returns before the signal has stopped the process.
    return ::kill(pid, SIGSTOP) == 0 && wait_stopped(pid, 5000);
}

JoinGuard::~JoinGuard()
{
    stop_ = true;
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
}

std::string sanitizer_report(const std::string& out)
{
    for (const char* m : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                          "ERROR: UndefinedBehaviorSanitizer", "WARNING: AddressSanitizer"}) {
        size_t pos = out.find(m);
        if (pos == std::string::npos)
            continue;
        size_t bol = out.rfind('\n', pos);
        bol = bol == std::string::npos ? 0 : bol + 1;
        return out.substr(bol, 2000);
    }
    return "";
}

std::string stop_and_check(Proc* p, int timeout_ms)
{
    if (!p->running())
        return "the server is not running";
    p->signal(SIGTERM);
    int st = p->wait_exit(timeout_ms);
    std::string out = p->output();
    std::string san = sanitizer_report(out);
    if (!san.empty())
        return "sanitizer report:\n" + san;
    if (st == -1)
        return "no exit within " + std::to_string(timeout_ms) + " ms of SIGTERM";
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return "exit status " + std::to_string(st) + "\n" + out.substr(out.size() > 4000 ? out.size() - 4000 : 0);
    return "";
}

}  // namespace zt
