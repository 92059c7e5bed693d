#include "zan/detail/ring.h"

#include <errno.h>
#include <string.h>

namespace zan {

static size_t round_up(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

size_t Ring::shm_bytes(size_t capacity)
{
    return round_up(sizeof(RingState)) + round_up(capacity) + 2 * ShmRegion::kCacheLine;
}

bool Ring::place(ShmRegion& shm, size_t capacity)
{
    if (capacity < 4096 || (capacity & (capacity - 1)) != 0) {
        errno = EINVAL;
        return false;
    }
    RingState* st = shm.alloc<RingState>();
    char* data = static_cast<char*>(shm.alloc_bytes(capacity, ShmRegion::kCacheLine));
    if (!st || !data)
        return false;
    if (!st->lock.init())
        return false;
    st_ = st;
    data_ = data;
    cap_ = capacity;
    return true;
}

size_t Ring::readable() const
{
    uint64_t t = __atomic_load_n(&st_->tail, __ATOMIC_ACQUIRE);
    uint64_t h = __atomic_load_n(&st_->head, __ATOMIC_RELAXED);
    return static_cast<size_t>(t - h);
}

size_t Ring::writable() const
{
    uint64_t h = __atomic_load_n(&st_->head, __ATOMIC_ACQUIRE);
    uint64_t t = __atomic_load_n(&st_->tail, __ATOMIC_RELAXED);
    return cap_ - static_cast<size_t>(t - h);
}

bool Ring::lock()
{
    ShmMutex::Result r = st_->lock.lock();
    // kRecovered: the dead holder never published its bytes; tail is
    // still where the last complete write left it.
    return r == ShmMutex::kLocked || r == ShmMutex::kRecovered;
}

void Ring::unlock() { st_->lock.unlock(); }

void Ring::write(const char* p, size_t n)
{
    uint64_t t = __atomic_load_n(&st_->tail, __ATOMIC_RELAXED);
    size_t at = static_cast<size_t>(t) & (cap_ - 1);
    size_t first = cap_ - at < n ? cap_ - at : n;
    memcpy(data_ + at, p, first);
    if (n > first)
        memcpy(data_, p + first, n - first);
    __atomic_store_n(&st_->tail, t + n, __ATOMIC_RELEASE);
}

void Ring::copy_out(char* out, size_t n) const
{
    uint64_t h = __atomic_load_n(&st_->head, __ATOMIC_RELAXED);
    size_t at = static_cast<size_t>(h) & (cap_ - 1);
    size_t first = cap_ - at < n ? cap_ - at : n;
    memcpy(out, data_ + at, first);
    if (n > first)
        memcpy(out + first, data_, n - first);
}

void Ring::consume(size_t n)
{
    uint64_t h = __atomic_load_n(&st_->head, __ATOMIC_RELAXED);
    __atomic_store_n(&st_->head, h + n, __ATOMIC_RELEASE);
}

void Ring::want_space()
{
    __atomic_store_n(&st_->want_space, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);  // pairs with take_want_space()
}

bool Ring::take_want_space()
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);  // head is stored before the flag is read
    if (__atomic_load_n(&st_->want_space, __ATOMIC_RELAXED) == 0)
        return false;
    return __atomic_exchange_n(&st_->want_space, 0, __ATOMIC_ACQ_REL) != 0;
}

}  // namespace zan
