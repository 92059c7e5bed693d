// SessionId: the name of one client connection across processes, packed
// as (generation << 32) | (net_worker << 24) | slot. The slot is the
// connection's SessionSlot in its NetWorker's part of the session table
// (zan/detail/shm_tables.h); the generation is bumped when the slot's
// connection closes, so a reply for a slot that was closed and reused is
// recognised and dropped. Plain values: any process may build and take
// apart an id. See zan_stats(3).
#ifndef ZAN_SESSION_ID_H
#define ZAN_SESSION_ID_H

#include <stdint.h>

namespace zan {

using SessionId = uint64_t;
constexpr int kMaxSlotBits = 24;
constexpr uint32_t kSlotMask = (1u << kMaxSlotBits) - 1;
constexpr int kMaxNetWorkers = 255;

inline SessionId make_session(uint32_t gen, int net, uint32_t slot)
{
    return (static_cast<uint64_t>(gen) << 32) | (static_cast<uint64_t>(net) << kMaxSlotBits) | slot;
}
inline uint32_t session_gen(SessionId s) { return static_cast<uint32_t>(s >> 32); }
inline int session_net(SessionId s) { return static_cast<int>((s >> kMaxSlotBits) & 0xff); }
inline uint32_t session_slot(SessionId s) { return static_cast<uint32_t>(s) & kSlotMask; }

}  // namespace zan

#endif
