#include "zan/detail/task_worker.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/sys.h"

namespace zan {

MsgQueue::Result submit_task(Runtime& rt, const TaskHeader& h_in, std::string_view data,
                             std::string* err)
{
    TaskHeader h = h_in;
    if (data.size() > rt.cfg.task_max_length) {
        *err = "payload of " + std::to_string(data.size()) + " bytes is over task_max_length";
        return MsgQueue::kTooBig;
    }
    long mtype = (rt.cfg.task_ipc_mode == 2 || h.dst >= 0)
                     ? 2 + (h.dst >= 0 ? h.dst : static_cast<int>(h.task_id % static_cast<uint64_t>(rt.T())))
                     : kTaskTypeShared;
    if (rt.cfg.task_ipc_mode == 3 && h.dst >= 0) {
        *err = "a destination TaskWorker needs task_ipc_mode 2 (addressed)";
        return MsgQueue::kError;
    }
    std::string msg;
    h.len = data.size();
    if (sizeof(h) + data.size() <= MsgQueue::max_message_size()) {
        msg.reserve(sizeof(h) + data.size());
        msg.append(reinterpret_cast<const char*>(&h), sizeof(h));
        msg.append(data.data(), data.size());
    } else {
        // Too big for one SysV message: hand it over in a file.
        std::string path = task_file_prefix(rt) + "XXXXXX";
        int fd = ::mkostemp(&path[0], O_CLOEXEC);
        if (fd < 0) {
            *err = "mkostemp(" + path + ") failed: " + strerror(errno);
            return MsgQueue::kError;
        }
        bool ok = write_all(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
        int saved = errno;
        ::close(fd);
        if (!ok) {
            ::unlink(path.c_str());
            *err = "writing task file failed: " + std::string(strerror(saved));
            return MsgQueue::kError;
        }
        h.flags |= kTaskInFile;
        msg.append(reinterpret_cast<const char*>(&h), sizeof(h));
        msg.append(path);
    }
    MsgQueue::Result r = rt.task_queue.send(mtype, msg.data(), msg.size(), false);
    if (r == MsgQueue::kAgain)
        *err = "task queue is full";
    else if (r == MsgQueue::kRemoved)
        *err = "task queue was removed";
    else if (r != MsgQueue::kOk)
        *err = std::string("msgsnd() failed: ") + strerror(errno);
    if (r != MsgQueue::kOk && (h.flags & kTaskInFile))
        ::unlink(msg.c_str() + sizeof(h));
    return r;
}

std::string task_file_prefix(const Runtime& rt)
{
    return rt.cfg.task_tmpdir + "/zan-task-" + std::to_string(rt.master_pid) + "-";
}

// A name submit_task() made: the prefix, then mkostemp()'s letters.
static bool is_task_file(const std::string& path, const std::string& prefix)
{
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0)
        return false;
    for (size_t i = prefix.size(); i < path.size(); i++)
        if (!isalnum(static_cast<unsigned char>(path[i])))
            return false;
    return true;
}

bool decode_task(std::string_view msg, const std::string& file_prefix, size_t max_len,
                 TaskHeader* h, std::string* payload, std::string* err)
{
    if (msg.size() < sizeof(TaskHeader)) {
        *err = "short packet";
        return false;
    }
    memcpy(h, msg.data(), sizeof(*h));
    if (h->magic != kTaskMagic) {
        *err = "bad magic";
        return false;
    }
    std::string_view body = msg.substr(sizeof(TaskHeader));
    if (!(h->flags & kTaskInFile)) {
        if (body.size() != h->len) {
            *err = "length mismatch";
            return false;
        }
        payload->assign(body.data(), body.size());
        return true;
    }
    std::string path(body);
    if (!is_task_file(path, file_prefix)) {
        *err = "bad task file name";
        return false;
    }
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        *err = "open(" + path + ") failed: " + strerror(errno);
        return false;
    }
    ::unlink(path.c_str());
    struct stat st;
    if (::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode) || h->len > max_len ||
        static_cast<uint64_t>(st.st_size) != h->len) {
        *err = "task file does not match its header";
        return false;
    }
    payload->resize(h->len);
    ssize_t n = read_full(fd.get(), &(*payload)[0], h->len);
    if (n != static_cast<ssize_t>(h->len)) {
        *err = "short task file";
        return false;
    }
    return true;
}

// Flags set by signal handlers; the msgrcv loop reads them when EINTR
// wakes it. One TaskWorker per process, so file-scope is per process.
// (The Master's death comes as the parent-death signal, whose handler
// leaves at once: see master.cc.)
static volatile sig_atomic_t g_term = 0;
static volatile sig_atomic_t g_reopen = 0;
static void on_term(int)
{
    g_term = 1;
    // A SIGTERM that lands after the loop looked at g_term and before
    // msgrcv() blocks would be missed until the next task: SIGALRM, a
    // second from now, interrupts that msgrcv() too.
    ::alarm(1);
}
static void on_reopen(int) { g_reopen = 1; }
static void on_alarm(int) {}

