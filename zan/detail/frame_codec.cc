#include "zan/detail/frame_codec.h"

#include "zan/sys.h"

namespace zan {

void FrameCodec::append_frame(uint8_t kind, uint8_t flags, uint64_t id, int32_t arg,
                              std::string_view a, std::string_view b)
{
    FrameHeader h;
    h.len = static_cast<uint32_t>(a.size() + b.size());
    h.kind = kind;
    h.flags = flags;
    h.reserved = 0;
    h.src = static_cast<uint32_t>(current_pid());
    h.arg = arg;
    h.id = id;
    out_.ensure_writable(sizeof(h) + h.len);
    char* p = out_.begin_write();
    memcpy(p, &h, sizeof(h));
    if (!a.empty())
        memcpy(p + sizeof(h), a.data(), a.size());
    if (!b.empty())
        memcpy(p + sizeof(h) + a.size(), b.data(), b.size());
    out_.commit(sizeof(h) + h.len);
}

bool FrameCodec::push2(uint8_t kind, uint64_t id, int32_t arg, std::string_view a,
                       std::string_view b)
{
    if (full())
        return false;
    const size_t kMaxPayload = max_frame_ - sizeof(FrameHeader);
    size_t total = a.size() + b.size();
    if (total <= kMaxPayload) {
        append_frame(kind, 0, id, arg, a, b);
        return true;
    }
    // Split into fragments of at most kMaxPayload bytes.
    std::string joined;
    std::string_view all = a;
    if (!b.empty()) {
        joined.reserve(total);
        joined.append(a.data(), a.size()).append(b.data(), b.size());
        all = joined;
    }
    for (size_t off = 0; off < total; off += kMaxPayload) {
        size_t n = total - off < kMaxPayload ? total - off : kMaxPayload;
        uint8_t flags = kFragPart | (off == 0 ? kFragFirst : 0) | (off + n < total ? kFragMore : 0);
        append_frame(kind, flags, id, arg, all.substr(off, n), std::string_view());
    }
    return true;
}

bool FrameCodec::join(FrameHeader* h, std::string_view payload, std::string* whole)
{
    if (h->flags & kFragFirst) {
        partial_[h->src].assign(payload.data(), payload.size());
    } else {
        auto it = partial_.find(h->src);
        if (it == partial_.end())
            return false;  // continuation without a start: its writer died
        it->second.append(payload.data(), payload.size());
    }
    if (h->flags & kFragMore)
        return false;
    auto it = partial_.find(h->src);
    whole->swap(it->second);
    partial_.erase(it);
    h->len = static_cast<uint32_t>(whole->size());
    h->flags = 0;
    return true;
}

}  // namespace zan
