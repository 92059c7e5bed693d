#include "zan/detail/worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <memory>

#include "zan/log.h"
#include "zan/protocol.h"
#include "zan/sys.h"
#include "zan/detail/task_worker.h"

namespace zan {

Worker::Worker(Runtime& rt) : rt_(rt)
{
    rt_.worker = this;
    chans_.resize(static_cast<size_t>(rt_.N()), nullptr);
    dirty_.resize(chans_.size(), false);
    sessions_.resize(chans_.size());
    inbox_dirty_.resize(static_cast<size_t>(rt_.W()), false);
    for (Channel& out : rt_.inbox_wr)  // what send_message() may queue per inbox
        out.set_max_pending(rt_.cfg.pipe_buffer_size);
    for (int k = 0; k < rt_.N(); k++)
        chans_[static_cast<size_t>(k)] = &rt_.worker_end[static_cast<size_t>(k * rt_.W() + rt_.index)];
}

Worker::~Worker() { rt_.worker = nullptr; }

int Worker::run()
{
    // The NetWorkers write our eventfd when they publish requests while we
    // sleep, or when they free room we wait for.
    loop_.watch(rt_.wake_of(rt_.id), kReadable | kEdge, [this](uint32_t) {
        for (int k = 0; k < rt_.N(); k++)
            mark_dirty(k);
        read_channels();
    });
    take_over_from_predecessor();
    loop_.watch(rt_.ctl.fd(), kReadable, [this](uint32_t) { on_ctl(); });
    loop_.watch_signal(SIGTERM, [this](const signalfd_siginfo&) {
        if (rt_.master_gone())
            rt_.exit_orphaned();
        begin_stop(false);
    });
    loop_.watch_signal(SIGRTMIN, [this](const signalfd_siginfo&) {
        Logger::instance().reopen();
        if (rt_.hooks.reopen)
            rt_.hooks.reopen();
    });
    add_sleep_hooks();

    if (rt_.cb.on_worker_start)
        rt_.cb.on_worker_start(*rt_.server, rt_.id);
    rt_.ctl.push(kCtlReady, 0, 0, std::string_view());
    rt_.ctl.flush_wait(1000);
    if (rt_.hooks.loop_start)
        rt_.hooks.loop_start(loop_);
    loop_.run();
    finish_and_exit();
    return exit_code_;
}

// One process of an id reads its NetWorker channels at a time, so that
// the messages of a connection are never split between a predecessor and
// its successor (order, and the fragments of large messages). The
// successor takes over the moment the predecessor stops reading.
// While a predecessor with our id still runs (reload, recycling) it alone
// reads the inbox: the results of its tasks are due to it. It hands ours
// back when it exits.
void Worker::take_over_from_predecessor()
{
    int32_t* reader = &rt_.procs[rt_.id].reader;
    pid_t pred = rt_.predecessor;
    if (pred > 0 && atomic_load(reader) == pred && rt_.running(rt_.id, pred)) {
        auto timer = std::make_shared<EventLoop::TimerId>(0);
        *timer = loop_.run_every(2, [this, reader, pred, timer] {
            if (atomic_load(reader) == pred && rt_.running(rt_.id, pred))
                return;
            loop_.cancel(*timer);
            start_reading();
        });
    } else {
        start_reading();
    }
    int inbox = rt_.inbox_rd[static_cast<size_t>(rt_.index)].fd();
    if (rt_.running(rt_.id, rt_.predecessor)) {
        auto timer = std::make_shared<EventLoop::TimerId>(0);
        *timer = loop_.run_every(10, [this, inbox, timer] {
            if (rt_.running(rt_.id, rt_.predecessor))
                return;
            loop_.cancel(*timer);
            loop_.watch(inbox, kReadable, [this](uint32_t) { on_inbox(); });
        });
    } else {
        loop_.watch(inbox, kReadable, [this](uint32_t) { on_inbox(); });
    }
}

// Flush what this pass produced, then tell the NetWorkers we sleep (they
// write our eventfd only then) unless a ring already holds work.
void Worker::add_sleep_hooks()
{
    loop_.add_before_poll([this] {
        flush_all();
        // Only the reader of this id's channels may say it sleeps (a
        // predecessor that stopped reading must not clear the word of the
        // successor that reads now).
        if (!reading_)
            return;
        sleep_flagged_ = true;
        Channel::prepare_sleep(rt_.sleeping_word());
        for (Channel* ch : chans_) {
            if (ch->ready()) {
                Channel::end_sleep(rt_.sleeping_word());
                loop_.defer([this] { read_channels(); });
                break;
            }
        }
    });
    loop_.add_after_poll([this] {
        if (sleep_flagged_) {
            sleep_flagged_ = false;
            Channel::end_sleep(rt_.sleeping_word());
        }
    });
}

void Worker::start_reading()
{
    if (stopping_)
        return;
    reading_ = true;
    atomic_store(&rt_.procs[rt_.id].reader, static_cast<int32_t>(current_pid()));
    loop_.defer([this] { read_channels(); });  // what came before we read
}

void Worker::read_channels()
{
    for (int k = 0; k < rt_.N() && reading_; k++)
        on_channel(k);
}

void Worker::mark_dirty(int k)
{
    if (!dirty_[static_cast<size_t>(k)]) {
        dirty_[static_cast<size_t>(k)] = true;
        dirty_list_.push_back(k);
    }
}

void Worker::on_channel(int k)
{
    Channel* ch = chans_[static_cast<size_t>(k)];
    // Near max_request, one record at a time so that the Worker stops
    // reading at once (the frames of a record already read are handled);
    // otherwise a batch of records per call.
    for (int i = 0; i < 64 && !stopping_; i++) {
        long left = rt_.cfg.max_request > 0 ? rt_.cfg.max_request - requests_ : 1 << 30;
        int batch = left > 4096 ? 64 : 1;
        int r = ch->receive([this, k](const FrameHeader& h, std::string_view d) { handle(k, h, d); }, batch);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno != EAGAIN)
                log_errno(Level::error, errno, "reading channel from net#%d", k);
            break;
        }
        if (r < batch)
            break;  // drained
    }
}

