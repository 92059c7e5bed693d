// Worker, the calls the application makes from its callbacks: replies
// (send, send2, sendfile, close, bind), tasks (task, taskwait) and pipe
// messages to other Workers (send_message, queued per inbox). The loop,
// the channels and stopping are in worker.cc.
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/sys.h"
#include "zan/detail/task_worker.h"
#include "zan/detail/worker.h"

namespace zan {

bool Worker::push_reply(SessionId s, uint8_t kind, int flags, std::string_view a, std::string_view b)
{
    int k = session_net(s);
    if (k >= rt_.N()) {
        log(Level::warn, "send(): session %llu is not valid", static_cast<unsigned long long>(s));
        return false;
    }
    SessionSlot* ss = rt_.live_session(s);
    if (!ss)
        return false;  // closed (or the slot was reused): drop silently
    if (kind == kFrameReply &&
        static_cast<size_t>(atomic_load(&ss->out_bytes)) + a.size() + b.size() > rt_.cfg.buffer_output_size) {
        log(Level::warn, "send(): output buffer of session %llu is full (buffer_output_size %zu)",
            static_cast<unsigned long long>(s), rt_.cfg.buffer_output_size);
        return false;
    }
    Channel* ch = chans_[static_cast<size_t>(k)];
    if (!ch->valid() || !ch->push2(kind, s, flags, a, b))
        return false;
    if (!dirty_[static_cast<size_t>(k)]) {
        dirty_[static_cast<size_t>(k)] = true;
        dirty_list_.push_back(k);
    }
    return true;
}

bool Worker::send(SessionId s, std::string_view data, int flags)
{
    return push_reply(s, kFrameReply, flags, data, std::string_view());
}

bool Worker::send2(SessionId s, std::string_view a, std::string_view b, int flags)
{
    return push_reply(s, kFrameReply, flags, a, b);
}

bool Worker::sendfile(SessionId s, const std::string& path, uint64_t offset, uint64_t length,
                      int flags)
{
    SendfileHeader sh{offset, length};
    return push_reply(s, kFrameSendfile, flags,
                      std::string_view(reinterpret_cast<const char*>(&sh), sizeof(sh)), path);
}

// The channel to the NetWorker of s, a live session, or -1.
int Worker::live_net(SessionId s) const
{
    int k = session_net(s);
    if (k >= rt_.N() || !rt_.live_session(s) || !chans_[static_cast<size_t>(k)]->valid())
        return -1;
    return k;
}

bool Worker::acknowledge(SessionId s, size_t bytes)
{
    int k = live_net(s);
    if (k < 0)
        return false;
    Channel* ch = chans_[static_cast<size_t>(k)];
    // A control frame: it must pass even when replies fill the channel,
    // or a connection waiting for it and the Worker waiting for its data
    // would wait on each other.
    while (bytes > 0) {
        size_t n = bytes < (1u << 30) ? bytes : (1u << 30);
        ch->push_control(kFramePartAck, s, static_cast<int>(n));
        bytes -= n;
    }
    mark_dirty(k);
    return true;
}

bool Worker::watch_output(SessionId s, size_t below)
{
    int k = live_net(s);
    if (k < 0)
        return false;
    Channel* ch = chans_[static_cast<size_t>(k)];
    // Behind the replies queued before it: the NetWorker counts them.
    ch->push_control(kFrameWatchOutput, s, below < (1u << 30) ? static_cast<int>(below) : (1 << 30));
    mark_dirty(k);
    return true;
}

bool Worker::close(SessionId s)
{
    int k = session_net(s);
    if (k >= rt_.N() || !rt_.live_session(s))
        return false;
    Channel* ch = chans_[static_cast<size_t>(k)];
    if (!ch->valid() || !ch->push(kFrameCloseReq, s, 0, std::string_view()))
        return false;
    if (!dirty_[static_cast<size_t>(k)]) {
        dirty_[static_cast<size_t>(k)] = true;
        dirty_list_.push_back(k);
    }
    return true;
}

size_t Worker::queued(SessionId s) const
{
    int k = session_net(s);
    return k < rt_.N() ? chans_[static_cast<size_t>(k)]->pending() : 0;
}

bool Worker::bind(SessionId s, uint64_t uid)
{
    int k = session_net(s);
    SessionSlot* ss = rt_.live_session(s);
    if (!ss)
        return false;
    atomic_store(&ss->uid, uid);
    Channel* ch = chans_[static_cast<size_t>(k)];
    std::string_view v(reinterpret_cast<const char*>(&uid), sizeof(uid));
    if (!ch->push(kFrameBind, s, 0, v))
        return false;
    if (!dirty_[static_cast<size_t>(k)]) {
        dirty_[static_cast<size_t>(k)] = true;
        dirty_list_.push_back(k);
    }
    return true;
}

TaskId Worker::task(std::string_view data, int dst)
{
    if (rt_.T() == 0) {
        log(Level::warn, "task(): no TaskWorkers (task_worker_num is 0)");
        return 0;
    }
    if (dst < -1 || dst >= rt_.T()) {  // -1: any TaskWorker
        log(Level::warn, "task(): TaskWorker %d does not exist", dst);
        return 0;
    }
    TaskHeader h{};
    h.magic = kTaskMagic;
    h.src_worker = rt_.id;
    h.dst = dst;
    h.task_id = next_task_id();
    std::string err;
    MsgQueue::Result r = submit_task(rt_, h, data, &err);
    if (r != MsgQueue::kOk) {
        log(Level::warn, "task(): %s", err.c_str());
        return 0;
    }
    atomic_add(&rt_.stats->tasking_num, static_cast<int64_t>(1));
    atomic_add(&rt_.counters().tasks_queued, static_cast<int64_t>(1));
    outstanding_++;
    return h.task_id;
}

bool Worker::taskwait(std::string_view data, int timeout_ms, std::string* result, int dst)
{
    if (rt_.T() == 0 || dst < -1 || dst >= rt_.T()) {
        log(Level::warn, "taskwait(): no such TaskWorker");
        return false;
    }
    TaskHeader h{};
    h.magic = kTaskMagic;
    h.flags = kTaskWait;
    h.src_worker = rt_.id;
    h.dst = dst;
    h.task_id = next_task_id();
    std::string err;
    if (submit_task(rt_, h, data, &err) != MsgQueue::kOk) {
        log(Level::warn, "taskwait(): %s", err.c_str());
        return false;
    }
    atomic_add(&rt_.stats->tasking_num, static_cast<int64_t>(1));
    atomic_add(&rt_.counters().tasks_queued, static_cast<int64_t>(1));
    // Wait on the inbox alone; other inbox traffic is kept for later.
    Channel& in = rt_.inbox_rd[static_cast<size_t>(rt_.index)];
    long long deadline = monotonic_ms() + timeout_ms;
    bool got = false;
    while (!got) {
        long long left = deadline - monotonic_ms();
        if (left <= 0)
            break;
        struct pollfd p = {in.fd(), POLLIN, 0};
        int pr = ::poll(&p, 1, static_cast<int>(left));
        if (pr < 0 && errno != EINTR)
            break;
        in.receive([&](const FrameHeader& fh, std::string_view d) {
            if (fh.kind == kFrameTaskResult && fh.id == h.task_id) {
                result->assign(d.data(), d.size());
                got = true;
                atomic_add(&rt_.stats->tasking_num, static_cast<int64_t>(-1));
            } else {
                deferred_inbox_.push_back(Pending{fh.kind, fh.id, fh.arg, std::string(d)});
            }
        });
    }
    if (!got)
        abandoned_.insert(h.task_id);
    if (!deferred_inbox_.empty()) {
        loop_.defer([this] {
            while (!deferred_inbox_.empty()) {
                Pending p = std::move(deferred_inbox_.front());
                deferred_inbox_.pop_front();
                FrameHeader fh{};
                fh.kind = p.kind;
                fh.id = p.id;
                fh.arg = p.arg;
                handle_inbox(fh, p.data);
            }
        });
    }
    return got;
}

bool Worker::send_message(std::string_view data, int dst)
{
    if (dst < 0 || dst >= rt_.W()) {
        log(Level::warn, "send_message(): %d is not a Worker id", dst);
        return false;
    }
    // Queued, and sent before the next poll: a full inbox never blocks this
    // loop (its clients keep being served); up to pipe_buffer_size bytes
    // wait here for it.
    Channel& out = rt_.inbox_wr[static_cast<size_t>(dst)];
    if (!out.push(kFramePipeMessage, 0, rt_.id, data)) {
        log(Level::warn, "send_message(): %zu bytes already wait for the inbox of worker#%d",
            out.pending(), dst);
        return false;
    }
    mark_inbox_dirty(dst);
    return true;
}

void Worker::mark_inbox_dirty(int dst)
{
    if (!inbox_dirty_[static_cast<size_t>(dst)]) {
        inbox_dirty_[static_cast<size_t>(dst)] = true;
        inbox_dirty_list_.push_back(dst);
    }
}

// Sends the pipe messages queued for other inboxes. An inbox that is full
// is watched for room; its messages stay queued, in order.
void Worker::flush_inboxes()
{
    size_t keep = 0;
    for (int dst : inbox_dirty_list_) {
        Channel& out = rt_.inbox_wr[static_cast<size_t>(dst)];
        int r = out.flush();
        if (r == 0) {
            if (!loop_.watching(out.fd()))
                loop_.watch(out.fd(), kWritable, [this](uint32_t) {});  // wakes us: retried next pass
            inbox_dirty_list_[keep++] = dst;
            continue;
        }
        if (r < 0) {
            log_errno(Level::error, errno, "writing to the inbox of worker#%d: %zu bytes dropped", dst,
                      out.pending());
            out.discard();
        }
        if (loop_.watching(out.fd()))
            loop_.unwatch(out.fd());
        inbox_dirty_[static_cast<size_t>(dst)] = false;
    }
    inbox_dirty_list_.resize(keep);
}

}  // namespace zan
