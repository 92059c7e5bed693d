// MsgQueue: a SysV message queue routed by mtype, shared across fork.
// Every test checks that it leaves no queue behind in /proc/sysvipc/msg.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "t/fork_helpers.h"
#include "t/proc_helpers.h"
#include "t/test_env.h"
#include "zan/fd.h"
#include "zan/detail/msg_queue.h"
#include "zan/sys.h"

namespace {

using zt::Child;

// Declared first, so it runs last: every queue the test made must be
// gone by then. Other programs on the machine make and remove queues at
// any time, so it looks only at queues it knows to be the test's: those
// watch()ed (the fixture's q_), and new ones this process was the last to
// send to or receive from (/proc/sysvipc/msg lspid, lrpid). The tests
// that make other queues check those themselves.
class NoQueueLeft {
public:
    NoQueueLeft() : before_(zt::sysv_queues()) {}
    void watch(int id) { watched_.insert(id); }
    ~NoQueueLeft()
    {
        std::set<int> ours = watched_;
        for (int id : zt::sysv_queues_used_by({::getpid()}))
            if (before_.count(id) == 0)
                ours.insert(id);
        std::set<int> now = zt::sysv_queues();
        for (int id : ours)
            if (now.count(id) != 0)
                ADD_FAILURE() << "message queue " << id << " left behind";
    }

private:
    std::set<int> before_;
    std::set<int> watched_;
};

bool queue_exists(int id) { return zt::sysv_queues().count(id) != 0; }

std::string read_proc(pid_t pid, const char* what)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", static_cast<int>(pid), what);
    zan::Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    char buf[512];
    ssize_t n = fd ? zan::read_some(fd.get(), buf, sizeof(buf) - 1) : -1;
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Waits until `pid` sleeps inside msgrcv(2). The kernel offers no event for
// that, so this polls /proc/pid/wchan ("do_msgrcv"), or the state letter in
// /proc/pid/stat where wchan is hidden, every 100 us.
bool wait_in_msgrcv(pid_t pid, int timeout_ms)
{
    long long deadline = zan::monotonic_ms() + zt::scaled(timeout_ms);
    for (;;) {
        std::string wchan = read_proc(pid, "wchan");
        if (wchan.find("msgrcv") != std::string::npos)
            return true;
        if (wchan.empty() || wchan == "0") {
            std::string stat = read_proc(pid, "stat");
            size_t rp = stat.rfind(')');
            if (rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'S')
                return true;
        }
        if (zan::monotonic_ms() >= deadline)
            return false;
        struct timespec ts = {0, 100000};
        ::nanosleep(&ts, nullptr);
    }
}

volatile sig_atomic_t g_signalled = 0;
void on_signal(int) { g_signalled = 1; }

using Q = zan::MsgQueue;

// A fresh queue q_ for each test, which must leave no queue behind.
class MsgQueue : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_TRUE(q_.create()) << strerror(errno);
        guard_.watch(q_.id());
    }

    // Runs body(ready) in *child; the body opens `ready` right before it
    // blocks in msgrcv(2). Returns once the child sleeps there.
    ::testing::AssertionResult start_blocked(Child* child, const std::function<int(zt::Gate&)>& body)
    {
        zt::Gate ready;
        if (!child->start([&] { return body(ready); }))
            return ::testing::AssertionFailure() << "fork failed";
        if (!ready.wait(5000))
            return ::testing::AssertionFailure() << "child exited: " << child->wait(0);
        if (!wait_in_msgrcv(child->pid(), 5000))
            return ::testing::AssertionFailure() << "the child is not in msgrcv(2)";
        return ::testing::AssertionSuccess();
    }

    NoQueueLeft guard_;  // first: checks after q_ is gone
    Q q_;
};

}  // namespace

TEST_F(MsgQueue, CreateAndRemove)
{
    Q q;  // a queue of its own: the fixture's q_ is created already
    EXPECT_FALSE(q.valid());
    ASSERT_TRUE(q.create()) << strerror(errno);
    EXPECT_TRUE(q.valid());
    EXPECT_GE(q.id(), 0);
    EXPECT_EQ(q.creator(), ::getpid());
    EXPECT_TRUE(queue_exists(q.id()));
    EXPECT_FALSE(q.create());
    EXPECT_EQ(errno, EBUSY);
    EXPECT_EQ(q.queued_messages(), 0u);
    EXPECT_EQ(q.queued_bytes(), 0u);
    int id = q.id();
    EXPECT_TRUE(q.remove());
    EXPECT_FALSE(q.valid());
    EXPECT_FALSE(queue_exists(id));
    EXPECT_TRUE(q.remove());  // idempotent
    EXPECT_EQ(q.send(1, "x", 1, false), Q::kRemoved);
    EXPECT_EQ(q.recv(0, nullptr, nullptr, false), Q::kRemoved);
}

