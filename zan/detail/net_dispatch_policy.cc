#include "zan/detail/net_dispatch_policy.h"

namespace zan {

// Mode 4 hashes the client's address. Otherwise NetWorker k takes turns
// over the Workers k, k+N, k+2N, ... first, so that with as many Workers
// as NetWorkers each pair talks over one channel (bigger batches, fewer
// wake-ups); Workers beyond that share.
int NetDispatchPolicy::home(const InetAddr& peer)
{
    unsigned W = static_cast<unsigned>(rt_.W()), N = static_cast<unsigned>(rt_.N());
    if (rt_.cfg.dispatch_mode == 4)
        return static_cast<int>(peer.ip_hash() % W);
    unsigned k = static_cast<unsigned>(rt_.index);
    if (W < N)
        return static_cast<int>((k + rr_++) % W);
    unsigned mine = (W - k + N - 1) / N;  // Workers k, k+N, ... below W
    return static_cast<int>(k + N * (rr_++ % mine));
}

// Idle Worker first: the one with the smallest backlog right now.
int NetDispatchPolicy::least_loaded()
{
    unsigned W = static_cast<unsigned>(rt_.W());
    int best = -1;
    int64_t best_load = 0;
    unsigned start = rr_++;
    for (unsigned i = 0; i < W; i++) {
        int w = static_cast<int>((start + i) % W);
        const ProcSlot& p = rt_.procs[w];
        int64_t load = atomic_load(&p.dispatched) + chans_.undispatched(w) - atomic_load(&p.handled);
        if (best < 0 || load < best_load) {
            best = w;
            best_load = load;
            if (load <= 0)
                break;
        }
    }
    return best;
}

}  // namespace zan
