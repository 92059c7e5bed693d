#include "zan/detail/shm_mutex.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/sys.h"

namespace zan {

bool ShmMutex::init()
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc != 0) {
        errno = rc;
        return false;
    }
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    if (rc == 0)
        rc = pthread_mutex_init(&m_, &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0) {
        errno = rc;
        return false;
    }
    __atomic_store_n(&holder_, 0, __ATOMIC_RELAXED);
    return true;
}

ShmMutex::Result ShmMutex::locked(int rc)
{
    pid_t me = current_pid();
    if (rc == 0) {
        __atomic_store_n(&holder_, me, __ATOMIC_RELAXED);
        return kLocked;
    }
    if (rc == EOWNERDEAD) {
        // We hold the lock now; holder_ still names the dead process.
        pid_t dead = __atomic_load_n(&holder_, __ATOMIC_RELAXED);
        rc = pthread_mutex_consistent(&m_);
        if (rc != 0) {
            log_errno(Level::error, rc, "shm mutex %p: pthread_mutex_consistent() failed",
                      static_cast<void*>(this));
            errno = rc;
            return kError;
        }
        __atomic_store_n(&holder_, me, __ATOMIC_RELAXED);
        log(Level::warn, "shm mutex %p: holder pid %d died holding it; made consistent",
            static_cast<void*>(this), static_cast<int>(dead));
        return kRecovered;
    }
    if (rc == EBUSY || rc == ETIMEDOUT) {
        errno = rc;
        return kBusy;
    }
    errno = rc;  // EDEADLK, ENOTRECOVERABLE, EINVAL, EAGAIN
    return kError;
}

// pthread_mutex_lock() and friends never fail with EINTR, so nothing here
// needs a retry loop.
ShmMutex::Result ShmMutex::lock() { return locked(pthread_mutex_lock(&m_)); }

ShmMutex::Result ShmMutex::try_lock()
{
    int rc = pthread_mutex_trylock(&m_);
    // glibc says EDEADLK for a robust mutex we already hold but EBUSY for a
    // plain one; report EDEADLK either way, as lock() does.
    if (rc == EBUSY && holder() == current_pid())
        rc = EDEADLK;
    return locked(rc);
}

ShmMutex::Result ShmMutex::lock_for(int timeout_ms)
{
    if (timeout_ms < 0)
        return lock();
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += static_cast<long>(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return locked(pthread_mutex_clocklock(&m_, CLOCK_MONOTONIC, &ts));
}

bool ShmMutex::unlock()
{
    // Clear holder_ before the release so that the next holder's store is
    // never overwritten; a non-holder leaves it alone.
    pid_t me = current_pid();
    bool mine = __atomic_load_n(&holder_, __ATOMIC_RELAXED) == me;
    if (mine)
        __atomic_store_n(&holder_, 0, __ATOMIC_RELAXED);
    int rc = pthread_mutex_unlock(&m_);
    if (rc != 0) {
        if (mine)
            __atomic_store_n(&holder_, me, __ATOMIC_RELAXED);
        errno = rc;
        return false;
    }
    return true;
}

void ShmMutex::destroy()
{
    int rc = pthread_mutex_destroy(&m_);
    if (rc != 0)
        log_errno(Level::warn, rc, "shm mutex %p: pthread_mutex_destroy() failed",
                  static_cast<void*>(this));
}

}  // namespace zan
