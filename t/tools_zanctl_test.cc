// Integration tests of zanctl(1): it signals the Master named in a pid
// file, and only a zan Master. A pid file is a plain file anyone may leave
// behind, so a value that is no process id, or one whose process is not a
// zan Master (a stale file, a reused pid), must be refused without any
// signal; `stop` must see a Master that has exited even while it is a
// zombie. Servers run on 127.0.0.1 with --port 0 under zt::Proc, which
// stops them even when an assertion fails; the bystander processes the
// tests check are the test's own children, killed by pid at the end.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

namespace {

// Runs zanctl with `args`; returns its exit code, output (both streams) in *out.
int zanctl(const std::string& args, std::string* out)
{
    return zt::run_command(zt::shell_quote(zt::tool("zanctl")) + " " + args + " 2>&1", out, 30);
}

// A child of the test that sleeps until killed: the bystander.
struct Bystander {
    pid_t pid = -1;
    Bystander()
    {
        pid = ::fork();
        if (pid == 0) {
            for (;;)
                ::pause();
        }
    }
    ~Bystander()
    {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    bool untouched()
    {
        int st = 0;
        return ::waitpid(pid, &st, WNOHANG) == 0;
    }
};

TEST(Zanctl, RefusesAPidFileThatHoldsNoProcessId)
{
    zt::TempDir dir;
    Bystander b;
    ASSERT_GT(b.pid, 0);
    std::string file = dir.path + "/bad.pid";
    // 4294967295 once became kill(-1, ...): every process the caller may signal.
    for (const char* v : {"4294967295", "4294967296", "-1", "0", "1", " 123", "+123", "12x", ""}) {
        ASSERT_TRUE(zt::write_file(file, std::string(v) + "\n"));
        std::string out;
        EXPECT_EQ(1, zanctl("-p " + zt::shell_quote(file) + " reload", &out)) << "'" << v << "': " << out;
        EXPECT_NE(std::string::npos, out.find("does not hold a process id")) << "'" << v << "': " << out;
    }
    EXPECT_TRUE(b.untouched()) << "a bystander got a signal";
}

// A stale pid file whose pid now belongs to another program.
TEST(Zanctl, RefusesAProcessThatIsNotAZanMaster)
{
    zt::TempDir dir;
    Bystander b;
    ASSERT_GT(b.pid, 0);
    std::string file = dir.path + "/foreign.pid";
    ASSERT_TRUE(zt::write_file(file, std::to_string(b.pid) + "\n"));
    for (const char* cmd : {"status", "reload", "stop -w 1"}) {
        std::string out;
        EXPECT_EQ(1, zanctl("-p " + zt::shell_quote(file) + " " + cmd, &out)) << cmd << ": " << out;
        EXPECT_NE(std::string::npos, out.find("is not a zan Master")) << cmd << ": " << out;
    }
    EXPECT_TRUE(b.untouched()) << "the foreign process got a signal";
}

TEST(Zanctl, StatusReloadAndStopOfARealServer)
{
    zt::TempDir dir;
    std::string file = dir.path + "/echod.pid";
    zt::Proc server;
    int port = zt::start_echod(&server, {"--worker-num", "1", "--net-worker-num", "1", "--pid-file", file});
    ASSERT_GT(port, 0) << server.output();
    std::string q = "-p " + zt::shell_quote(file);
    std::string out;
    ASSERT_EQ(0, zanctl(q + " status", &out)) << out;
    EXPECT_NE(std::string::npos, out.find("zan-master")) << out;
    EXPECT_NE(std::string::npos, out.find("zan-worker-0")) << out;
    EXPECT_EQ(0, zanctl(q + " reload", &out)) << out;
    EXPECT_EQ(0, zanctl(q + " stop -w 10", &out)) << out;
    EXPECT_NE(-1, server.wait_exit(5000)) << "zanctl said stopped, but the server runs";
}

// The Master's parent does not reap it (a shell that went on to other
// work): once it has exited it is a zombie, and that is "stopped".
TEST(Zanctl, StopSeesAnExitedMasterThatIsAZombie)
{
    zt::TempDir dir;
    std::string file = dir.path + "/echod.pid";
    zt::Proc sh;
    std::string cmd = zt::shell_quote(zt::tool("zan-echod")) +
                      " --host 127.0.0.1 --port 0 --worker-num 1 --net-worker-num 1 --pid-file " +
                      zt::shell_quote(file) + " & exec sleep 60";
    int port = zt::start_server(&sh, {"/bin/sh", "-c", cmd});
    ASSERT_GT(port, 0) << sh.output();
    std::string out;
    EXPECT_EQ(0, zanctl("-p " + zt::shell_quote(file) + " stop -w 10", &out)) << out;
}

}  // namespace
