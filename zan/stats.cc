#include "zan/stats.h"

#include <stdio.h>

namespace zan {

std::string Stats::to_json() const
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"start_time\":%lld,\"last_reload\":%lld,\"connection_num\":%lld,"
             "\"accept_count\":%lld,\"close_count\":%lld,\"request_count\":%lld,"
             "\"task_count\":%lld,\"tasking_num\":%lld,\"worker_respawn_count\":%lld,"
             "\"worker_normal_exit\":%lld,\"worker_abnormal_exit\":%lld,\"hop_yield_count\":%lld,"
             "\"worker_num\":%d,\"task_worker_num\":%d,\"net_worker_num\":%d,\"user_worker_num\":%d}",
             static_cast<long long>(start_time), static_cast<long long>(last_reload),
             static_cast<long long>(connection_num), static_cast<long long>(accept_count),
             static_cast<long long>(close_count), static_cast<long long>(request_count),
             static_cast<long long>(task_count), static_cast<long long>(tasking_num),
             static_cast<long long>(worker_respawn_count), static_cast<long long>(worker_normal_exit),
             static_cast<long long>(worker_abnormal_exit), static_cast<long long>(hop_yield_count),
             worker_num, task_worker_num,
             net_worker_num, user_worker_num);
    return buf;
}

}  // namespace zan