void Worker::handle(int k, const FrameHeader& h, std::string_view data)
{
    SessionId s = h.id;
    switch (h.kind) {
    case kFrameConnect:
        sessions_[static_cast<size_t>(k)].insert(s);
        if (rt_.cb.on_connect)
            rt_.cb.on_connect(*rt_.server, s);
        break;
    case kFrameData: {
        // A message counts once: whole, or at its first part. The later
        // parts of one the application has seen are never discarded (it
        // learns of the end, or of the cut, from them).
        bool starts = !(h.arg & kDataPart) || (h.arg & kDataFirst);
        if (starts && rt_.cfg.discard_timeout_request && !rt_.live_session(s)) {
            log(Level::debug, "session %llu closed: its message is discarded",
                static_cast<unsigned long long>(s));
            break;
        }
        rt_.data_flags = h.arg;
        if (rt_.cb.on_receive)
            rt_.cb.on_receive(*rt_.server, s, data);
        rt_.data_flags = 0;  // TcpServer::message_info() outside on_receive
        if (starts)
            count_request();
        break;
    }
    case kFrameDrained:
        if (rt_.cb.on_drained)
            rt_.cb.on_drained(*rt_.server, s);
        break;
    case kFrameClose: {
        bool known = sessions_[static_cast<size_t>(k)].erase(s) > 0;
        if (known && rt_.cb.on_close)
            rt_.cb.on_close(*rt_.server, s);
        if (h.arg == 1) {  // the peer half-closed: tell the NetWorker we are done
            chans_[static_cast<size_t>(k)]->push(kFrameCloseAck, s, 0, std::string_view());
            if (!dirty_[static_cast<size_t>(k)]) {
                dirty_[static_cast<size_t>(k)] = true;
                dirty_list_.push_back(k);
            }
        }
        break;
    }
    default:
        log(Level::warn, "unexpected frame kind %d from net#%d", h.kind, k);
    }
}

void Worker::count_request()
{
    requests_++;
    unpublished_++;  // the shared counters are updated once per pass
    if (rt_.cfg.max_request > 0 && requests_ >= rt_.cfg.max_request && !stopping_)
        begin_stop(true);
}

void Worker::on_inbox()
{
    Channel& in = rt_.inbox_rd[static_cast<size_t>(rt_.index)];
    in.receive([this](const FrameHeader& h, std::string_view d) { handle_inbox(h, d); });
}

