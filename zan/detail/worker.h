// Worker: runs the application callbacks. Reads request frames from its
// channel with every NetWorker and messages from its inbox (task results,
// pipe messages), calls on_connect / on_receive / on_close / on_finish /
// on_pipe_message, and batches its replies: everything it sends during one
// loop iteration is copied into each NetWorker's ring at once. With max_request
// set it stops reading after that many messages, finishes what it holds,
// and exits; the Master has already forked its successor.
// Lives in a Worker process only. worker.cc holds the loop and the
// channels, worker_calls.cc the calls made from callbacks (send, task, ...).
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_WORKER_H
#define ZAN_DETAIL_WORKER_H

#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "zan/event_loop.h"
#include "zan/detail/process.h"

namespace zan {

class Worker {
public:
    explicit Worker(Runtime& rt);
    ~Worker();
    int run();

    EventLoop& loop() { return loop_; }
    // flags: kReplyEnd / kReplyClose and the sequence number
    // (zan/detail/process.h).
    bool send(SessionId s, std::string_view data, int flags = 0);
    // Same, for a reply in two parts (e.g. headers and body) without a copy.
    bool send2(SessionId s, std::string_view a, std::string_view b, int flags);
    // Queues a file region; the NetWorker sends it with sendfile(2).
    bool sendfile(SessionId s, const std::string& path, uint64_t offset, uint64_t length, int flags);
    bool close(SessionId s);
    // Streamed parts of s processed: the NetWorker may read more.
    bool acknowledge(SessionId s, size_t bytes);
    // Asks s's NetWorker for a drained frame once its output is at most
    // below bytes.
    bool watch_output(SessionId s, size_t below);
    // Reply bytes this Worker holds for the NetWorker of s, not yet taken
    // (shared by that NetWorker's sessions).
    size_t queued(SessionId s) const;
    bool bind(SessionId s, uint64_t uid);
    TaskId task(std::string_view data, int dst);
    bool taskwait(std::string_view data, int timeout_ms, std::string* result, int dst);
    bool send_message(std::string_view data, int dst_worker);
    void stop();  // finish the current pass, then exit

private:
    struct Pending {
        uint8_t kind;
        uint64_t id;
        int arg;
        std::string data;
    };
    void take_over_from_predecessor();
    void add_sleep_hooks();
    void start_reading();
    void on_channel(int k);
    void read_channels();  // every NetWorker channel, while we are the reader
    void mark_dirty(int k);
    void on_inbox();
    void on_ctl();
    void handle(int k, const FrameHeader& h, std::string_view data);
    void handle_inbox(const FrameHeader& h, std::string_view data);
    void flush_all();
    void publish_counts();
    void flush_inboxes();
    void mark_inbox_dirty(int dst);
    void count_request();
    void begin_stop(bool retire);
    void finish_and_exit();
    TaskId next_task_id();
    void bounce(const FrameHeader& h, std::string_view data);
    bool push_reply(SessionId s, uint8_t kind, int flags, std::string_view a, std::string_view b);
    int live_net(SessionId s) const;

    Runtime& rt_;
    EventLoop loop_;
    std::vector<Channel*> chans_;  // per NetWorker k: our end of pair (k, this worker)
    std::vector<bool> dirty_;      // channel k has replies queued
    std::vector<int> dirty_list_;
    std::vector<std::unordered_set<SessionId>> sessions_;  // per NetWorker: sessions we saw connect
    long requests_ = 0;
    int64_t unpublished_ = 0;
    std::vector<bool> inbox_dirty_;     // pipe messages queued per destination inbox
    std::vector<int> inbox_dirty_list_;  // requests not yet added to the shared counters
    uint64_t task_seq_ = 0;
    bool stopping_ = false;
    bool reading_ = false;  // our NetWorker channels are ours to read
    bool sleep_flagged_ = false;  // our sleeping word was set before this poll
    bool exiting_ = false;
    std::unordered_set<TaskId> abandoned_;   // taskwait timed out: drop late results
    std::deque<Pending> deferred_inbox_;     // inbox frames seen while in taskwait
    int outstanding_ = 0;                    // task() results still due to this process
    std::vector<Pending> bounced_;           // results for our successor (we are stopping)
    int exit_code_ = 0;
};

}  // namespace zan

#endif
