// HttpParser: incremental, strict RFC 9112 parser for the requests of one
// connection or, in response mode, for the responses a client reads from
// one connection (one state machine: the start line differs, the fields,
// limits and chunked coding are shared). It owns its HttpRequest and
// nothing else (no descriptor, no shared memory). NetWorkers use it with
// store=false to find message boundaries (the HTTP frame hook); Workers
// use it with store=true to build the HttpRequest. Not shared between
// processes; a copy made before fork is independent. Not thread-safe. See
// zan_http_parser(3).
#ifndef ZAN_HTTP_PARSER_H
#define ZAN_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <string>
#include <string_view>

#include "zan/http_request.h"

namespace zan {

// Per-connection limits; over one the parser fails with the status noted.
struct HttpLimits {
    size_t max_request_line = 8192;         // bytes incl. CRLF (status line too), over it 414
    size_t max_header_bytes = 16384;        // header (and trailer) section incl. CRLFs, 431
    size_t max_headers = 100;               // fields per section, 431
    size_t max_body = 8 * 1024 * 1024;      // decoded body, 413
    size_t max_chunk_line = 1024;           // chunk-size line incl. extensions, 400
    size_t max_empty_lines = 4;             // CRLFs allowed before a request line, 400
};

class HttpParser {
public:
    enum State { kStart, kHeaders, kBody, kComplete, kError };
    enum Mode : uint8_t { kRequests, kResponses };
    // Receives decoded body bytes instead of message().body (both modes).
    using BodySink = std::function<void(std::string_view)>;
    // Response mode: told of each skipped 1xx interim response.
    using InterimCallback = std::function<void(const HttpParser&)>;

    // store=false validates and finds message boundaries only: no header,
    // target or body copies and no allocation; the scalar fields of
    // request() are still set. kResponses parses responses (status line,
    // RFC 9112 6.3 framing); every failure is then a 502.
    explicit HttpParser(const HttpLimits& limits = HttpLimits(), bool store = true, Mode mode = kRequests);

    // Consumes bytes of at most ONE message and returns how many of
    // data[0, len) it took. Stops right after the message completes
    // (kComplete) or at the first bad byte (kError; that byte is not
    // counted). Call again with the bytes not yet consumed; after
    // kComplete, call reset() first. Never re-scans earlier bytes.
    size_t feed(const char* data, size_t len);

    // Fills request() from data[0, len), ONE whole message that a parser
    // with the same limits has already accepted with feed() (a Worker
    // given a message its NetWorker framed). It splits lines and fields
    // without validating them again, about five times faster than feed()
    // with store=true, and leaves the same request() and state() ==
    // kComplete. It returns false, in state kStart with request() empty,
    // for a chunked message (whose body must be decoded), for bytes that
    // are not such a message and when store() is false; feed() then
    // parses them properly. Either way the parser is as after
    // reset_connection() plus this message: a Worker that handles whole
    // messages from many connections calls load() alone.
    bool load(const char* data, size_t len);

    // End of input on the connection. A close-delimited response body
    // ends here (kComplete); at kStart nothing changes (a clean close
    // between messages); anything else was cut short and fails (kError).
    State eof();

    State state() const { return state_; }
    bool headers_complete() const { return state_ == kBody || state_ == kComplete; }
    bool expects_continue() const { return req_.expect_continue; }
    // 400, 413, 414, 431, 417, 501 (unknown transfer coding), 505; 502 in
    // response mode; 0 unless kError.
    int error_status() const { return error_status_; }
    const char* error_reason() const { return error_reason_; }
    // Bytes of the current message consumed so far (leading CRLFs
    // included); at kError the offset of the bad byte.
    size_t message_bytes() const { return consumed_; }
    // The Content-Length of the current message once its header section
    // is parsed, or -1 when it has none (chunked, or no body).
    long long content_length() const
    {
        return headers_complete() && s_.cl_seen && !s_.te_seen ? static_cast<long long>(s_.cl) : -1;
    }
    HttpRequest& request() { return req_; }
    const HttpRequest& request() const { return req_; }
    bool store() const { return store_; }
    Mode mode() const { return mode_; }

    // ---- response mode (set_body_sink() serves both) ----
    // Version, fields, body and flags of the response (request() viewed
    // as an HttpMessage: its method and target stay empty).
    const HttpMessage& message() const { return req_; }
    // The status code and reason phrase (the reason with store=true
    // only) of the response once its status line is parsed.
    int status() const { return status_; }
    const std::string& reason() const { return reason_; }
    // The method of the request this response answers, to be given
    // before its header section ends: after HEAD the response has no
    // body, after CONNECT a 2xx response ends the HTTP/1.1 connection
    // (upgrade). reset() forgets it (GET).
    void response_to(std::string_view method);
    // 1xx responses but 101 are interim: the parser calls cb (if any)
    // when one's header section ends (status(), message().headers), then
    // forgets it and reads the next status line. Their bytes count in
    // message_bytes() of the final response.
    void on_interim(InterimCallback cb) { on_interim_ = std::move(cb); }
    size_t interim_responses() const { return s_.interim; }
    // Body bytes go to sink, as they are decoded, instead of into
    // message().body (store=true or not), so a body of any size streams
    // through (set max_body to SIZE_MAX). The view points into feed()'s
    // input. sink must not call this parser.
    void set_body_sink(BodySink sink) { sink_ = std::move(sink); }

    // True once a message completed that must be the last one on its
    // connection: keep_alive is false, or it is CONNECT or the HTTP/2
    // preface (request().upgrade: what follows is not HTTP/1.1). A server
    // answers it, reads no further and closes.
    bool ends_connection() const { return state_ == kComplete && (!req_.keep_alive || req_.upgrade); }

