// HttpResponse: the reply to one HttpRequest, built and sent from the
// Worker that runs on_request. end() sends status line, headers and body
// in one frame; write() streams a chunked body (HTTP/1.1) or a
// close-delimited one (HTTP/1.0); sendfile() hands a file region to the
// NetWorker, which sends it with sendfile(2) without reading it into
// memory. It is move-only: one object owns the duty to answer one
// request. A handler that cannot answer at once moves the response out of
// on_request's argument (into a timer's callback, say) and finishes it
// later; replies still go out in request order. If the response is left
// in the argument unfinished, the server finishes it when on_request
// returns (500 if nothing was sent); a kept response destroyed unfinished
// is finished the same way and logged. Worker process only.
#ifndef ZAN_HTTP_RESPONSE_H
#define ZAN_HTTP_RESPONSE_H

#include <stdint.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "zan/session_id.h"

namespace zan {

class HttpServer;
class HttpRequest;
struct AccessRecord;

class HttpResponse {
public:
    HttpResponse() = default;
    HttpResponse(const HttpResponse&) = delete;
    HttpResponse& operator=(const HttpResponse&) = delete;
    // Takes over the duty to finish o's response; o is left empty (as
    // default-constructed: every call on it returns false).
    HttpResponse(HttpResponse&& o) noexcept;
    // Finishes this response first if it is unfinished (as the destructor).
    HttpResponse& operator=(HttpResponse&& o) noexcept;
    // An unfinished response is finished here: 500 if nothing was sent,
    // else its body is ended; a line is logged either way.
    ~HttpResponse();

    int status() const { return status_; }
    // Sets the status; an empty reason, or one with a control character,
    // uses the standard phrase.
    void set_status(int code, std::string_view reason = std::string_view());
    // Sets a header, replacing any of the same name (case-insensitive).
    // False, and nothing set, when the name is not a token or the value
    // holds CR, LF, NUL or another control character but tab (either would
    // let the caller's data forge header lines).
    bool set_header(std::string_view name, std::string_view value);
    // Adds a header (e.g. a second Set-Cookie); false as set_header().
    bool add_header(std::string_view name, std::string_view value);
    const std::string* header(std::string_view name) const;

    // Sends the headers (first call) and one piece of the body. False
    // when the response is empty or finished, or the reply cannot go out
    // (the client went away meanwhile, the output buffer is full).
    bool write(std::string_view data);
    // Finishes the response, with `body` as the whole body (or the last
    // piece after write()). False as write(); the response is finished
    // either way.
    bool end(std::string_view body = std::string_view());
    // Sends length bytes of path from offset as the body (Content-Length
    // is set) and finishes the response. False if the file cannot be read.
    bool sendfile(const std::string& path, uint64_t offset, uint64_t length);
    // Announces the body length before the headers go out: write() then
    // sends the body as it is (no chunking, Content-Length: length) and
    // end() finishes it; the caller sends exactly length bytes (none
    // after HEAD). False once the headers are sent.
    bool set_content_length(uint64_t length);
    // Closes the connection without finishing the response, after what
    // was already sent: the client sees a body cut short, never one
    // passed as complete. For a reply that cannot be finished (its
    // source failed mid-body). False when empty or finished.
    bool abort();
    // Reply bytes queued for this response's connection and not yet
    // written to the socket (0 once the connection is gone): a producer
    // of a long body waits while this is high, as write() fails once
    // ServerConfig::buffer_output_size is reached.
    size_t unsent() const;
    // cb runs once, from the loop, when unsent() is at most `bytes` (at
    // once if it is) or the connection is gone: a producer that paused
    // for a slow client resumes there. It is dropped, uncalled, once the
    // response is finished; a second call replaces it. False when the
    // response is empty or finished.
    bool on_unsent_below(size_t bytes, std::function<void()> cb);

    // A streamed request body (HttpRequest::streamed): reader gets its
    // decoded bytes in order, from the loop, then one call with end true
    // and no data; ok is false there when the body was cut short (the
    // client went away or sent a bad chunk). Once the response is
    // finished or aborted the reader is dropped and the rest of the body
    // is discarded (the connection then closes after the reply). False
    // when the request's body is not streamed or is already over.
    using BodyReader = std::function<void(std::string_view data, bool end, bool ok)>;
    bool read_body(BodyReader reader);
    // Stops (false) or resumes (true) the reader's calls: flow control
    // for a consumer that falls behind. Stopped, at most
    // HttpConfig::stream_window bytes wait and the client is not read.
    bool set_body_reading(bool on);

    bool headers_sent() const { return headers_sent_; }
    bool finished() const { return finished_; }
    bool keep_alive() const { return keep_alive_; }
    SessionId session() const { return session_; }
    // std::move(*this): hands the duty to finish this response to the
    // returned object.
    HttpResponse detach();

    static const char* reason_phrase(int code);

private:
    friend class HttpServer;
    std::string_view head(long long content_length);  // built in the server's scratch buffer
    void reset(HttpServer* srv, SessionId s, uint32_t seq);
    bool send(std::string_view head, std::string_view body, bool last);
    void abandon();  // finishes an unfinished response nobody will finish
    void done();     // finished: a streamed request body is dropped

    HttpServer* srv_ = nullptr;
    SessionId session_ = 0;
    uint32_t seq_ = 0;  // the request's sequence number on its connection
    int status_ = 200;
    std::string reason_;
    // Header fields set; fields_[nfields_, size()) are spare entries kept
    // for their string capacity, so a response allocates nothing for
    // fields the previous ones had.
    struct Field {
        std::string name, value;
        bool framing;  // Content-Length, Transfer-Encoding or Connection: the server writes those
    };
    std::vector<Field> fields_;
    size_t nfields_ = 0;
    void new_field(std::string_view name, std::string_view value);
    int minor_ = 1;
    bool head_only_ = false;   // HEAD request: no body bytes
    bool streamed_ = false;    // the request's body is streamed (HttpRequest::streamed)
    bool keep_alive_ = true;
    bool chunked_ = false;
    long long content_length_ = -1;  // set_content_length(), or -1
    bool headers_sent_ = false;
    bool finished_ = false;
    // For the access log: the request (while on_request runs) and its
    // request line, or what the log needs of them once detached; the
    // loop time it arrived at, and the bytes of head and of all sent.
    const HttpRequest* req_ = nullptr;
    std::string_view line_;
    std::shared_ptr<const AccessRecord> record_;
    long long start_ms_ = 0;
    uint64_t head_bytes_ = 0;
    uint64_t sent_bytes_ = 0;
};

}  // namespace zan

#endif