TEST_F(MsgQueue, DestructorRemovesInCreator)
{
    int id;
    {
        Q q;
        ASSERT_TRUE(q.create());
        id = q.id();
        Q moved(std::move(q));  // ownership moves; q's destructor does nothing
        EXPECT_FALSE(q.valid());
        EXPECT_EQ(moved.id(), id);
        Q assigned;
        assigned = std::move(moved);
        EXPECT_TRUE(queue_exists(id));
    }
    EXPECT_FALSE(queue_exists(id));
}

TEST_F(MsgQueue, SendRecvByType)
{
    ASSERT_EQ(q_.send(3, "three", 5, false), Q::kOk);
    ASSERT_EQ(q_.send(1, "one", 3, false), Q::kOk);
    ASSERT_EQ(q_.send(2, "two", 3, false), Q::kOk);
    ASSERT_EQ(q_.send(2, "", 0, false), Q::kOk);  // empty payloads are fine
    EXPECT_EQ(q_.queued_messages(), 4u);
    EXPECT_EQ(q_.queued_bytes(), 11u);

    std::string out = "stale";
    long type = 0;
    ASSERT_EQ(q_.recv(2, &out, &type, false), Q::kOk);  // first of type 2
    EXPECT_EQ(out, "two");
    EXPECT_EQ(type, 2);
    ASSERT_EQ(q_.recv(-2, &out, &type, false), Q::kOk);  // lowest type <= 2
    EXPECT_EQ(out, "one");
    EXPECT_EQ(type, 1);
    ASSERT_EQ(q_.recv(0, &out, &type, false), Q::kOk);  // oldest of any type
    EXPECT_EQ(out, "three");
    EXPECT_EQ(type, 3);
    EXPECT_EQ(q_.recv(3, &out, &type, false), Q::kAgain);  // none of type 3 left
    ASSERT_EQ(q_.recv(0, nullptr, nullptr, false), Q::kOk);  // discard the empty one
    EXPECT_EQ(q_.queued_messages(), 0u);

    errno = 0;
    EXPECT_EQ(q_.send(0, "x", 1, false), Q::kError);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(q_.send(-4, "x", 1, false), Q::kError);
    EXPECT_EQ(q_.send(1, nullptr, 1, false), Q::kError);
}

TEST_F(MsgQueue, NonBlockingRecvOnEmptyIsAgain)
{
    std::string out = "kept";
    long type = 99;
    EXPECT_EQ(q_.recv(0, &out, &type, false), Q::kAgain);
    EXPECT_EQ(out, "kept");  // untouched on failure
    EXPECT_EQ(type, 99);
    ASSERT_EQ(q_.send(5, "five", 4, false), Q::kOk);
    EXPECT_EQ(q_.recv(4, &out, &type, false), Q::kAgain);
    EXPECT_EQ(q_.recv(-4, &out, &type, false), Q::kAgain);
    EXPECT_EQ(q_.recv(-5, &out, &type, false), Q::kOk);
    EXPECT_EQ(out, "five");
}

TEST_F(MsgQueue, FillUntilAgain)
{
    ASSERT_TRUE(q_.set_max_queue_bytes(4096)) << strerror(errno);
    EXPECT_EQ(q_.max_queue_bytes(), 4096u);
    std::string msg(1000, 'm');
    size_t sent = 0;
    Q::Result r;
    while ((r = q_.send(1, msg.data(), msg.size(), false)) == Q::kOk && sent < 100)
        sent++;
    EXPECT_EQ(r, Q::kAgain);
    EXPECT_EQ(sent, 4u);
    EXPECT_EQ(q_.queued_messages(), 4u);
    EXPECT_EQ(q_.queued_bytes(), 4000u);
    std::string out;
    ASSERT_EQ(q_.recv(0, &out, nullptr, false), Q::kOk);
    EXPECT_EQ(out, msg);
    EXPECT_EQ(q_.send(1, msg.data(), msg.size(), false), Q::kOk);  // room again
    EXPECT_EQ(q_.send(1, msg.data(), msg.size(), false), Q::kAgain);
}

