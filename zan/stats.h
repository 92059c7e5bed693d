// Stats: a snapshot of a running server's statistics, the value
// TcpServer::stats() returns. It copies the shared counters
// (ServerStats in zan/detail/shm_tables.h) and adds the configured process
// counts; once taken it is a plain value of the calling process. See
// zan_tcp_server(3).
#ifndef ZAN_STATS_H
#define ZAN_STATS_H

#include <stdint.h>

#include <string>

namespace zan {

// A snapshot of the shared statistics.
struct Stats {
    int64_t start_time;
    int64_t last_reload;
    int64_t connection_num;
    int64_t accept_count;
    int64_t close_count;
    int64_t request_count;
    int64_t task_count;
    int64_t tasking_num;
    int64_t worker_respawn_count;
    int64_t worker_normal_exit;
    int64_t worker_abnormal_exit;
    int64_t hop_yield_count;  // turns NetWorkers gave up the CPU (hop_yield)
    int worker_num;
    int task_worker_num;
    int net_worker_num;
    int user_worker_num;
    // One line of JSON with every field above.
    std::string to_json() const;
};

}  // namespace zan

#endif
