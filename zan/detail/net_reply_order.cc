#include "zan/detail/net_reply_order.h"

#include <utility>

namespace zan {

void NetReplyOrder::hold(uint32_t slot, uint32_t seq, uint8_t kind, int flags, std::string_view data)
{
    Held h{kind, flags, std::string(data)};
    held_[key(slot, seq)].push_back(std::move(h));
}

bool NetReplyOrder::take(uint32_t slot, uint32_t seq, std::vector<Held>* out)
{
    auto it = held_.find(key(slot, seq));
    if (it == held_.end())
        return false;
    *out = std::move(it->second);
    held_.erase(it);
    return true;
}

void NetReplyOrder::drop(uint32_t slot)
{
    if (held_.empty())
        return;
    held_.erase(held_.lower_bound(key(slot, 0)), held_.lower_bound(key(slot + 1, 0)));
}

}  // namespace zan
