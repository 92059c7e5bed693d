#include "zan/detail/net_replies.h"

#include <errno.h>
#include <string.h>

#include <string>

#include "zan/log.h"

namespace zan {

void NetReplies::on_channel(int w, uint32_t ev)
{
    if (ev & kWritable)
        chans_.mark(w);  // flushed before the next poll
    if (ev & kReadable) {
        int r = chans_.chan(w).receive(
            [this, w](const FrameHeader& h, std::string_view d) { on_frame(w, h, d); });
        if (r < 0 && errno != EAGAIN)
            log_errno(Level::error, errno, "reading channel from worker#%d", w);
    }
}

// Reads what every Worker channel holds (replies published while we
// were about to block).
void NetReplies::read_all()
{
    for (int w = 0; w < rt_.W(); w++)
        on_channel(w, kReadable);
}

void NetReplies::on_frame(int w, const FrameHeader& h, std::string_view data)
{
    uint32_t slot;
    NetConn* c = table_.find(h.id, &slot);
    if (!c) {
        // A late reply to a closed (maybe reused) slot. A Worker waiting
        // for the output to drain learns it never will.
        if (h.kind == kFrameWatchOutput)
            chans_.push_control(w, kFrameDrained, h.id, 0);
        return;
    }
    switch (h.kind) {
    case kFrameReply:
    case kFrameSendfile:
        if (rt_.protocol.counted_replies) {
            // Replies leave in request order, whichever Worker wrote them
            // first: one for a later request waits for those before it.
            uint32_t seq = static_cast<uint32_t>(h.arg) >> kSeqShift;
            if (seq != c->reply_seq) {
                order_.hold(slot, seq, h.kind, h.arg & kFlagMask, data);
                break;
            }
        }
        deliver(slot, h.kind, h.arg & kFlagMask, data);
        break;
    case kFrameCloseReq:
        c->close_after_flush = true;
        table_.mark_dirty(slot);
        break;
    case kFrameCloseAck:
        if (c->read_closed) {
            c->ack_wait = false;
            c->close_after_flush = true;
            table_.mark_dirty(slot);
        }
        break;
    case kFrameWatchOutput:
        c->drain_worker = w;
        c->drain_below = h.arg > 0 ? static_cast<size_t>(h.arg) : 0;
        table_.check_drain(slot);
        break;
    case kFramePartAck:
        if (h.arg > 0)
            requests_.acknowledged(slot, static_cast<size_t>(h.arg));
        break;
    case kFrameBind:
        if (data.size() == sizeof(uint64_t))
            memcpy(&c->uid, data.data(), sizeof(uint64_t));
        break;
    default:
        break;
    }
}

// Queues one reply frame (bytes, or a file region) on its connection.
void NetReplies::deliver(uint32_t slot, uint8_t kind, int flags, std::string_view data)
{
    if (kind == kFrameSendfile) {
        queue_file(slot, data, flags);
        return;
    }
    table_.at(slot).append_out(data);
    table_.mark_dirty(slot);
    reply_done(slot, flags);
}

void NetReplies::queue_file(uint32_t slot, std::string_view payload, int flags)
{
    SendfileHeader sh;
    if (payload.size() > sizeof(sh)) {
        memcpy(&sh, payload.data(), sizeof(sh));
        table_.at(slot).append_file(payload.substr(sizeof(sh)), static_cast<off_t>(sh.offset),
                                    static_cast<size_t>(sh.length));
    }
    reply_done(slot, flags);
}

// Bookkeeping after a reply frame: kReplyClose ends the connection with
// it; the end mark completes one message's reply.
void NetReplies::reply_done(uint32_t slot, int flags)
{
    NetConn& c = table_.at(slot);
    if (!rt_.protocol.counted_replies) {
        if (c.awaiting)
            c.replies_done = 1;  // the first reply to a message: timed until written
        c.awaiting = false;
    } else if (flags & kReplyEnd) {
        c.replies_done++;
    }
    if (flags & kReplyClose) {
        // The connection ends with this reply: nothing may follow it.
        c.close_after_flush = true;
        c.read_closed = true;
        if (c.io) {
            c.io->deferred.clear();
            c.io->in.clear();
        }
        table_.set_interest(slot);
    }
    if ((flags & kReplyEnd) && !reply_end(slot))
        return;
    table_.mark_dirty(slot);
}

// One message is answered: replies held for the next ones may go, and
// replies held back (interim, reject) go out once none is due. False
// when a held reply closed the connection.
bool NetReplies::reply_end(uint32_t slot)
{
    NetConn& c = table_.at(slot);
    if (rt_.protocol.counted_replies) {
        c.reply_seq = (c.reply_seq + 1) & kSeqMask;
        if (!order_.empty()) {
            order_.release(table_, slot, [this, slot](const NetReplyOrder::Held& p) {
                deliver(slot, p.kind, p.flags, p.data);
            });
            if (!c.used)
                return false;
        }
    }
    if (c.inflight > 0)
        c.inflight--;
    c.awaiting = c.inflight > 0;
    if (c.inflight == 0 && !c.no_deferred()) {
        std::string d;
        d.swap(c.io->deferred);
        c.append_out(d);
        if (c.reject_after)
            c.close_after_flush = true;
    }
    // More pipelined input may be waiting behind the answered message.
    if (c.inflight == 0 && !c.no_input() && !c.reject_after && !c.close_after_flush)
        requests_.process_input(slot);
    return true;
}

void NetReplies::fail_waiting_on(int w)
{
    int n = 0;
    for (uint32_t slot = 0; slot < table_.size(); slot++) {
        NetConn& c = table_.at(slot);
        if (!c.used || !((c.awaiting && c.last_worker == w) || (c.ack_wait && c.home == w)))
            continue;
        n++;
        if (c.streaming && c.stream_worker == w)
            c.streaming = c.stream_full = false;  // its parts died with it
        if (!fail(slot)) {
            c.ack_wait = false;
            table_.close(slot, "worker died");
        }
    }
    if (n)
        log(Level::warn, "worker#%d: failed %d connections waiting on it", w, n);
}

// Sends the protocol's failure reply to a connection waiting for a
// reply, then closes it; false when there is none to send.
bool NetReplies::fail(uint32_t slot)
{
    NetConn& c = table_.at(slot);
    ConnProtocol* pr = c.proto(rt_.protocol, table_.session_of(slot));
    if (!pr || !c.awaiting)
        return false;
    std::string r = pr->failure_reply();  // only when it is sent (it may be logged)
    if (r.empty())
        return false;
    c.awaiting = false;
    c.inflight = 0;
    if (c.io)
        c.io->deferred.clear();
    c.append_out(r);
    c.read_closed = true;
    c.close_after_flush = true;
    table_.set_interest(slot);
    table_.mark_dirty(slot);
    return true;
}

}  // namespace zan
