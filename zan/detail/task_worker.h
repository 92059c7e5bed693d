// TaskWorker: takes tasks from the SysV message queue (preemptive: any
// idle TaskWorker takes the next task; addressed: mtype names the
// TaskWorker), runs on_task and sends the result to the originating
// Worker's inbox, where on_finish runs. Blocking style, no event loop:
// it waits in msgrcv(2) and checks its flags when a signal interrupts it.
// Lives in a TaskWorker process only.
//
// Wire format of a task on the queue (stable, documented in zan(7) so
// other programs may produce tasks): mtype 1 (preemptive) or 2 + index
// (addressed), then a TaskHeader and the payload. A payload that does
// not fit in one message (msgmax) travels in a file under task_tmpdir
// whose path is the payload, flag kTaskInFile; the TaskWorker unlinks it.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_TASK_WORKER_H
#define ZAN_DETAIL_TASK_WORKER_H

#include <stdint.h>

#include <string>
#include <string_view>
#include <vector>

#include "zan/detail/process.h"

namespace zan {

struct TaskHeader {
    uint32_t magic;  // kTaskMagic
    uint16_t flags;  // kTaskInFile, kTaskWait
    uint16_t reserved;
    int32_t src_worker;  // Worker id that gets the result (-1: none)
    int32_t dst;         // TaskWorker index, -1 any
    uint64_t task_id;
    uint64_t len;        // payload bytes (the file's size with kTaskInFile)
};
static_assert(sizeof(TaskHeader) == 32, "TaskHeader is a wire format");
constexpr uint32_t kTaskMagic = 0x5a414e54;  // "ZANT"
constexpr uint16_t kTaskInFile = 1;
constexpr uint16_t kTaskWait = 2;
constexpr long kTaskTypeShared = 1;

// Queues one task. Returns MsgQueue::kOk, kAgain (queue full), or another
// MsgQueue result; *err says why on failure.
MsgQueue::Result submit_task(Runtime& rt, const TaskHeader& h, std::string_view data,
                             std::string* err);
// The name every task file of this server starts with: task_tmpdir +
// "/zan-task-<master pid>-".
std::string task_file_prefix(const Runtime& rt);
// Takes one task apart; false for a bad packet (logged by the caller).
// A task in a file is read only from a regular file named file_prefix +
// letters and digits, whose size is the header's length, at most max_len.
bool decode_task(std::string_view msg, const std::string& file_prefix, size_t max_len,
                 TaskHeader* h, std::string* payload, std::string* err);

class TaskWorker {
public:
    explicit TaskWorker(Runtime& rt);
    int run();
    // Sends the result of the running task (callable once per task).
    bool finish(std::string_view result);
    bool send_message(std::string_view data, int dst_worker);

private:
    void run_task(const TaskHeader& h, std::string_view data);
    bool deliver(int worker, uint8_t kind, uint64_t id, int arg, std::string_view data);
    bool flush_one(int worker);
    void flush_results();

    static constexpr int kResultBatch = 32;  // results held at most while tasks keep coming

    Runtime& rt_;
    long handled_ = 0;
    bool in_task_ = false;
    bool finished_ = false;
    TaskHeader cur_{};
    std::vector<bool> dirty_;  // per Worker: results queued in its inbox channel
    std::vector<int> dirty_list_;
    int unflushed_ = 0;
};

}  // namespace zan

#endif
