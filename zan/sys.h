// Thin syscall wrappers. Every function retries EINTR internally and
// returns -1 with errno set on failure (EAGAIN is "no progress", not an
// error). Every descriptor made here is close-on-exec.
#ifndef ZAN_SYS_H
#define ZAN_SYS_H

#include <stddef.h>
#include <sys/types.h>

#include "zan/fd.h"

namespace zan {

// Creates an AF_UNIX socketpair of `type` (SOCK_STREAM, SOCK_DGRAM, ...)
// with SOCK_CLOEXEC and, if `nonblock`, SOCK_NONBLOCK. Returns false with
// errno set.
bool make_socketpair(int type, bool nonblock, Fd* a, Fd* b);
// Creates a pipe with O_CLOEXEC (and O_NONBLOCK if asked).
bool make_pipe(bool nonblock, Fd* rd, Fd* wr);

int set_nonblock(int fd, bool on);
int set_cloexec(int fd, bool on);

// read(2)/write(2) with EINTR retried; otherwise the plain contract.
ssize_t read_some(int fd, void* buf, size_t len);
ssize_t write_some(int fd, const void* buf, size_t len);
// Writes all of `len` bytes, looping over short writes. On a non-blocking
// fd it waits with poll(2) for writability. Returns len, or -1 with errno.
ssize_t write_all(int fd, const void* buf, size_t len);
// Reads exactly `len` bytes unless EOF comes first; returns bytes read
// (less than len only at EOF) or -1 with errno. Waits with poll(2) on a
// non-blocking fd.
ssize_t read_full(int fd, void* buf, size_t len);

// Monotonic clock in milliseconds and microseconds.
long long monotonic_ms();
long long monotonic_us();

// getpid(2) without a system call per use: the value is cached and the
// cache is cleared in the child by a pthread_atfork(3) handler.
pid_t current_pid();

// Number of online CPUs (at least 1).
int cpu_count();

// Asks the scheduler for a CPU time slice of `usec` microseconds for the
// calling thread (sched_setattr(2), sched_runtime of a SCHED_OTHER or
// SCHED_BATCH thread: Linux 6.12 and later honour it, clamped to
// 100..100000; older kernels accept and ignore it). A shorter slice lets the
// thread preempt, on waking, a thread with a longer one. Policy and nice are
// kept; 0 restores the kernel's default. Returns 0, or -1 with errno.
int set_sched_slice(int usec);
// The range Linux clamps a requested slice to.
constexpr int kSchedSliceMinUs = 100;
constexpr int kSchedSliceMaxUs = 100000;
// The time slice of thread `tid` (0: the caller) in microseconds as the
// kernel reports it (Linux 6.12 and later), 0 if it reports none, -1 with
// errno on failure.
int sched_slice_us(pid_t tid);

}  // namespace zan

#endif
