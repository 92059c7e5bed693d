#include "zan/role.h"

namespace zan {

const char* role_name(Role role)
{
    switch (role) {
    case Role::master: return "master";
    case Role::worker: return "worker";
    case Role::task_worker: return "task";
    case Role::user_worker: return "user";
    case Role::net_worker: return "net";
    default: return "none";
    }
}

}  // namespace zan
