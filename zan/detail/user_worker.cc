#include "zan/detail/user_worker.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/sys.h"

namespace zan {

// SIGTERM may arrive while the application's callback runs its own
// blocking loop, so it is caught by a handler (flag + self-pipe byte)
// rather than a signalfd that only the event loop would read.
static volatile sig_atomic_t g_term = 0;
// (The Master's death comes as the parent-death signal, whose handler
// leaves at once, even from a callback that never looks at stopping():
// see master.cc.)
static int g_wake_fd = -1;
static void on_term(int)
{
    g_term = 1;
    if (g_wake_fd >= 0) {
        int saved = errno;
        ssize_t n = ::write(g_wake_fd, "x", 1);
        (void)n;
        errno = saved;
    }
}

UserWorker::UserWorker(Runtime& rt) : rt_(rt) { rt_.user_worker = this; }

UserWorker::~UserWorker()
{
    g_wake_fd = -1;
    rt_.user_worker = nullptr;
}

bool UserWorker::stopping() const { return g_term != 0; }

int UserWorker::run()
{
    if (!make_pipe(true, &wake_rd_, &wake_wr_)) {
        log_errno(Level::error, errno, "pipe2() failed");
        return 1;
    }
    g_wake_fd = wake_wr_.get();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    ::sigaction(SIGTERM, &sa, nullptr);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ::sigprocmask(SIG_UNBLOCK, &term, nullptr);
    loop_.watch(wake_rd_.get(), kReadable, [this](uint32_t) {
        if (rt_.master_gone())
            rt_.exit_orphaned();
        rt_.stopping = true;
        loop_.stop();
    });
    loop_.watch_signal(SIGRTMIN, [](const signalfd_siginfo&) { Logger::instance().reopen(); });
    loop_.watch(rt_.ctl.fd(), kReadable, [this](uint32_t) {
        int r = rt_.ctl.receive([](const FrameHeader&, std::string_view) {});
        if (r < 0 && errno != EAGAIN)
            rt_.exit_orphaned();  // end of file: the Master is gone
    });
    rt_.ctl.push(kCtlReady, 0, 0, std::string_view());
    rt_.ctl.flush_wait(1000);
    const ProcessCallback& cb = rt_.user_procs[static_cast<size_t>(rt_.index)];
    size_t own = loop_.watch_count();
    if (cb && !g_term)
        cb(*rt_.server);
    // Timers or descriptors (a TcpClient, say) the callback left on the
    // loop keep the process alive until SIGTERM; a callback that left
    // nothing simply ends (and is forked again by the Master, with
    // back-off if it ends quickly).
    if (!g_term && (loop_.timer_count() > 0 || loop_.watch_count() > own))
        loop_.run();
    if (g_term && rt_.master_gone())
        rt_.task_queue.remove();
    return 0;
}

bool UserWorker::send_message(std::string_view data, int dst)
{
    if (dst < 0 || dst >= rt_.W()) {
        log(Level::warn, "send_message(): %d is not a Worker id", dst);
        return false;
    }
    Channel& out = rt_.inbox_wr[static_cast<size_t>(dst)];
    if (!out.push(kFramePipeMessage, 0, rt_.id, data) ||
        !out.flush_wait(rt_.cfg.max_wait_time * 1000)) {
        out.discard();
        return false;
    }
    return true;
}

}  // namespace zan
