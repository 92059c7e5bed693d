// ShmRegion: owns one anonymous MAP_SHARED|MAP_ANONYMOUS mapping and hands
// out pieces of it with a bump allocator.
//
// The Master creates the region and allocates everything in it before it
// forks; every child inherits the same physical pages at the same address,
// so pointers into the region are valid in all processes of one server.
// The mapping survives fork (children share it); each process unmaps its
// own view when its ShmRegion is destroyed (munmap never affects another
// process). The bump pointer (used()) is private to each process: allocate
// only in the Master before fork, or two processes may hand out the same
// bytes. Objects placed here must be trivially copyable, hold no pointers
// to private memory and use only lock-free atomics (alloc<T>() checks the
// first rule). Not thread-safe.
#ifndef ZAN_DETAIL_SHM_H
#define ZAN_DETAIL_SHM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <new>
#include <type_traits>

namespace zan {

class ShmRegion {
public:
    // Alignment of alloc<T>(): one cache line, so that objects written by
    // different processes do not share a line.
    static constexpr size_t kCacheLine = 64;

    ShmRegion() = default;
    ShmRegion(ShmRegion&& o) noexcept;
    ShmRegion& operator=(ShmRegion&& o) noexcept;
    ShmRegion(const ShmRegion&) = delete;
    ShmRegion& operator=(const ShmRegion&) = delete;
    ~ShmRegion();  // munmap of this process's view

    // Maps `size` bytes (rounded up to whole pages), zero-filled. Returns
    // false with errno set: EINVAL for size 0 or overflow, EBUSY when this
    // object already holds a mapping, or the mmap(2) error.
    bool create(size_t size);
    // Unmaps this process's view (other processes keep theirs) and returns
    // the object to the empty state. Pointers into the region die with it.
    void reset();

    bool valid() const { return base_ != nullptr; }
    void* data() const { return base_; }
    size_t size() const { return size_; }
    size_t used() const { return used_; }        // bytes handed out, with padding
    size_t available() const { return size_ - used_; }
    pid_t creator() const { return creator_; }   // pid that called create()
    // True if [p, p+len) lies inside the region.
    bool contains(const void* p, size_t len = 1) const;

    // Bump allocator: returns `size` bytes aligned to `align` (a power of
    // two), or nullptr with errno ENOMEM when out of room and EINVAL for a
    // zero size, a bad alignment or an empty region. The bytes are zero
    // (they were never handed out before); nothing is ever freed.
    void* alloc_bytes(size_t size, size_t align);

    // Places n value-initialised T (all zero for a T without default member
    // initialisers) at an address aligned to max(alignof(T), kCacheLine).
    // Returns nullptr (errno ENOMEM or EINVAL) as alloc_bytes() does.
    template <class T>
    T* alloc(size_t n = 1)
    {
        static_assert(std::is_trivially_copyable_v<T>,
                      "shared memory holds trivially copyable types only");
        static_assert(std::is_default_constructible_v<T>, "alloc<T>() value-initialises T");
        constexpr size_t align = alignof(T) > kCacheLine ? alignof(T) : kCacheLine;
        if (n > SIZE_MAX / sizeof(T)) {
            errno = ENOMEM;
            return nullptr;
        }
        void* p = alloc_bytes(n * sizeof(T), align);  // n == 0: EINVAL
        if (p == nullptr)
            return nullptr;
        T* first = static_cast<T*>(p);
        for (size_t i = 0; i < n; i++)
            ::new (static_cast<void*>(first + i)) T();
        return first;
    }

private:
    void* base_ = nullptr;
    size_t size_ = 0;
    size_t used_ = 0;
    pid_t creator_ = 0;
};

}  // namespace zan

#endif
