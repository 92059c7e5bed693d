#include "zan/detail/channel.h"

namespace zan {

bool Channel::make_pair(Channel* a, Channel* b)
{
    SocketChannel x, y;
    if (!SocketChannel::make_pair(&x, &y))
        return false;
    *a = Channel(std::move(x));
    *b = Channel(std::move(y));
    return true;
}

void Channel::attach_ring(Ring tx, Ring rx, int peer_wake, int32_t* peer_sleeping)
{
    if (SocketChannel* s = socket()) {
        RingChannel r;
        r.frames_ = std::move(s->frames_);
        t_ = std::move(r);  // closes the descriptor
    }
    ring()->attach(tx, rx, peer_wake, peer_sleeping);
}

void Channel::reset()
{
    if (RingChannel* r = ring()) {
        SocketChannel s;
        s.frames_ = std::move(r->frames_);
        t_ = std::move(s);
    }
    socket()->reset();
}

}  // namespace zan
