// Ring: a single-consumer byte ring in shared memory, the transport of the
// NetWorker <-> Worker hop (see RingChannel, which frames messages over it).
//
// The Master places each ring in the server's ShmRegion before it forks;
// every child sees the same bytes. tail counts the bytes ever written and
// head the bytes ever consumed; both only grow, and capacity is a power of
// two, so tail - head is what is waiting and (tail & mask) where the next
// byte goes. A producer copies its bytes in and then publishes tail with a
// release store; the consumer copies bytes out and then publishes head.
// Nothing is visible before it is published, so a process killed halfway
// through a write or a read leaves the ring as it was before that call.
//
// Producers are serialised by a robust process-shared mutex (two processes
// of one Worker id, a predecessor and its successor, may write at once); a
// producer that died holding it is recovered by the next. Exactly one
// process may consume at a time (the caller guarantees it).
//
// Wake-ups are not part of the ring: the caller pairs it with an eventfd
// and a "sleeping" word (see RingChannel). want_space is the flag
// a producer raises when the ring is full; the consumer clears it and
// wakes the producer after it frees room.
//
// Owns nothing: the ShmRegion owns the bytes. A Ring object is a handle
// (two pointers and a size) and is freely copied, also across fork.
#ifndef ZAN_DETAIL_RING_H
#define ZAN_DETAIL_RING_H

#include <stddef.h>
#include <stdint.h>

#include "zan/detail/shm.h"
#include "zan/detail/shm_mutex.h"

namespace zan {

struct RingState {
    alignas(64) uint64_t tail;  // written by producers (under lock)
    alignas(64) uint64_t head;  // written by the consumer
    int32_t want_space;         // a producer waits for room
    alignas(64) ShmMutex lock;  // serialises producers
};

class Ring {
public:
    // Shared-memory bytes a ring of `capacity` bytes needs, with padding.
    static size_t shm_bytes(size_t capacity);

    Ring() = default;
    // Places a ring of `capacity` bytes (a power of two, >= 4096) in shm.
    // Returns false with errno set (EINVAL, ENOMEM, or from the mutex).
    bool place(ShmRegion& shm, size_t capacity);
    bool valid() const { return st_ != nullptr; }
    size_t capacity() const { return cap_; }

    // Bytes waiting to be read; room left for writing.
    size_t readable() const;
    size_t writable() const;
    bool empty() const { return readable() == 0; }

    // Producer side. lock() blocks until this process may write (a dead
    // holder is recovered); write() copies n <= writable() bytes in and
    // publishes them; unlock() lets the next producer in.
    bool lock();
    void write(const char* p, size_t n);
    void unlock();

    // Consumer side. copy_out() copies n <= readable() bytes from the head
    // without consuming them; consume() publishes that n bytes are free.
    void copy_out(char* out, size_t n) const;
    void consume(size_t n);

    // A producer that found the ring full raises the flag (then checks
    // again: the consumer may have emptied it meanwhile); the consumer
    // takes it after consume() and, when it was raised, wakes producers.
    void want_space();
    bool take_want_space();

private:
    RingState* st_ = nullptr;
    char* data_ = nullptr;
    size_t cap_ = 0;
};

}  // namespace zan

#endif
