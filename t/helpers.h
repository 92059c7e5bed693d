// Every test helper header at once, for a test file that wants most of
// them; a new test includes only the ones it uses.
#ifndef ZAN_T_HELPERS_H
#define ZAN_T_HELPERS_H

#include "t/fork_helpers.h"
#include "t/http_client.h"
#include "t/net_helpers.h"
#include "t/proc_helpers.h"
#include "t/server_fixture.h"
#include "t/syscall_trap.h"
#include "t/test_env.h"
#include "t/tmp_helpers.h"

#endif