// Task ids carry the pid of the Worker process that made them, so that a
// result reaching another process of the same worker id (both read the
// inbox during a reload or recycling) is passed back to its owner.
TaskId Worker::next_task_id()
{
    uint64_t pid = static_cast<uint64_t>(current_pid()) & 0xffffff;
    uint64_t seq = ++task_seq_ & 0xffffff;
    return (static_cast<uint64_t>(rt_.id & 0xffff) << 48) | (pid << 24) | seq;
}

static pid_t task_owner(TaskId id) { return static_cast<pid_t>((id >> 24) & 0xffffff); }

// A task result for another process of our worker id. The predecessor
// (we are stopping) keeps it and puts it back into the inbox when it
// exits; otherwise (a successor that read the inbox in taskwait()) it goes
// back at once, but only for our predecessor while it runs and reads the
// inbox: a result for any other pid (a process gone, its pid now another
// program's, or a forged task id) would come back to us for ever.
void Worker::bounce(const FrameHeader& h, std::string_view data)
{
    if (stopping_) {
        bounced_.push_back(Pending{h.kind, h.id, h.arg, std::string(data)});
        return;
    }
    pid_t owner = task_owner(h.id);
    pid_t pred = rt_.predecessor;
    if (pred <= 0 || (pred & 0xffffff) != owner || !rt_.running(rt_.id, pred)) {
        log(Level::warn, "task result %llu: its Worker process %d is gone: dropped",
            static_cast<unsigned long long>(h.id), owner);
        atomic_add(&rt_.stats->tasking_num, static_cast<int64_t>(-1));  // it is finished
        return;
    }
    // Queued with our pipe messages and sent before the next poll (never
    // dropping what else waits there for the inbox).
    if (!rt_.inbox_wr[static_cast<size_t>(rt_.index)].push(h.kind, h.id, h.arg, data)) {
        log(Level::warn, "task result %llu: the queue for our inbox is full: dropped",
            static_cast<unsigned long long>(h.id));
        return;
    }
    mark_inbox_dirty(rt_.index);
}

void Worker::handle_inbox(const FrameHeader& h, std::string_view data)
{
    if (h.kind == kFrameTaskResult) {
        if (task_owner(h.id) != (current_pid() & 0xffffff)) {
            bounce(h, data);
            return;
        }
        atomic_add(&rt_.stats->tasking_num, static_cast<int64_t>(-1));  // the task is finished
        if (abandoned_.erase(h.id))
            return;  // its taskwait timed out long ago
        if (outstanding_ > 0)
            outstanding_--;
        if (rt_.cb.on_finish)
            rt_.cb.on_finish(*rt_.server, h.id, data);
        if (stopping_ && outstanding_ == 0)
            loop_.stop();  // every result we waited for is in
    } else if (h.kind == kFramePipeMessage) {
        if (rt_.cb.on_pipe_message)
            rt_.cb.on_pipe_message(*rt_.server, h.arg, data);
    }
}

void Worker::on_ctl()
{
    int r = rt_.ctl.receive([this](const FrameHeader& h, std::string_view) {
        if (h.kind == kCtlNetDied && h.arg >= 0 && h.arg < rt_.N()) {
            // Its clients are gone: on_close for each session we know of.
            auto& set = sessions_[static_cast<size_t>(h.arg)];
            std::vector<SessionId> gone(set.begin(), set.end());
            set.clear();
            for (SessionId s : gone)
                if (rt_.cb.on_close)
                    rt_.cb.on_close(*rt_.server, s);
        }
    });
    if (r < 0 && errno != EAGAIN) {
        // EOF on the control channel: the Master is gone.
        log(Level::warn, "master is gone: exiting");
        rt_.exit_orphaned();
    }
}

// Adds the requests handled since the last call to the shared counters:
// one atomic add per counter and pass instead of per request (the counters
// are read by other processes, and every add moves their cache line).
void Worker::publish_counts()
{
    if (unpublished_ == 0)
        return;
    atomic_add(&rt_.procs[rt_.id].handled, unpublished_);
    atomic_add(&rt_.procs[rt_.id].request_count, unpublished_);
    atomic_add(&rt_.stats->request_count, unpublished_);
    unpublished_ = 0;
}