TEST_F(MsgQueue, TooBig)
{
    size_t max = Q::max_message_size();
    FILE* f = ::fopen("/proc/sys/kernel/msgmax", "r");
    if (f != nullptr) {
        size_t proc = 0;
        EXPECT_EQ(::fscanf(f, "%zu", &proc), 1);
        ::fclose(f);
        EXPECT_EQ(max, proc);
    }
    std::string big(max + 1, 'b');
    EXPECT_EQ(q_.send(1, big.data(), big.size(), false), Q::kTooBig);
    EXPECT_EQ(q_.send(1, big.data(), big.size(), true), Q::kTooBig);  // never blocks
    EXPECT_EQ(q_.queued_messages(), 0u);
    if (q_.max_queue_bytes() < max)
        GTEST_SKIP() << "msg_qbytes below msgmax: a full-size message never fits";
    for (size_t i = 0; i < max; i++)
        big[i] = static_cast<char>(i * 7);
    ASSERT_EQ(q_.send(9, big.data(), max, false), Q::kOk);
    std::string out;
    ASSERT_EQ(q_.recv(9, &out, nullptr, false), Q::kOk);
    EXPECT_EQ(out.size(), max);
    EXPECT_EQ(memcmp(out.data(), big.data(), max), 0);
}

TEST_F(MsgQueue, RecvAcrossFork)
{
    Child child;
    ASSERT_TRUE(start_blocked(&child, [&](zt::Gate& ready) {
        ready.open();
        std::string out;
        long type = 0;
        if (q_.recv(7, &out, &type, true) != Q::kOk)  // blocks in msgrcv
            return 1;
        if (type != 7 || out != "for seven")
            return 2;
        std::string reply = "got " + out;
        return q_.send(9, reply.data(), reply.size(), true) == Q::kOk ? 0 : 3;
    }));
    ASSERT_EQ(q_.send(5, "for five", 8, true), Q::kOk);  // not for the child
    ASSERT_EQ(q_.send(7, "for seven", 9, true), Q::kOk);
    ASSERT_EQ(child.wait(5000), 0);
    std::string out;
    long type = 0;
    ASSERT_EQ(q_.recv(0, &out, &type, false), Q::kOk);
    EXPECT_EQ(type, 5);
    EXPECT_EQ(out, "for five");
    ASSERT_EQ(q_.recv(0, &out, &type, false), Q::kOk);
    EXPECT_EQ(type, 9);
    EXPECT_EQ(out, "got for seven");
}

TEST_F(MsgQueue, RemovedWhileBlocked)
{
    Child child;
    ASSERT_TRUE(start_blocked(&child, [&](zt::Gate& ready) {
        ready.open();
        std::string out;
        if (q_.recv(0, &out, nullptr, true) != Q::kRemoved)  // EIDRM
            return 1;
        if (q_.valid())
            return 2;
        return q_.send(1, "x", 1, true) == Q::kRemoved ? 0 : 3;
    }));
    ASSERT_TRUE(q_.remove());
    EXPECT_EQ(child.wait(5000), 0);
}

TEST_F(MsgQueue, AnyProcessMayRemove)
{
    int id = q_.id();
    Child child;
    ASSERT_TRUE(child.start([&] {
        {
            Q mine(std::move(q_));  // not the creator: destruction keeps the queue
        }
        if (!queue_exists(id))
            return 1;
        Q again;
        again = Q();  // harmless
        return 0;
    }));
    ASSERT_EQ(child.wait(5000), 0);
    EXPECT_TRUE(queue_exists(id));
    EXPECT_EQ(q_.send(1, "x", 1, false), Q::kOk);

    Child remover;
    ASSERT_TRUE(remover.start([&] { return q_.remove() && !q_.valid() ? 0 : 1; }));
    ASSERT_EQ(remover.wait(5000), 0);
    EXPECT_FALSE(queue_exists(id));
    EXPECT_TRUE(q_.valid());  // the parent has not noticed yet
    EXPECT_EQ(q_.recv(0, nullptr, nullptr, false), Q::kRemoved);
    EXPECT_FALSE(q_.valid());
    EXPECT_TRUE(q_.remove());  // and its destructor has nothing left to do
}

TEST_F(MsgQueue, InterruptedWithoutRetry)
{
    Child child;
    ASSERT_TRUE(start_blocked(&child, [&](zt::Gate& ready) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART (msgrcv ignores it anyway)
        if (::sigaction(SIGUSR1, &sa, nullptr) < 0)
            return 1;
        ready.open();
        Q::Result r = q_.recv(0, nullptr, nullptr, true, false);
        if (r != Q::kInterrupted)
            return 10 + static_cast<int>(r);
        if (!g_signalled || !q_.valid())
            return 2;
        return 0;
    }));
    // Should the signal still beat msgrcv(2) (a hidden wchan), the handler
    // runs outside it and the child keeps waiting: signal again.
    int rc = -1;
    for (int i = 0; i < 100 && rc < 0; i++) {
        ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
        rc = child.wait(50);
    }
    EXPECT_EQ(rc, 0);
}