// Handlers instead of a signalfd: msgrcv() blocks, and only EINTR wakes
// it. SA_RESTART spares on_task's own system calls an EINTR; msgrcv() is
// never restarted after a handler, whatever the flag (signal(7)).
static void catch_signals()
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_term;
    ::sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = on_reopen;
    ::sigaction(SIGRTMIN, &sa, nullptr);
    sa.sa_handler = on_alarm;
    ::sigaction(SIGALRM, &sa, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

TaskWorker::TaskWorker(Runtime& rt) : rt_(rt), dirty_(static_cast<size_t>(rt.W()), false)
{
    rt_.task_worker = this;
}

int TaskWorker::run()
{
    catch_signals();

    if (rt_.cb.on_worker_start)
        rt_.cb.on_worker_start(*rt_.server, rt_.id);
    rt_.ctl.push(kCtlReady, 0, 0, std::string_view());
    rt_.ctl.flush_wait(1000);

    long mtype = rt_.cfg.task_ipc_mode == 2 ? 2 + rt_.index : kTaskTypeShared;
    std::string msg, payload, err;
    const std::string file_prefix = task_file_prefix(rt_);
    int code = 0;
    while (!g_term) {
        if (g_reopen) {
            g_reopen = 0;
            Logger::instance().reopen();
        }
        long got_type = 0;
        // Results wait while more tasks are queued (they leave together, one
        // sendmmsg per Worker), but never across a blocking wait.
        MsgQueue::Result r = MsgQueue::kAgain;
        if (unflushed_ < kResultBatch)
            r = rt_.task_queue.recv(mtype, &msg, &got_type, false, false);
        if (r == MsgQueue::kAgain) {
            flush_results();
            r = rt_.task_queue.recv(mtype, &msg, &got_type, true, false);
        }
        if (r == MsgQueue::kInterrupted)
            continue;
        if (r == MsgQueue::kRemoved) {
            log(Level::info, "task queue removed: exiting");
            break;
        }
        if (r != MsgQueue::kOk) {
            log_errno(Level::error, errno, "msgrcv() on the task queue failed");
            code = 1;
            break;
        }
        TaskHeader h;
        if (!decode_task(msg, file_prefix, rt_.cfg.task_max_length, &h, &payload, &err)) {
            log(Level::warn, "bad task packet (%s): dropped", err.c_str());
            continue;
        }
        run_task(h, payload);
        if (rt_.cfg.task_max_request > 0 && ++handled_ >= rt_.cfg.task_max_request) {
            rt_.ctl.push(kCtlRetire, 0, 0, std::string_view());
            rt_.ctl.flush_wait(1000);
            break;
        }
    }
    if (g_term && rt_.master_gone()) {
        rt_.task_queue.remove();  // the Master died: leave nothing behind
        return 0;
    }
    flush_results();
    if (rt_.cb.on_worker_stop)
        rt_.cb.on_worker_stop(*rt_.server, rt_.id);
    return code;
}

void TaskWorker::run_task(const TaskHeader& h, std::string_view data)
{
    cur_ = h;
    atomic_store(&rt_.counters().task_running, static_cast<int64_t>(1));
    in_task_ = true;
    finished_ = false;
    std::optional<std::string> result;
    if (rt_.cb.on_task)
        result = rt_.cb.on_task(*rt_.server, h.task_id, h.src_worker, data);
    if (result && !finished_)
        finish(*result);
    in_task_ = false;
    atomic_add(&rt_.stats->task_count, static_cast<int64_t>(1));
    atomic_add(&rt_.procs[rt_.id].request_count, static_cast<int64_t>(1));
    atomic_add(&rt_.counters().requests, static_cast<int64_t>(1));
    atomic_store(&rt_.counters().task_running, static_cast<int64_t>(0));
    if (!finished_ && h.src_worker >= 0)  // no result: the task is done all the same
        atomic_add(&rt_.stats->tasking_num, static_cast<int64_t>(-1));
}

bool TaskWorker::deliver(int worker, uint8_t kind, uint64_t id, int arg, std::string_view data)
{
    Channel& out = rt_.inbox_wr[static_cast<size_t>(worker)];
    if (!out.push(kind, id, arg, data) && (!flush_one(worker) || !out.push(kind, id, arg, data))) {
        log(Level::warn, "could not deliver to worker#%d: dropped", worker);
        return false;
    }
    if (!dirty_[static_cast<size_t>(worker)]) {
        dirty_[static_cast<size_t>(worker)] = true;
        dirty_list_.push_back(worker);
    }
    unflushed_++;
    return true;
}

bool TaskWorker::flush_one(int worker)
{
    Channel& out = rt_.inbox_wr[static_cast<size_t>(worker)];
    if (out.flush_wait(rt_.cfg.max_wait_time * 1000))
        return true;
    log_errno(Level::warn, errno, "could not deliver to worker#%d: dropped", worker);
    out.discard();
    return false;
}

void TaskWorker::flush_results()
{
    for (int w : dirty_list_) {
        flush_one(w);
        dirty_[static_cast<size_t>(w)] = false;
    }
    dirty_list_.clear();
    unflushed_ = 0;
}

bool TaskWorker::finish(std::string_view result)
{
    if (!in_task_ || finished_) {
        log(Level::warn, "finish(): no task is running, or it already finished");
        return false;
    }
    finished_ = true;
    if (cur_.src_worker < 0 || cur_.src_worker >= rt_.W())
        return false;
    return deliver(cur_.src_worker, kFrameTaskResult, cur_.task_id, 0, result);
}

bool TaskWorker::send_message(std::string_view data, int dst)
{
    if (dst < 0 || dst >= rt_.W()) {
        log(Level::warn, "send_message(): %d is not a Worker id", dst);
        return false;
    }
    if (!deliver(dst, kFramePipeMessage, 0, rt_.id, data))
        return false;
    flush_results();
    return true;
}

}  // namespace zan
