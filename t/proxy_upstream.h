// ProxyUpstream: a small HTTP/1.1 origin server on 127.0.0.1 for the
// reverse-proxy tests (one thread per connection, blocking sockets), whose
// answers the tests choose by target, and which counts the connections it
// has seen opened and closed. Plus read_reply(), a client-side reader of
// one response (Content-Length, chunked or close-delimited) that also
// tells whether the body was complete.
#ifndef ZAN_T_PROXY_UPSTREAM_H
#define ZAN_T_PROXY_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zt {

// The byte at offset i of every generated body (not periodic in any
// small power of two, so a shifted or repeated block shows).
inline char pattern_byte(size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }
std::string pattern(size_t n);

// Answers by target:
//   /n/N         N pattern bytes with Content-Length (HEAD: the head only)
//   /c/N         N pattern bytes, chunked in pieces of up to 64 KiB
//   /echo        the request body (sent with a length or chunked) back,
//                with Content-Length; the request head is in the
//                X-Body-Bytes header as its length
//   /head        the request's header section as the body
//   /hop         a response with hop-by-hop fields, one named in Connection
//   /204, /304   those statuses
//   /hang        reads the request and never answers
//   /cut         Content-Length 1000000, 100000 bytes, then close
//   /cutc        chunked 100000 bytes, then close without the last chunk
//   /garbage     a line that is not HTTP, then close
// anything else 404.
class ProxyUpstream {
public:
    ProxyUpstream();
    ~ProxyUpstream();
    ProxyUpstream(const ProxyUpstream&) = delete;
    ProxyUpstream& operator=(const ProxyUpstream&) = delete;

    int port() const { return port_; }
    int accepted() const { return accepted_; }
    int closed() const { return closed_; }  // connections the peer ended
    int requests() const { return requests_; }
    std::string last_head() const;           // the last request's header section

private:
    void accept_loop();
    void serve(int fd);
    bool answer(int fd, const std::string& head, const std::string& body);

    int lfd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0}, closed_{0}, requests_{0};
    mutable std::mutex mu_;
    std::string last_head_;
    std::vector<int> fds_;  // closed by the destructor only
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

struct Reply {
    int status = 0;
    std::string head;        // status line and fields
    std::string body;        // de-chunked
    bool complete = false;   // the framing said the body ended
    bool closed = false;     // the connection ended (EOF or reset)
    bool chunked = false;
    long long length = -1;   // Content-Length, or -1
    // First field of that name (case-insensitive), or "" with *found false.
    std::string field(const std::string& name, bool* found = nullptr) const;
};

// Reads one response from fd (to a request of `method`) within
// timeout_ms: status 0 when no head came. With pipelined requests, pass
// the same `rest` to every call: bytes read past one response are kept
// there for the next.
Reply read_reply(int fd, const std::string& method = "GET", int timeout_ms = 5000,
                 std::string* rest = nullptr);

}  // namespace zt

#endif
