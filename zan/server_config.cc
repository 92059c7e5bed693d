#include "zan/server_config.h"

#include "zan/session_id.h"
#include "zan/sys.h"

namespace zan {

static const int kMaxHeartbeat = 1000000;  // seconds (11 days): ms fit an int

int ServerConfig::length_size(char type)
{
    switch (type) {
    case 'c': case 'C': return 1;
    case 's': case 'S': case 'n': case 'v': return 2;
    case 'l': case 'L': case 'N': case 'V': return 4;
    case 'q': case 'Q': case 'J': case 'P': return 8;
    default: return 0;
    }
}

std::string ServerConfig::validate()
{
    if (worker_num == 0)
        worker_num = cpu_count();
    if (net_worker_num == 0)
        net_worker_num = cpu_count();
    if (worker_num < 1 || worker_num > 4096)
        return "worker_num must be between 1 and 4096";
    if (net_worker_num < 1 || net_worker_num > kMaxNetWorkers)
        return "net_worker_num must be between 1 and 255";
    if (task_worker_num < 0 || task_worker_num > 4096)
        return "task_worker_num must be between 0 and 4096";
    if (max_request < 0 || task_max_request < 0)
        return "max_request and task_max_request must not be negative";
    if (max_connection < 1 || max_connection > static_cast<int>(kSlotMask))
        return "max_connection must be between 1 and 16777215";
    if (dispatch_mode < 1 || dispatch_mode > 5)
        return "dispatch_mode must be 1..5";
    if (task_ipc_mode != 2 && task_ipc_mode != 3)
        return "task_ipc_mode must be 2 (addressed) or 3 (preemptive)";
    if (open_eof_check && open_length_check)
        return "open_eof_check and open_length_check are exclusive";
    if (open_eof_check && package_eof.empty())
        return "package_eof must not be empty";
    if (open_length_check) {
        int n = length_size(package_length_type);
        if (n == 0)
            return std::string("package_length_type '") + package_length_type + "' is unknown";
        if (package_length_offset < 0 || package_body_offset < package_length_offset + n)
            return "package_body_offset must be >= package_length_offset + length size";
    }
    if (package_max_length < 64)
        return "package_max_length must be at least 64";
    if (buffer_output_size < 4096)
        return "buffer_output_size must be at least 4096";
    if (hop_yield < 0 || hop_yield > 64)
        return "hop_yield must be 0..64";
    if (net_worker_slice_us != 0 &&
        (net_worker_slice_us < kSchedSliceMinUs || net_worker_slice_us > kSchedSliceMaxUs))
        return "net_worker_slice_us must be 0 or 100..100000";
    if (send_timeout_ms < 0)
        return "send_timeout_ms must not be negative";
    if (heartbeat_check_interval < 0 || heartbeat_check_interval > kMaxHeartbeat ||
        heartbeat_idle_time < 0 || heartbeat_idle_time > kMaxHeartbeat)
        return "heartbeat_check_interval and heartbeat_idle_time must be 0..1000000 seconds";
    if (heartbeat_check_interval > 0 && heartbeat_idle_time == 0)
        heartbeat_idle_time = 2 * heartbeat_check_interval;
    if (heartbeat_idle_time > 0 && heartbeat_check_interval == 0)
        heartbeat_check_interval = heartbeat_idle_time > 1 ? heartbeat_idle_time / 2 : 1;
    if (max_wait_time < 1)
        return "max_wait_time must be at least 1 second";
    if (upgrade_timeout < 1 || upgrade_timeout > 86400)
        return "upgrade_timeout must be 1..86400 seconds";
    if (backlog < 1)
        return "backlog must be positive";
    return "";
}

}  // namespace zan
