// Role: what a process of a server is (the Master or a child of one of
// the four kinds), and its short name for process titles and log tags.
// A plain value, stored as int32_t in the process table (ProcSlot::role in
// zan/detail/shm_tables.h). See zan_stats(3).
#ifndef ZAN_ROLE_H
#define ZAN_ROLE_H

#include <stdint.h>

namespace zan {

enum class Role : int32_t { none = 0, master, worker, task_worker, user_worker, net_worker };

// "master", "worker", "task", "user", "net"; "none" for any other value.
const char* role_name(Role role);

}  // namespace zan

#endif
