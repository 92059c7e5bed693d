// NetWorker, the Worker side: replies coming back through the channel
// rings (in request order, files sent with sendfile(2)), flushing the
// frames queued for each Worker, and failing the clients of a Worker that
// died. The client side is in net_worker_clients.cc, the rest in
// net_worker.cc.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/net_worker.h"
#include "zan/sys.h"

namespace zan {

// ---- Worker channels ---------------------------------------------------

void NetWorker::on_channel(int w, uint32_t ev)
{
    Channel& ch = chan(w);
    if (ev & kWritable)
        chan_dirty_[static_cast<size_t>(w)] = true;  // flushed before the next poll
    if (ev & kReadable) {
        int r = ch.receive([this](const FrameHeader& h, std::string_view d) { on_reply(h, d); });
        if (r < 0 && errno != EAGAIN)
            log_errno(Level::error, errno, "reading channel from worker#%d", w);
    }
}

void NetWorker::on_reply(const FrameHeader& h, std::string_view data)
{
    SessionId s = h.id;
    uint32_t slot = session_slot(s);
    if (session_net(s) != rt_.index || slot >= conns_.size())
        return;
    Conn& c = conns_[slot];
    if (!c.used || c.gen != session_gen(s))
        return;  // a late reply to a closed (maybe reused) slot
    switch (h.kind) {
    case kFrameReply:
    case kFrameSendfile:
        if (rt_.protocol.counted_replies) {
            // Replies leave in request order, whichever Worker wrote them
            // first: one for a later request waits for those before it.
            uint32_t seq = static_cast<uint32_t>(h.arg) >> kSeqShift;
            if (seq != c.reply_seq) {
                Held held{h.kind, h.arg & kFlagMask, std::string(data)};
                c.x().held[seq].push_back(std::move(held));
                break;
            }
        }
        deliver(slot, h.kind, h.arg & kFlagMask, data);
        break;
    case kFrameCloseReq:
        c.close_after_flush = true;
        mark_dirty(slot);
        break;
    case kFrameCloseAck:
        if (c.read_closed) {
            c.ack_wait = false;
            c.close_after_flush = true;
            mark_dirty(slot);
        }
        break;
    case kFrameBind:
        if (data.size() == sizeof(uint64_t))
            memcpy(&c.uid, data.data(), sizeof(uint64_t));
        break;
    default:
        break;
    }
}

// Bookkeeping after a reply frame: the end mark completes one message's
// reply; replies held back (interim, reject) go out once none is due.
void NetWorker::deliver(uint32_t slot, uint8_t kind, int flags, std::string_view data)
{
    if (kind == kFrameSendfile) {
        queue_file(slot, data, flags);
        return;
    }
    append_out(conns_[slot], data);
    mark_dirty(slot);
    reply_done(slot, flags);
}

// The reply now due may have arrived early: send what is held for it, in
// order, and so on for the ones after it.
void NetWorker::release_held(uint32_t slot)
{
    if (releasing_)
        return;  // the loop below picks up what deliver() makes due
    releasing_ = true;
    for (;;) {
        Conn& c = conns_[slot];
        if (!c.used || !c.io || c.io->held.empty())
            break;
        auto it = c.io->held.find(c.reply_seq);
        if (it == c.io->held.end())
            break;
        std::vector<Held> pieces = std::move(it->second);
        c.io->held.erase(it);
        for (Held& p : pieces) {
            if (!conns_[slot].used)
                break;
            deliver(slot, p.kind, p.flags, p.data);
        }
    }
    releasing_ = false;
}

void NetWorker::reply_done(uint32_t slot, int flags)
{
    Conn& c = conns_[slot];
    if (!rt_.protocol.counted_replies)
        c.awaiting = false;
    if (flags & kReplyClose) {
        // The connection ends with this reply: nothing may follow it.
        c.close_after_flush = true;
        c.read_closed = true;
        if (c.io) {
            c.io->deferred.clear();
            c.io->in.clear();
        }
        set_interest(slot);
    }
    if (flags & kReplyEnd) {
        if (rt_.protocol.counted_replies) {
            c.reply_seq = (c.reply_seq + 1) & kSeqMask;
            if (c.io && !c.io->held.empty()) {
                release_held(slot);
                if (!conns_[slot].used)
                    return;
            }
        }
        if (c.inflight > 0)
            c.inflight--;
        c.awaiting = c.inflight > 0;
        if (c.inflight == 0 && !c.no_deferred()) {
            std::string d;
            d.swap(c.io->deferred);
            append_out(c, d);
            if (c.reject_after)
                c.close_after_flush = true;
        }
        // More pipelined input may be waiting behind the answered message.
        if (c.inflight == 0 && !c.no_input() && !c.reject_after && !c.close_after_flush)
            process_input(slot);
    }
    mark_dirty(slot);
}

void NetWorker::queue_file(uint32_t slot, std::string_view payload, int flags)
{
    Conn& c = conns_[slot];
    SendfileHeader sh;
    if (payload.size() <= sizeof(sh)) {
        reply_done(slot, flags);
        return;
    }
    memcpy(&sh, payload.data(), sizeof(sh));
    ConnIo& io = c.x();
    io.segs.emplace_back();
    Segment& sg = io.segs.back();
    sg.path.assign(payload.substr(sizeof(sh)));
    sg.offset = static_cast<off_t>(sh.offset);
    sg.left = static_cast<size_t>(sh.length);
    reply_done(slot, flags);
}

void NetWorker::flush_channels()
{
    for (int w = 0; w < rt_.W(); w++) {
        if (!chan_dirty_[static_cast<size_t>(w)])
            continue;
        Channel& ch = chan(w);
        if (int64_t& n = undispatched_[static_cast<size_t>(w)]) {
            if (rt_.cfg.dispatch_mode == 3)  // its only reader
                atomic_add(&rt_.procs[w].dispatched, n);
            n = 0;
            if (!handed_listed_[static_cast<size_t>(w)]) {
                handed_listed_[static_cast<size_t>(w)] = true;
                handed_.push_back(&ch);
            }
        }
        int r = ch.flush();
        if (r < 0) {
            // Not EAGAIN: drop what is queued once instead of retrying (and
            // logging) on every pass; the clients waiting on it are failed
            // like those of a dead Worker.
            log_errno(Level::error, errno, "writing to worker#%d: %zu bytes dropped", w,
                      ch.pending());
            ch.discard();
            chan_dirty_[static_cast<size_t>(w)] = false;
            fail_waiting_on(w);
            continue;
        }
        // Blocked (r == 0): the Worker wakes us when it has made room.
        chan_dirty_[static_cast<size_t>(w)] = r == 0;
        auto& wl = waiters_[static_cast<size_t>(w)];
        if (!ch.full() && !wl.empty()) {
            std::vector<uint32_t> resume;
            resume.swap(wl);
            for (uint32_t slot : resume) {
                Conn& c = conns_[slot];
                if (!c.used || !c.paused)
                    continue;
                c.paused = false;
                set_interest(slot);
                process_input(slot);
                half_close(slot);
            }
            chan_dirty_[static_cast<size_t>(w)] = true;
            loop_.defer([] {});  // poll again at once to flush what was resumed
        }
    }
}

// Fails the connections waiting on Worker w (it died, or its channel
// broke): a protocol failure reply (e.g. 503) after what is queued, or a
// plain close.
void NetWorker::fail_waiting_on(int w)
{
    int n = 0;
    for (uint32_t slot = 0; slot < conns_.size(); slot++) {
        Conn& c = conns_[slot];
        if (!c.used || !((c.awaiting && c.last_worker == w) || (c.ack_wait && c.home == w)))
            continue;
        n++;
        ConnProtocol* pr = proto(c);
        std::string r = pr ? pr->failure_reply() : std::string();
        if (!r.empty() && c.awaiting) {
            c.awaiting = false;
            c.inflight = 0;
            if (c.io)
                c.io->deferred.clear();
            append_out(c, r);
            c.read_closed = true;
            c.close_after_flush = true;
            set_interest(slot);
            mark_dirty(slot);
            continue;
        }
        c.ack_wait = false;
        close_conn(slot, "worker died");
    }
    if (n)
        log(Level::warn, "worker#%d: failed %d connections waiting on it", w, n);
}

}  // namespace zan
