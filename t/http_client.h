// The small HTTP/1.x client of the tests: a response parser that keeps
// what came off the wire (HttpReply, parse_http_reply), a reader of
// responses on one connection (HttpReader) and a connection that owns
// its socket (HttpClient).
#ifndef ZAN_T_HTTP_CLIENT_H
#define ZAN_T_HTTP_CLIENT_H

#include <stddef.h>
#include <time.h>

#include <string>
#include <utility>
#include <vector>

#include "t/net_helpers.h"

namespace zt {

// One HTTP/1.x response as read off the wire.
struct HttpReply {
    std::string version;  // "HTTP/1.1"
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;  // in order, values trimmed
    std::string body;  // de-chunked
    size_t wire_bytes = 0;  // bytes the response took on the wire
    // First header with this name (case-insensitive), or nullptr.
    const std::string* header(const std::string& name) const;
    int count(const std::string& name) const;
    // The Connection header holds the token "close".
    bool closes() const;
};

// Parses one response at buf[pos]. `head`: it answers a HEAD request (no
// body whatever the headers say); `eof`: the peer has closed (ends a
// close-delimited body). Returns the bytes it took, 0 when buf does not
// hold all of it yet, -1 when the bytes are not an HTTP response.
long parse_http_reply(const std::string& buf, size_t pos, bool head, bool eof, HttpReply* out);

// Reads responses off one connection; it does not own the descriptor.
class HttpReader {
public:
    explicit HttpReader(int fd) : fd_(fd) {}
    // The next response, interim (1xx) ones included. False on EOF,
    // reset, timeout or bytes that are not a response (see eof(), bad()).
    bool next(HttpReply* r, bool head = false, int timeout_ms = 5000);
    // True once the peer closed (EOF or ECONNRESET).
    bool eof() const { return eof_; }
    bool reset() const { return reset_; }
    bool bad() const { return bad_; }
    // Bytes received and not (yet) part of a response.
    const std::string& pending() const { return buf_; }
    // Waits until the peer closes; true if it did within timeout_ms.
    // Anything received meanwhile is kept in pending().
    bool closed(int timeout_ms);
    // True if for ms nothing arrives and the peer does not close.
    bool quiet(int ms);

private:
    bool fill(long long deadline);  // one recv; false on EOF/error/timeout
    int fd_;
    std::string buf_;
    bool eof_ = false, reset_ = false, bad_ = false;
};

// A connection to 127.0.0.1:port that reads responses as an HttpReader;
// it owns the socket and closes it at scope exit.
class HttpClient : public HttpReader {
public:
    HttpClient() : HttpReader(-1) {}  // not connected: assign one later
    explicit HttpClient(int port, int timeout_ms = 3000)
        : HttpClient(Sock(connect_local(port, timeout_ms))) {}
    bool ok() const { return sock_.ok(); }
    int fd() const { return sock_.get(); }
    bool send(const std::string& raw) { return send_str(sock_.get(), raw); }
    // Sends `raw` and reads the next response into *r.
    bool request(const std::string& raw, HttpReply* r, bool head = false, int timeout_ms = 5000)
    {
        return send(raw) && next(r, head, timeout_ms);
    }

private:
    explicit HttpClient(Sock s) : HttpReader(s.get()), sock_(std::move(s)) {}
    Sock sock_;
};

// t as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(time_t t);

}  // namespace zt

#endif
