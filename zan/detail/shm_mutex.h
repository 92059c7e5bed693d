// ShmMutex: a robust, process-shared, error-checking pthread mutex that
// lives inside shared memory (place it with ShmRegion::alloc<ShmMutex>()).
//
// The Master places and init()s it before fork; every process that maps the
// region may lock it. The object owns no descriptor or memory of its own:
// the ShmRegion owns the bytes, and destroy() is called at most once, by the
// Master, after every other process has exited. It survives fork by being in
// the shared mapping (a copy in private memory would be a different lock).
//
// Robustness replaces nginx's ngx_shmtx_force_unlock(): when a holder dies,
// the next locker gets kRecovered, the mutex is made consistent and a warn
// line is logged; the caller holds the lock and must repair whatever the
// dead holder left half-written. Error checking makes unlock() by a
// non-holder fail with EPERM and a second lock() by the holder fail with
// EDEADLK instead of hanging.
#ifndef ZAN_DETAIL_SHM_MUTEX_H
#define ZAN_DETAIL_SHM_MUTEX_H

#include <pthread.h>
#include <sys/types.h>

#include <type_traits>

namespace zan {

class ShmMutex {
public:
    enum Result {
        kLocked,     // caller now holds the lock
        kRecovered,  // previous holder died holding it; made consistent; caller holds it
        kBusy,       // try_lock(): held by someone else; lock_for(): timed out (errno ETIMEDOUT)
        kError,      // errno set: EDEADLK (caller already holds it), ENOTRECOVERABLE, EINVAL
    };

    // PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST + PTHREAD_MUTEX_ERRORCHECK.
    // Returns false with errno set.
    bool init();
    Result lock();
    Result try_lock();
    // Like lock(), but gives up after timeout_ms (CLOCK_MONOTONIC) with
    // kBusy and errno ETIMEDOUT. A negative timeout waits forever.
    Result lock_for(int timeout_ms);
    // Only the holder may unlock: returns false with errno EPERM otherwise.
    bool unlock();
    // pthread_mutex_destroy(); the mutex must be unlocked and unused.
    void destroy();

    // Pid of the process holding the lock, 0 when free. Diagnostic only:
    // it is exact only while the caller holds the lock.
    pid_t holder() const { return __atomic_load_n(&holder_, __ATOMIC_RELAXED); }

private:
    Result locked(int rc);  // maps a pthread lock result to a Result

    pthread_mutex_t m_;
    pid_t holder_;  // written by the holder only, with __atomic builtins
};

static_assert(std::is_trivially_copyable_v<ShmMutex>, "ShmMutex lives in shared memory");

}  // namespace zan

#endif
