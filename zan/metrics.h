// Metrics: a snapshot of every figure a running server keeps for
// monitoring, per process (role, id) and summed, the value
// TcpServer::metrics() returns. It is taken from the counters the
// processes share in memory, the task queue and /proc; once taken it is
// a plain value of the calling process, and to_prometheus() / to_json()
// render it. See zan_stats(3).
#ifndef ZAN_METRICS_H
#define ZAN_METRICS_H

#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace zan {

// The version of the library, as zan_build_info and zanctl stats report it.
constexpr const char* kZanVersion = "0.1.0";

// The request-duration histogram of ProcessMetrics: upper bounds of its
// buckets in microseconds (Prometheus "le"); a last bucket counts the
// requests above the largest bound.
constexpr int kDurationBuckets = 14;
constexpr int64_t kDurationBoundsUs[kDurationBuckets] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
    5000000};
// The statuses a NetWorker refuses input with itself (ProcessMetrics::refused).
constexpr int kRefusedStatuses = 7;
constexpr int kRefusedStatus[kRefusedStatuses] = {400, 408, 413, 414, 431, 501, 505};

// The figures of one child id (or of the Master, or the sum of a role).
struct ProcessMetrics {
    std::string role;    // "master", "worker", "task", "user", "net"
    int id = 0;          // index within the role
    pid_t pid = 0;       // current process, 0 when none runs
    char state = '-';    // /proc state letter (R, S, D, ...), '-' when none runs
    int64_t start_time = 0;     // time(2) the current process started
    double cpu_seconds = 0;     // user + system time of the current process
    int64_t rss_bytes = 0;      // resident set size of the current process
    int64_t accepted = 0, closed = 0;
    int64_t reading = 0, writing = 0, waiting = 0;  // open connections by state
    int64_t received = 0;       // NetWorker: messages received and dispatched
    int64_t requests = 0;       // Worker: messages handled
    int64_t bytes_in = 0, bytes_out = 0;
    int64_t responses[5] = {};  // replies by status class 1xx..5xx
    int64_t refused[kRefusedStatuses] = {};  // by kRefusedStatus
    int64_t tasks_queued = 0;   // Worker: tasks it submitted
    int64_t tasks_running = 0, tasks_done = 0, tasks_failed = 0;  // TaskWorker
    int64_t respawns = 0;       // forked again after an exit, any cause
    int64_t respawn_exit = 0, respawn_signal = 0, respawn_max_request = 0;
    int64_t duration[kDurationBuckets + 1] = {};  // per bucket, not cumulative
    int64_t duration_sum_us = 0;

    int64_t open() const { return accepted - closed; }
    int64_t duration_count() const;
    // Adds the counters of o (not pid, state, start_time).
    void add(const ProcessMetrics& o);
};

struct Metrics {
    // The Content-Type of to_prometheus() (text format 0.0.4).
    static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

    std::string version = kZanVersion;
    int64_t start_time = 0;     // time(2) the Master started
    int64_t last_reload = 0;    // time(2) of the last reload, 0 if none
    int64_t reloads = 0;
    int64_t task_queue_depth = -1;  // tasks waiting in the queue (msg_qnum), -1 without TaskWorkers
    int64_t task_queue_bytes = -1;  // bytes waiting in it (msg_cbytes)
    std::vector<ProcessMetrics> procs;  // the Master first, then every child id

    // The sum of every process (role "total").
    ProcessMetrics total() const;
    // The Prometheus text exposition format 0.0.4: HELP and TYPE for every
    // family, names prefixed zan_, labels role and id; ends with "\n".
    std::string to_prometheus() const;
    // One JSON document with stable keys (see zanctl(1)).
    std::string to_json() const;
};

}  // namespace zan

#endif
