#include "zan/detail/shm.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zan/log.h"

namespace zan {

ShmRegion::ShmRegion(ShmRegion&& o) noexcept
    : base_(o.base_), size_(o.size_), used_(o.used_), creator_(o.creator_)
{
    o.base_ = nullptr;
    o.size_ = o.used_ = 0;
    o.creator_ = 0;
}

ShmRegion& ShmRegion::operator=(ShmRegion&& o) noexcept
{
    if (this != &o) {
        reset();
        base_ = o.base_;
        size_ = o.size_;
        used_ = o.used_;
        creator_ = o.creator_;
        o.base_ = nullptr;
        o.size_ = o.used_ = 0;
        o.creator_ = 0;
    }
    return *this;
}

ShmRegion::~ShmRegion() { reset(); }

void ShmRegion::reset()
{
    if (base_ != nullptr && ::munmap(base_, size_) < 0) {
        // Only possible with a corrupted base_/size_; the view stays mapped.
        log_errno(Level::error, errno, "munmap(%p, %zu) failed", base_, size_);
    }
    base_ = nullptr;
    size_ = used_ = 0;
    creator_ = 0;
}

bool ShmRegion::create(size_t size)
{
    if (base_ != nullptr) {
        errno = EBUSY;
        return false;
    }
    long ps = ::sysconf(_SC_PAGESIZE);
    size_t page = ps > 0 ? static_cast<size_t>(ps) : 4096;
    if (size == 0 || size > SIZE_MAX - (page - 1)) {
        errno = EINVAL;
        return false;
    }
    size_t rounded = (size + page - 1) / page * page;
    void* p = ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    base_ = p;
    size_ = rounded;
    used_ = 0;
    creator_ = ::getpid();
    return true;
}

bool ShmRegion::contains(const void* p, size_t len) const
{
    if (base_ == nullptr || p == nullptr)
        return false;
    uintptr_t b = reinterpret_cast<uintptr_t>(base_);
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return a >= b && a - b <= size_ && len <= size_ - (a - b);
}

void* ShmRegion::alloc_bytes(size_t size, size_t align)
{
    if (base_ == nullptr || size == 0 || align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return nullptr;
    }
    // Align the absolute address; the mapping itself is page aligned.
    uintptr_t b = reinterpret_cast<uintptr_t>(base_);
    uintptr_t cur = b + used_;
    uintptr_t start = (cur + (align - 1)) & ~static_cast<uintptr_t>(align - 1);
    if (start < cur || start - b > size_ || size > size_ - (start - b)) {
        errno = ENOMEM;
        return nullptr;
    }
    used_ = (start - b) + size;
    return reinterpret_cast<void*>(start);
}

}  // namespace zan
