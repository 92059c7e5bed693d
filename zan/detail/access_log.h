// AccessLog: the HTTP access log of one process, one line per response
// in nginx's "combined" format followed by the request time:
//   $remote_addr - $remote_user [$time_local] "$request" $status
//   $body_bytes_sent "$http_referer" "$http_user_agent" $request_time
// A Worker writes the lines of the responses it finishes, a NetWorker
// those of the requests it refuses itself (400, 408, 413, 414, 431, 501,
// 505) and of the 503s it sends when a Worker dies. Lines go through a
// LineLog (whole lines, O_APPEND, shared with the other processes),
// flushed when its buffer fills, at most a second after a line entered
// an empty buffer (a timer on the process's loop) and on close(). The
// time string is made once per second, and the clock read once per loop
// pass. Owns its LineLog; made per process after fork.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_ACCESS_LOG_H
#define ZAN_DETAIL_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <string>
#include <string_view>

#include "zan/event_loop.h"
#include "zan/detail/line_log.h"

namespace zan {

class AccessLog {
public:
    // The variables of one line; an empty view is written as "-".
    struct Entry {
        std::string_view remote_addr;
        std::string_view remote_user;
        std::string_view request;  // the request line
        int status = 0;
        uint64_t body_bytes = 0;
        std::string_view referer;
        std::string_view user_agent;
        long long request_ms = 0;
    };

    AccessLog() = default;
    ~AccessLog() { close(); }
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    // Opens path; loop (may be null) runs the flush timer and gives the
    // time of the current pass. False with errno.
    bool open(const std::string& path, EventLoop* loop);
    // Flushes, then opens the same path again (after rotation).
    bool reopen();
    // Flushes and closes.
    void close();
    bool is_open() const { return file_.is_open(); }
    EventLoop* loop() const { return loop_; }

    void write(const Entry& e);
    bool flush() { return file_.flush(); }
    uint64_t dropped_lines() const { return file_.dropped_lines(); }

    // The pieces, public for tests. max_line() bounds what format() writes.
    static size_t max_line(const Entry& e, size_t time_len);
    static char* format(char* out, const Entry& e, std::string_view time_local);
    // v between the quotes, escaped as nginx does: '"', '\\', control
    // bytes and bytes >= 0x7f as \xHH; "-" when v is empty.
    static char* escape(char* out, std::string_view v);
    // "05/Dec/2026:12:22:04 +0000" (local time); returns its length.
    static size_t time_local(time_t t, char* out, size_t size);
    // The request line at the start of a message (empty lines before it
    // skipped), or what there is of it.
    static std::string_view request_line(const char* data, size_t n);
    // The user name of "Basic" credentials (Authorization), else "".
    static std::string basic_user(std::string_view authorization);
    // The address text of a peer ("127.0.0.1", "::1"); returns its length.
    // out holds at least kAddrMax bytes.
    static constexpr size_t kAddrMax = 48;
    static size_t addr_text(const struct sockaddr* sa, socklen_t len, char* out);

private:
    std::string_view now();

    LineLog file_;
    EventLoop* loop_ = nullptr;
    EventLoop::TimerId flush_timer_ = 0;
    long long clock_pass_ = -1;  // loop time of the pass the clock was read in
    time_t clock_sec_ = -1;
    char time_[48] = "";
    size_t time_len_ = 0;
};

// What an access log line needs of a request, kept by a detached
// HttpResponse (the request is the server's again once on_request returns).
struct AccessRecord {
    std::string remote_addr, remote_user, request, referer, user_agent;
};

}  // namespace zan

#endif
