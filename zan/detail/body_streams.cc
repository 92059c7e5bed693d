#include "zan/detail/body_streams.h"

#include <utility>

namespace zan {

BodyStreams::Stream* BodyStreams::find(SessionId s)
{
    auto it = streams_.find(s);
    return it == streams_.end() ? nullptr : it->second.get();
}

HttpParser* BodyStreams::start(SessionId s, std::string_view raw, const HttpLimits& limits)
{
    std::unique_ptr<Stream> st(new Stream(limits));
    Stream* p = st.get();
    p->parser.set_body_sink([p](std::string_view d) { p->held.append(d.data(), d.size()); });
    size_t used = p->parser.feed(raw.data(), raw.size());
    if (used != raw.size() || !p->parser.headers_complete())
        return nullptr;
    p->held_raw = raw.size();
    p->ended = p->parser.state() == HttpParser::kComplete;
    streams_[s] = std::move(st);
    return &p->parser;
}

void BodyStreams::feed(Stream& st, std::string_view raw)
{
    st.held_raw += raw.size();
    if (st.parser.state() != HttpParser::kBody)
        return;  // over (or failed): the NetWorker sends nothing more
    size_t used = st.parser.feed(raw.data(), raw.size());
    if (used != raw.size() || st.parser.state() == HttpParser::kError)
        st.ok = false;
}

void BodyStreams::part(SessionId s, std::string_view raw, bool last, bool cut)
{
    Stream* st = find(s);
    if (!st)
        return;  // its first part was discarded (the client had gone)
    if (!cut)
        feed(*st, raw);
    if (last || cut) {
        st->ended = true;
        if (cut || st->parser.state() != HttpParser::kComplete)
            st->ok = false;
    }
    pump(s);
}

bool BodyStreams::open(SessionId s) const
{
    auto it = streams_.find(s);
    return it != streams_.end() && !it->second->ended;
}

bool BodyStreams::set_reader(SessionId s, HttpResponse::BodyReader reader)
{
    Stream* st = find(s);
    if (!st || st->discard)
        return false;
    st->reader = std::move(reader);
    schedule(s, *st);
    return true;
}

bool BodyStreams::set_reading(SessionId s, bool on)
{
    Stream* st = find(s);
    if (!st || st->discard)
        return false;
    st->reading = on;
    if (on)
        schedule(s, *st);
    return true;
}

void BodyStreams::response_done(SessionId s)
{
    Stream* st = find(s);
    if (!st || st->discard)
        return;
    st->discard = true;
    st->reader = nullptr;
    schedule(s, *st);  // not here: the reader may be running
}

// Pumps from the loop, not from the caller's stack (which may be the
// reader itself).
void BodyStreams::schedule(SessionId s, Stream& st)
{
    if (st.pump_due)
        return;
    st.pump_due = true;
    loop_.defer([this, s] {
        if (Stream* p = find(s)) {
            p->pump_due = false;
            pump(s);
        }
    });
}

// Hands held bytes to the reader and acknowledges their raw bytes; at
// the end tells the reader and forgets the stream. A discarded stream
// acknowledges what comes and is forgotten at its end.
void BodyStreams::pump(SessionId s)
{
    Stream* st = find(s);
    if (!st)
        return;
    if (st->discard) {
        st->held.clear();
        if (st->held_raw)
            ack_(s, st->held_raw);
        st->held_raw = 0;
        if (st->ended && !st->pump_due)
            streams_.erase(s);
        return;
    }
    if (!st->reader || !st->reading)
        return;
    if (!st->held.empty()) {
        std::string data;
        data.swap(st->held);
        size_t raw = st->held_raw;
        st->held_raw = 0;
        ack_(s, raw);
        HttpResponse::BodyReader r = st->reader;  // it may replace itself
        r(data, false, true);
        st = find(s);
        if (!st || st->discard || !st->reader || !st->reading)
            return;
        if (st->held.empty()) {
            st->held.swap(data);  // keep the capacity
            st->held.clear();
        }
    }
    if (st->held_raw && st->held.empty()) {
        ack_(s, st->held_raw);  // framing bytes without body bytes
        st->held_raw = 0;
    }
    if (st->ended && st->held.empty() && !st->pump_due) {
        HttpResponse::BodyReader r = std::move(st->reader);
        bool ok = st->ok;
        streams_.erase(s);
        r(std::string_view(), true, ok);
    }
}

}  // namespace zan
