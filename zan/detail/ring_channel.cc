#include "zan/detail/ring_channel.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "zan/sys.h"

namespace zan {

void RingChannel::attach(Ring tx, Ring rx, int peer_wake, int32_t* peer_sleeping)
{
    tx_ = tx;
    rx_ = rx;
    // A frame must fit in the ring with room to spare, or a full-size
    // one would wait forever: small rings get smaller fragments.
    frames_.set_max_frame(tx.capacity() / 2);
    peer_wake_ = peer_wake;
    peer_sleeping_ = peer_sleeping;
}

// One eventfd write wakes the peer's epoll_wait (it watches the eventfd
// edge-triggered and never reads it: the counter cannot reach its limit).
void RingChannel::wake_peer()
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = ::write(peer_wake_, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

size_t RingChannel::read(size_t limit)
{
    size_t avail = rx_.readable();
    if (avail == 0)
        return 0;
    char* buf = frames_.record_buffer();
    size_t n = avail < limit ? avail : limit;
    rx_.copy_out(buf, n);
    size_t whole = FrameCodec::whole_frames(buf, n, n);
    if (whole == 0) {
        // Writers publish whole frames of at most kMaxRecord bytes (less
        // for a small ring), and limit >= kMaxRecord: this is not a
        // frame. Drop what is there rather than stall on it forever.
        rx_.consume(avail);
        if (rx_.take_want_space())
            wake_peer();
        return 0;
    }
    rx_.consume(whole);
    if (rx_.take_want_space())
        wake_peer();
    return whole;
}

int RingChannel::flush()
{
    for (int tries = 0; tries < 2; tries++) {
        if (frames_.pending() == 0)
            return 1;
        if (!tx_.lock())
            return -1;
        size_t take = FrameCodec::whole_frames(frames_.queued(), frames_.pending(), tx_.writable());
        if (take > 0)
            tx_.write(frames_.queued(), take);
        tx_.unlock();
        if (take > 0) {
            frames_.sent(take);
            // Published before the word is read (pairs with prepare_sleep()).
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (__atomic_load_n(peer_sleeping_, __ATOMIC_RELAXED) &&
                __atomic_exchange_n(peer_sleeping_, 0, __ATOMIC_ACQ_REL))
                wake_peer();
        }
        if (frames_.pending() == 0)
            return 1;
        // Full: ask to be woken when there is room, then look once more
        // in case the consumer made room before it could see the flag.
        tx_.want_space();
    }
    return 0;
}

bool RingChannel::flush_wait(int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        int r = flush();
        if (r == 1)
            return true;
        if (r < 0)
            return false;
        if (deadline - monotonic_ms() <= 0) {
            errno = ETIMEDOUT;
            return false;
        }
        // Nothing to poll: the room comes back as the consumer reads.
        // (Our eventfd is no use here: waiting on it means draining it,
        // and a predecessor and its successor share it, so the drain
        // could swallow the successor's wake-up. Exit paths only: a 1 ms
        // poll costs nothing there.)
        ::poll(nullptr, 0, 1);
    }
}

}  // namespace zan
