// Where the tests find the build, the clock they measure with, and a
// poll(2) on one descriptor with a deadline. Used by every other test
// helper and by the tests themselves.
#ifndef ZAN_T_TEST_ENV_H
#define ZAN_T_TEST_ENV_H

#include <string>

namespace zt {

// The build directory (ZAN_BUILD_DIR in the environment, else the one
// the test binary was built for).
std::string build_dir();
std::string tool(const std::string& name);  // build_dir()/tools/name

// CLOCK_MONOTONIC in milliseconds.
long long now_ms();

// poll(2) one fd for `events` (POLLIN, POLLOUT) until timeout_ms passes,
// retrying EINTR; true when it is ready.
bool wait_fd(int fd, short events, int timeout_ms);

}  // namespace zt

#endif