    // Ready for the next message on the same connection; keeps capacity.
    // After kError or a message that ends_connection(), the connection stays
    // finished: feed() of any further byte reports kError (400), so bytes
    // after Connection: close, after CONNECT or the HTTP/2 preface or after
    // a bad request are never taken for a request.
    void reset();
    // Ready for a new connection: as if newly constructed (keeps capacity).
    // A Worker that parses whole messages from many connections with one
    // parser calls this, not reset().
    void reset_connection();

private:
    enum Step : uint8_t {
        kLineStart, kLeadingLf, kMethod, kTarget, kVersion, kLineLf,
        kStatusVersion, kStatusCode, kReason, kBodyEof,
        kFieldStart, kFieldName, kValueOws, kValue, kValueLf, kSectionLf,
        kBodyLength, kChunkSize, kChunkExt, kChunkLf, kChunkData, kChunkDataCr,
        kChunkDataLf, kDone
    };
    enum Kind : uint8_t { kOther, kContentLength, kTransferEncoding, kConnection, kExpect };
    static constexpr size_t kHead = 64;   // target bytes kept for classification
    static constexpr size_t kSmall = 24;  // method / field name / list element bytes kept
    static constexpr uint8_t kMaxInterim = 16;  // 1xx responses before a final one

    const char* fail(const char* at, int status, const char* reason);
    void begin_section(const char* at, size_t limit, int status, const char* reason);
    const char* step(const char* p, const char* end);
    const char* on_line_start(const char* p);
    const char* on_method(const char* p, const char* end);
    const char* on_target(const char* p, const char* end);
    const char* end_target(const char* at);
    const char* on_version(const char* p, const char* end);
    const char* on_field_start(const char* p);
    const char* on_field_name(const char* p, const char* end);
    const char* on_value(const char* p, const char* end);
    const char* end_field(const char* at);
    const char* value_bytes(const char* p, const char* end);
    const char* end_element(const char* at);
    const char* end_headers(const char* at);
    const char* on_status_version(const char* p, const char* end);
    const char* on_status_code(const char* p, const char* end);
    const char* on_reason(const char* p, const char* end);
    const char* end_response_headers(const char* at);
    const char* begin_response_body(const char* at);
    const char* on_body_eof(const char* p, const char* end);
    const char* fail_response(const char* at, const char* reason);
    const char* on_chunk_size(const char* p, const char* end);
    const char* on_chunk_ext(const char* p, const char* end);
    const char* on_chunk_lf(const char* p);
    const char* on_body(const char* p, const char* end);
    const char* complete(const char* at);
    void split_target();
    static void split_target(HttpRequest& r, bool whole);
    void clear_message();
    bool fail_load();
    size_t off(const char* at) const { return base_ + static_cast<size_t>(at - data_); }
    HttpHeader& field() { return s_.in_trailers ? req_.trailers.back() : req_.headers.back(); }

    HttpLimits limits_;
    bool store_;
    Mode mode_;
    State state_ = kStart;
    int error_status_ = 0;
    const char* error_reason_ = nullptr;
    const char* finished_ = nullptr;  // connection over: why later bytes are an error
    HttpRequest req_;
    int status_ = 0;                  // response mode: the status line's code
    std::string reason_;              // and its reason phrase
    BodySink sink_;
    InterimCallback on_interim_;
    const char* data_ = nullptr;      // data[0] of the running feed()
    size_t base_ = 0;                 // its message offset
    size_t consumed_ = 0;

    // Scanner state of one message; reset() assigns a fresh one.
    struct Scan {
        Step step = kLineStart;
        size_t sec_start = 0;          // message offset where the limited section began
        size_t sec_limit = SIZE_MAX;   // its byte limit (SIZE_MAX: none)
        int sec_status = 0;
        const char* sec_reason = nullptr;
        size_t empty_lines = 0;
        size_t method_len = 0;
        size_t target_len = 0;
        bool connect = false, pri = false, asterisk = false;
        bool auth_bad = false, port_bad = false;  // authority-form checks (CONNECT)
        size_t colon_at = 0, port_digits = 0;
        uint8_t ver_pos = 0;
        bool in_trailers = false;
        size_t fields = 0;
        size_t name_len = 0;
        Kind kind = kOther;
        bool cl_seen = false, cl_ows = false;
        size_t cl_digits = 0;
        uint64_t cl = 0;
        size_t elem_len = 0;           // comma-list element (TE, Connection, Expect)
        bool elem_ows = false, elem_junk = false;
        bool te_seen = false, te_chunked = false;
        bool conn_close = false, conn_keep_alive = false;
        bool expect_100 = false;
        uint64_t remaining = 0;        // Content-Length bytes left, or chunk bytes / size
        uint64_t body_len = 0;         // decoded chunked bytes so far
        size_t chunk_digits = 0;
        uint8_t ext = 0;               // chunk-extension sub-state
        // Response mode: response_to(), and the 1xx responses skipped.
        bool head_request = false, connect_request = false;
        uint8_t interim = 0;
    };
    Scan s_;
    // Bytes kept across feeds, valid up to the lengths in s_ (so a reset
    // need not clear them).
    struct Kept {
        char method[kSmall];
        char head[kHead];   // first bytes of the target
        char name[kSmall];  // field name prefix, when split across feeds
        char elem[kSmall];
    };
    Kept k_ = {};  // zeroed once, at construction
};

}  // namespace zan

#endif
