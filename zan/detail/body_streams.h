// BodyStreams: the request bodies an HttpServer Worker receives in parts
// (HttpConfig::stream_body_from), one per connection at a time. For each
// it keeps a parser that decodes the body (chunked or by length), the
// decoded bytes the application's reader has not taken yet, and the raw
// part bytes behind them, which are acknowledged to the NetWorker (so it
// reads that many more) only once the reader took them: a reader that
// stops, or never comes, holds at most the stream window.
//
// Owns the parsers and held bytes; the reader is the application's, and
// is dropped once its response is finished. Lives in a Worker process
// only, made after fork; calls back from its loop, never from the calls
// that set a reader or resume one. Not thread-safe.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_BODY_STREAMS_H
#define ZAN_DETAIL_BODY_STREAMS_H

#include <stddef.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "zan/event_loop.h"
#include "zan/http_parser.h"
#include "zan/http_response.h"
#include "zan/session_id.h"

namespace zan {

class BodyStreams {
public:
    // Tells the NetWorker of s that n raw bytes were taken.
    using Ack = std::function<void(SessionId s, size_t n)>;

    BodyStreams(EventLoop& loop, Ack ack) : loop_(loop), ack_(std::move(ack)) {}
    BodyStreams(const BodyStreams&) = delete;
    BodyStreams& operator=(const BodyStreams&) = delete;

    // The first part of s's message: its header section and maybe body
    // bytes. Returns the parser holding the request (its header section
    // complete), or nullptr, and no stream, when raw does not parse as
    // one (the NetWorker validated it: a bug).
    HttpParser* start(SessionId s, std::string_view raw, const HttpLimits& limits);
    // A later part; last: the message's end; cut: it ends unfinished.
    void part(SessionId s, std::string_view raw, bool last, bool cut);

    // True while s's body is still arriving.
    bool open(SessionId s) const;
    bool set_reader(SessionId s, HttpResponse::BodyReader reader);
    bool set_reading(SessionId s, bool on);
    // s's response is finished: its reader is dropped and what is left
    // of the body is discarded (and acknowledged) as it comes.
    void response_done(SessionId s);

    size_t size() const { return streams_.size(); }

private:
    struct Stream {
        HttpParser parser;
        HttpResponse::BodyReader reader;
        std::string held;      // decoded bytes the reader has not taken
        size_t held_raw = 0;   // raw part bytes not yet acknowledged
        bool reading = true;
        bool ended = false;    // the last part arrived
        bool ok = true;        // and the body was whole
        bool discard = false;  // the response is done: drop what comes
        bool pump_due = false; // a deferred pump() is queued
        explicit Stream(const HttpLimits& l) : parser(l, true) {}
    };
    Stream* find(SessionId s);
    void feed(Stream& st, std::string_view raw);
    void schedule(SessionId s, Stream& st);
    void pump(SessionId s);

    EventLoop& loop_;
    Ack ack_;
    std::unordered_map<SessionId, std::unique_ptr<Stream>> streams_;
};

}  // namespace zan

#endif
