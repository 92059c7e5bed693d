// Where the tests find the build, the clock they measure with, the one
// scale of every wall-clock limit, and a poll(2) on one descriptor with a
// deadline. Used by every other test helper and by the tests themselves.
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

// ZAN_TEST_TIME_SCALE from the environment (a number >= 1, default 1),
// read once: a slow build (sanitizers, valgrind) or a loaded machine
// sets it larger. Every wall-clock limit of the tests goes through
// scaled(): the helpers below and in the other t/*_helpers.h scale the
// timeouts they are given; a test scales its own deadlines and upper
// bounds on elapsed time. Lower bounds (a thing must NOT happen before
// max_wait_time) and quiet periods are not scaled.
double time_scale();
int scaled(int ms);
long long scaled_us(long long us);

// poll(2) one fd for `events` (POLLIN, POLLOUT) until timeout_ms passes,
// retrying EINTR; true when it is ready. timeout_ms is taken as it is
// (the callers pass what is left of a deadline already scaled).
bool wait_fd(int fd, short events, int timeout_ms);

}  // namespace zt

#endif
