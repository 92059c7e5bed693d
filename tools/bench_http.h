// zan-bench's HTTP side for a load run: the GET request it sends, and an
// incremental reader that finds where each response on a keep-alive
// connection ends (Content-Length or chunked body, interim 1xx heads
// skipped) and checks that it is a 200. Responses come in request order
// (RFC 9112, section 9.3.2), so the n-th complete response answers the
// n-th request in flight. No socket here: zan-bench.cc feeds the bytes.
#ifndef ZAN_TOOLS_BENCH_HTTP_H
#define ZAN_TOOLS_BENCH_HTTP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <string>

#include "tools/bench_options.h"

namespace zan_bench {

// "GET <path> HTTP/1.1" with the Host the server was given; the same bytes
// for every request of a run.
inline std::string http_request(const Options& o)
{
    std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
    return "GET " + o.path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(o.port) +
           "\r\n\r\n";
}

// Reads the responses of one connection. One per connection, reset when the
// connection is opened again.
class HttpReplies {
public:
    void reset()
    {
        st_ = kHead;
        line_.clear();
        left_ = 0;
        close_ = false;
    }

    // Takes n more bytes: the number of responses they completed, or -1
    // with the reason in *why when they are not a well-framed 200.
    int feed(const char* p, size_t n, std::string* why)
    {
        int done = 0;
        size_t k = 0;
        while (k < n) {
            if (st_ == kBody || st_ == kChunk) {  // body bytes: skipped in bulk
                size_t take = left_ < n - k ? static_cast<size_t>(left_) : n - k;
                k += take;
                left_ -= take;
                if (left_ == 0 && st_ == kBody) {
                    st_ = kHead;
                    done++;
                } else if (left_ == 0) {
                    st_ = kChunkEnd;
                }
                continue;
            }
            char ch = p[k++];
            line_.push_back(ch);
            if (line_.size() > kMaxHead) {
                *why = "HTTP response head or chunk line over 64 KiB";
                return -1;
            }
            if (ch != '\n')
                continue;
            int r = end_of_line(why);
            if (r < 0)
                return -1;
            done += r;
        }
        return done;
    }

    // Whether the last complete response said the server closes after it.
    bool closing() const { return close_; }

private:
    enum State { kHead, kBody, kChunkSize, kChunk, kChunkEnd, kTrailer };
    static constexpr size_t kMaxHead = 64 * 1024;

    // line_ ends with '\n': the head is complete when it ends with an empty
    // line; a chunk size line, the CRLF after a chunk or a trailer line is
    // complete now. Returns 1 when a response ended, 0, or -1.
    int end_of_line(std::string* why)
    {
        if (st_ == kHead) {
            size_t n = line_.size();
            if (n == 2 && line_ == "\r\n") {  // tolerated before a head
                line_.clear();
                return 0;
            }
            if (n < 4 || line_.compare(n - 4, 4, "\r\n\r\n") != 0)
                return 0;
            int r = head(why);
            line_.clear();
            return r;
        }
        std::string l;
        l.swap(line_);
        if (l.size() < 2 || l[l.size() - 2] != '\r') {
            *why = "HTTP chunk line does not end with CRLF";
            return -1;
        }
        if (st_ == kChunkEnd) {
            if (l != "\r\n") {
                *why = "HTTP chunk data is longer than its size";
                return -1;
            }
            st_ = kChunkSize;
            return 0;
        }
        if (st_ == kTrailer) {
            if (l != "\r\n")
                return 0;
            st_ = kHead;
            return 1;
        }
        char* end = nullptr;  // kChunkSize: hex digits, then ';' extensions or CRLF
        unsigned long long size = strtoull(l.c_str(), &end, 16);
        if (end == l.c_str() || (*end != ';' && *end != '\r') || size > (1ULL << 40)) {
            *why = "bad HTTP chunk size line";
            return -1;
        }
        left_ = size;
        st_ = size ? kChunk : kTrailer;
        return 0;
    }

    // The head in line_: 0 after an interim 1xx, 1 after a response
    // without a body, else 0 with the body to come; -1 if it is not a 200
    // whose end can be found.
    int head(std::string* why)
    {
        const std::string& h = line_;
        if (h.compare(0, 7, "HTTP/1.") != 0 || h.size() < 13 || h[8] != ' ') {
            *why = "not an HTTP/1.x status line";
            return -1;
        }
        int status = atoi(h.c_str() + 9);
        if (status >= 100 && status < 200 && status != 101)
            return 0;
        if (status != 200) {
            *why = "HTTP status " + std::to_string(status) + ", expected 200";
            return -1;
        }
        bool chunked = false, have_len = false, keep_alive = h[7] == '1';
        unsigned long long len = 0;
        for (size_t at = h.find("\r\n"); at + 4 < h.size(); at = h.find("\r\n", at + 2)) {
            const char* f = h.c_str() + at + 2;
            size_t eol = h.find("\r\n", at + 2);
            std::string v = field_value(f, h.c_str() + eol);
            if (strncasecmp(f, "content-length:", 15) == 0) {
                char* end = nullptr;
                len = strtoull(v.c_str(), &end, 10);
                if (v.empty() || *end) {
                    *why = "bad Content-Length: " + v;
                    return -1;
                }
                have_len = true;
            } else if (strncasecmp(f, "transfer-encoding:", 18) == 0) {
                chunked = strcasestr(v.c_str(), "chunked") != nullptr;
            } else if (strncasecmp(f, "connection:", 11) == 0) {
                if (strcasestr(v.c_str(), "close"))
                    keep_alive = false;
                else if (strcasestr(v.c_str(), "keep-alive"))
                    keep_alive = true;
            }
        }
        close_ = !keep_alive;
        if (chunked) {
            st_ = kChunkSize;
            return 0;
        }
        if (!have_len) {
            *why = "HTTP response with neither Content-Length nor chunked body";
            return -1;
        }
        if (len == 0)
            return 1;
        left_ = len;
        st_ = kBody;
        return 0;
    }

    // The value of the field that starts at f and ends at eol, without the
    // name and the blanks around it.
    static std::string field_value(const char* f, const char* eol)
    {
        const char* v = static_cast<const char*>(memchr(f, ':', static_cast<size_t>(eol - f)));
        if (!v)
            return std::string();
        for (v++; v < eol && (*v == ' ' || *v == '\t'); v++) {
        }
        while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
            eol--;
        return std::string(v, static_cast<size_t>(eol - v));
    }

    State st_ = kHead;
    std::string line_;  // the head, or a chunk line, so far
    unsigned long long left_ = 0;
    bool close_ = false;
};

}  // namespace zan_bench

#endif