void Worker::flush_all()
{
    publish_counts();  // before the replies leave: a client that has its answer sees it counted
    if (!inbox_dirty_list_.empty())
        flush_inboxes();
    for (int k : dirty_list_) {
        Channel* ch = chans_[static_cast<size_t>(k)];
        int r = ch->flush();
        if (r == 1) {
            dirty_[static_cast<size_t>(k)] = false;
        } else if (r == 0) {
            // Full: the NetWorker wakes us when it has made room.
        } else {
            // Not EAGAIN: what is queued cannot be sent. Drop it (once, not
            // on every pass) but keep the channel: closing it would leave
            // this Worker deaf to that NetWorker for good.
            log_errno(Level::error, errno, "writing replies to net#%d: %zu bytes dropped", k,
                      ch->pending());
            ch->discard();
            dirty_[static_cast<size_t>(k)] = false;
        }
    }
    size_t w = 0;
    for (int k : dirty_list_)
        if (dirty_[static_cast<size_t>(k)])
            dirty_list_[w++] = k;
    dirty_list_.resize(w);
}

void Worker::stop() { begin_stop(false); }

// Stop taking new messages: no more reads from the NetWorker channels.
// The frames of the current pass are still handled; the loop ends after it.
void Worker::begin_stop(bool retire)
{
    if (stopping_)
        return;
    stopping_ = true;
    rt_.stopping = true;
    reading_ = false;
    // Hand the channels over to our successor (if it waits for them).
    int32_t me = static_cast<int32_t>(current_pid());
    __atomic_compare_exchange_n(&rt_.procs[rt_.id].reader, &me, 0, false, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    if (retire) {
        rt_.ctl.push(kCtlRetire, 0, 0, std::string_view());
        rt_.ctl.flush_wait(1000);
    }
    // Decide after the current pass: its frames may still start tasks.
    loop_.defer([this] {
        bool clients = false;  // during a shutdown the NetWorkers are gone already
        for (int k = 0; k < rt_.N(); k++) {
            int id = rt_.first_id(Role::net_worker) + k;
            if (rt_.running(id, atomic_load(&rt_.procs[id].pid)))
                clients = true;
        }
        if (outstanding_ == 0 || !clients) {
            loop_.stop();
            return;
        }
        // Results of our tasks are still due: keep reading the inbox for
        // them (on_finish may still answer clients), at most max_wait_time.
        loop_.run_after(rt_.cfg.max_wait_time * 1000LL, [this] {
            log(Level::warn, "exiting with %d task results still due", outstanding_);
            loop_.stop();
        });
    });
}

void Worker::finish_and_exit()
{
    publish_counts();
    // Pipe messages still queued go out first (at most max_wait_time).
    long long until = monotonic_ms() + rt_.cfg.max_wait_time * 1000LL;
    for (int dst : inbox_dirty_list_) {
        Channel& out = rt_.inbox_wr[static_cast<size_t>(dst)];
        long long left = until - monotonic_ms();
        if (!out.flush_wait(left > 0 ? static_cast<int>(left) : 0))
            log(Level::warn, "exiting with %zu bytes of pipe messages for worker#%d unsent",
                out.pending(), dst);
    }
    inbox_dirty_list_.clear();
    // Everything replied so far must reach the NetWorkers.
    long long deadline = monotonic_ms() + rt_.cfg.max_wait_time * 1000LL;
    for (Channel* ch : chans_) {
        long long left = deadline - monotonic_ms();
        if (ch->valid() && ch->pending() && !ch->flush_wait(left > 0 ? static_cast<int>(left) : 0))
            log_errno(Level::warn, errno, "could not hand over all replies before exiting");
    }
    if (!bounced_.empty()) {
        // Results for our successor, read while we still owned the inbox.
        Channel& out = rt_.inbox_wr[static_cast<size_t>(rt_.index)];
        size_t lost = 0;
        for (const Pending& p : bounced_)
            lost += out.push(p.kind, p.id, p.arg, p.data) ? 0 : 1;
        if (lost)
            log(Level::warn, "%zu task results for our successor dropped: the inbox queue is full", lost);
        if (!out.flush_wait(1000))
            log(Level::warn, "could not hand %zu task results to our successor", bounced_.size());
    }
    if (rt_.cb.on_worker_stop)
        rt_.cb.on_worker_stop(*rt_.server, rt_.id);
}

}  // namespace zan
