#include "t/http_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>

#include <sstream>

#include "t/test_env.h"

namespace zt {

static bool iequals(const std::string& a, const std::string& b)
{
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

static std::string trim(const std::string& s)
{
    size_t a = 0, b = s.size();
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    return s.substr(a, b - a);
}

const std::string* HttpReply::header(const std::string& name) const
{
    for (const auto& h : headers)
        if (iequals(h.first, name))
            return &h.second;
    return nullptr;
}

int HttpReply::count(const std::string& name) const
{
    int n = 0;
    for (const auto& h : headers)
        n += iequals(h.first, name);
    return n;
}

bool HttpReply::closes() const
{
    for (const auto& h : headers) {
        if (!iequals(h.first, "Connection"))
            continue;
        std::istringstream in(h.second);
        std::string tok;
        while (std::getline(in, tok, ','))
            if (iequals(trim(tok), "close"))
                return true;
    }
    return false;
}

// De-chunks buf[pos...]; returns the end offset, 0 if incomplete, -1 if bad.
static long dechunk(const std::string& buf, size_t pos, std::string* body)
{
    for (;;) {
        size_t eol = buf.find("\r\n", pos);
        if (eol == std::string::npos)
            return 0;
        std::string line = buf.substr(pos, eol - pos);
        size_t semi = line.find(';');
        std::string hex = trim(semi == std::string::npos ? line : line.substr(0, semi));
        if (hex.empty() || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
            return -1;
        unsigned long long n = strtoull(hex.c_str(), nullptr, 16);
        pos = eol + 2;
        if (n == 0) {
            for (;;) {  // trailer section up to an empty line
                size_t e = buf.find("\r\n", pos);
                if (e == std::string::npos)
                    return 0;
                bool empty = e == pos;
                pos = e + 2;
                if (empty)
                    return static_cast<long>(pos);
            }
        }
        if (buf.size() < pos + n + 2)
            return 0;
        body->append(buf, pos, n);
        if (buf.compare(pos + n, 2, "\r\n") != 0)
            return -1;
        pos += n + 2;
    }
}

long parse_http_reply(const std::string& buf, size_t pos, bool head, bool eof, HttpReply* out)
{
    if (buf.size() - pos >= 5 && buf.compare(pos, 5, "HTTP/") != 0)
        return -1;
    size_t end = buf.find("\r\n\r\n", pos);
    if (end == std::string::npos)
        return 0;
    HttpReply r;
    std::istringstream in(buf.substr(pos, end + 2 - pos));
    std::string line;
    if (!std::getline(in, line) || line.empty() || line.back() != '\r')
        return -1;
    line.pop_back();
    size_t sp1 = line.find(' ');
    if (sp1 == std::string::npos || line.size() < sp1 + 4)
        return -1;
    r.version = line.substr(0, sp1);
    r.status = atoi(line.c_str() + sp1 + 1);
    r.reason = line.size() > sp1 + 5 ? line.substr(sp1 + 5) : std::string();
    if (r.status < 100 || r.status > 999)
        return -1;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty())
            continue;
        size_t colon = line.find(':');
        if (colon == std::string::npos)
            return -1;
        r.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
    }
    size_t body_at = end + 4;
    long total;
    const std::string* te = r.header("Transfer-Encoding");
    const std::string* cl = r.header("Content-Length");
    if (head || r.status < 200 || r.status == 204 || r.status == 304) {
        total = static_cast<long>(body_at);
    } else if (te) {
        total = dechunk(buf, body_at, &r.body);
        if (total <= 0)
            return total;
    } else if (cl) {
        size_t n = strtoull(cl->c_str(), nullptr, 10);
        if (buf.size() < body_at + n)
            return 0;
        r.body = buf.substr(body_at, n);
        total = static_cast<long>(body_at + n);
    } else {
        if (!eof)
            return 0;  // close-delimited
        r.body = buf.substr(body_at);
        total = static_cast<long>(buf.size());
    }
    r.wire_bytes = static_cast<size_t>(total) - pos;
    *out = std::move(r);
    return total - static_cast<long>(pos);
}

bool HttpReader::fill(long long deadline)
{
    if (eof_)
        return false;
    int left = static_cast<int>(deadline - now_ms());
    if (left <= 0 || !wait_fd(fd_, POLLIN, left))
        return false;
    char tmp[65536];
    for (;;) {
        ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            eof_ = true;
            reset_ = errno == ECONNRESET;
            return false;
        }
        if (n == 0) {
            eof_ = true;
            return false;
        }
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }
}

bool HttpReader::next(HttpReply* r, bool head, int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        if (!buf_.empty()) {
            long n = parse_http_reply(buf_, 0, head, eof_, r);
            if (n < 0) {
                bad_ = true;
                return false;
            }
            if (n > 0) {
                buf_.erase(0, static_cast<size_t>(n));
                return true;
            }
        }
        if (eof_ || !fill(deadline)) {
            if (eof_ && !buf_.empty()) {  // a close-delimited body ends here
                long n = parse_http_reply(buf_, 0, head, true, r);
                if (n > 0) {
                    buf_.erase(0, static_cast<size_t>(n));
                    return true;
                }
            }
            return false;
        }
    }
}

bool HttpReader::closed(int timeout_ms)
{
    long long deadline = now_ms() + scaled(timeout_ms);
    while (!eof_)
        if (!fill(deadline) && !eof_)
            return false;
    return true;
}

bool HttpReader::quiet(int ms)
{
    size_t had = buf_.size();
    long long deadline = now_ms() + ms;
    while (!eof_ && now_ms() < deadline)
        fill(deadline);
    return !eof_ && buf_.size() == had;
}

std::string http_date(time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

}  // namespace zt
