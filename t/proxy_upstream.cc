#include "t/proxy_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "t/test_env.h"

namespace zt {

std::string pattern(size_t n)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i)
        s[i] = pattern_byte(i);
    return s;
}

static bool send_all(int fd, const char* p, size_t n)
{
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

static bool send_all(int fd, const std::string& s) { return send_all(fd, s.data(), s.size()); }

// The value of field `name` in a header section, "" when absent.
static std::string field_of(const std::string& head, const std::string& name, bool* found)
{
    if (found)
        *found = false;
    size_t at = 0;
    while ((at = head.find("\r\n", at)) != std::string::npos) {
        at += 2;
        size_t colon = head.find(':', at);
        size_t eol = head.find("\r\n", at);
        if (colon == std::string::npos || eol == std::string::npos || colon > eol)
            continue;
        if (colon - at == name.size() && strncasecmp(head.data() + at, name.data(), name.size()) == 0) {
            size_t v = colon + 1;
            while (v < eol && (head[v] == ' ' || head[v] == '\t'))
                ++v;
            if (found)
                *found = true;
            return head.substr(v, eol - v);
        }
    }
    return "";
}

ProxyUpstream::ProxyUpstream()
{
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(lfd_, 512) == 0) {
        socklen_t len = sizeof a;
        getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    acceptor_ = std::thread([this] { accept_loop(); });
}

ProxyUpstream::~ProxyUpstream()
{
    stop_ = true;
    acceptor_.join();
    {
        std::lock_guard<std::mutex> g(mu_);
        for (int fd : fds_)
            shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : threads_)
        t.join();
    for (int fd : fds_)
        close(fd);
    close(lfd_);
}

std::string ProxyUpstream::last_head() const
{
    std::lock_guard<std::mutex> g(mu_);
    return last_head_;
}

void ProxyUpstream::accept_loop()
{
    while (!stop_) {
        pollfd p = {lfd_, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        ++accepted_;
        int one = 1;  // a head and a body in two writes must not wait for an ACK
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard<std::mutex> g(mu_);
        fds_.push_back(fd);
        threads_.emplace_back([this, fd] {
            serve(fd);
            std::lock_guard<std::mutex> g2(mu_);
            shutdown(fd, SHUT_RDWR);
        });
    }
}

// Waits for input (or the end) with a short poll, so stop_ is seen.
static ssize_t recv_some(int fd, char* buf, size_t n, const std::atomic<bool>& stop)
{
    while (!stop) {
        pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20) > 0)
            return recv(fd, buf, n, 0);
    }
    return -1;
}

void ProxyUpstream::serve(int fd)
{
    std::string buf;
    std::vector<char> tmp(1 << 16);
    for (;;) {
        size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
            ssize_t n = recv_some(fd, tmp.data(), tmp.size(), stop_);
            if (n <= 0) {
                if (n == 0 || !stop_)
                    ++closed_;
                return;
            }
            buf.append(tmp.data(), static_cast<size_t>(n));
        }
        std::string head = buf.substr(0, end + 4);
        buf.erase(0, end + 4);
        // More input, or the connection is over (counted as closed).
        auto more = [&]() {
            ssize_t n = recv_some(fd, tmp.data(), tmp.size(), stop_);
            if (n <= 0) {
                if (n == 0 || !stop_)
                    ++closed_;
                return false;
            }
            buf.append(tmp.data(), static_cast<size_t>(n));
            return true;
        };
        std::string body;
        if (field_of(head, "Transfer-Encoding", nullptr).find("chunked") != std::string::npos) {
            // size CRLF data CRLF ... 0 CRLF (no trailers) CRLF
            for (;;) {
                size_t eol;
                while ((eol = buf.find("\r\n")) == std::string::npos)
                    if (!more())
                        return;
                size_t size = strtoul(buf.c_str(), nullptr, 16);
                buf.erase(0, eol + 2);
                while (buf.size() < size + 2)
                    if (!more())
                        return;
                body.append(buf, 0, size);
                buf.erase(0, size + 2);
                if (size == 0)
                    break;
            }
        } else {
            size_t len = static_cast<size_t>(atoll(field_of(head, "Content-Length", nullptr).c_str()));
            while (buf.size() < len)
                if (!more())
                    return;
            body = buf.substr(0, len);
            buf.erase(0, len);
        }
        ++requests_;
        {
            std::lock_guard<std::mutex> g(mu_);
            last_head_ = head;
        }
        if (!answer(fd, head, body))
            return;
    }
}

// False when the connection is to end.
bool ProxyUpstream::answer(int fd, const std::string& head, const std::string& body)
{
    size_t sp = head.find(' ');
    std::string method = head.substr(0, sp);
    std::string target = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
    bool is_head = method == "HEAD";
    if (target.compare(0, 3, "/n/") == 0) {
        size_t n = static_cast<size_t>(atoll(target.c_str() + 3));
        std::string h = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                        std::to_string(n) + "\r\n\r\n";
        if (!send_all(fd, h))
            return false;
        if (is_head)
            return true;
        for (size_t off = 0; off < n;) {
            // pattern(i) depends on i: send each block at its offset.
            size_t k = std::min(n - off, static_cast<size_t>(1) << 16);
            std::string piece(k, '\0');
            for (size_t i = 0; i < k; ++i)
                piece[i] = pattern_byte(off + i);
            if (!send_all(fd, piece))
                return false;
            off += k;
        }
        return true;
    }
    if (target.compare(0, 3, "/c/") == 0) {
        size_t n = static_cast<size_t>(atoll(target.c_str() + 3));
        if (!send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
            return false;
        if (is_head)
            return true;
        for (size_t off = 0; off < n;) {
            size_t k = std::min(n - off, static_cast<size_t>(1) << 16);
            char size[32];
            snprintf(size, sizeof size, "%zx\r\n", k);
            std::string piece(size);
            for (size_t i = 0; i < k; ++i)
                piece.push_back(pattern_byte(off + i));
            piece += "\r\n";
            if (!send_all(fd, piece))
                return false;
            off += k;
        }
        return send_all(fd, "0\r\n\r\n");
    }
    if (target == "/echo") {
        return send_all(fd, "HTTP/1.1 200 OK\r\nX-Head-Bytes: " + std::to_string(head.size()) +
                                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n") &&
               send_all(fd, body);
    }
    if (target == "/head")
        return send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(head.size()) + "\r\n\r\n" +
                                (is_head ? "" : head));
    if (target == "/hop")
        return send_all(fd, "HTTP/1.1 200 OK\r\nConnection: X-Resp-Trace, keep-alive\r\nKeep-Alive: timeout=5\r\n"
                            "X-Resp-Trace: 1\r\nX-Kept: 1\r\nServer: upstream\r\nContent-Length: 2\r\n\r\nok");
    if (target == "/204")
        return send_all(fd, "HTTP/1.1 204 No Content\r\nX-Kept: 1\r\n\r\n");
    if (target == "/304")
        return send_all(fd, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 123\r\n\r\n");
    if (target == "/hang") {
        char c[256];  // until the peer (or the test) ends it
        ssize_t n;
        while ((n = recv_some(fd, c, sizeof c, stop_)) > 0) {
        }
        if (n == 0)
            ++closed_;
        return false;
    }
    if (target == "/cut") {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + pattern(100000));
        return false;
    }
    if (target == "/cutc") {
        send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n" + pattern(100000) + "\r\n");
        return false;
    }
    if (target == "/garbage") {
        send_all(fd, "THIS IS NOT HTTP\r\n\r\n");
        return false;
    }
    return send_all(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

static Reply read_one(int fd, const std::string& method, int timeout_ms, std::string& buf);

std::string Reply::field(const std::string& name, bool* found) const { return field_of(head, name, found); }

Reply read_reply(int fd, const std::string& method, int timeout_ms, std::string* rest)
{
    std::string buf;
    if (rest)
        buf.swap(*rest);
    Reply r = read_one(fd, method, timeout_ms, buf);
    if (rest)
        rest->swap(buf);
    return r;
}

// read_reply() with buf holding the bytes read ahead, and left holding
// those past the response.
static Reply read_one(int fd, const std::string& method, int timeout_ms, std::string& buf)
{
    Reply r;
    long long deadline = now_ms() + scaled(timeout_ms);
    std::vector<char> tmp(1 << 16);
    // Reads more into buf; false at EOF, error or the deadline.
    auto more = [&]() {
        long long left = deadline - now_ms();
        if (left <= 0 || !wait_fd(fd, POLLIN, static_cast<int>(left)))
            return false;
        ssize_t n = recv(fd, tmp.data(), tmp.size(), 0);
        if (n <= 0) {
            r.closed = true;
            return false;
        }
        buf.append(tmp.data(), static_cast<size_t>(n));
        return true;
    };
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
        if (!more())
            return r;
    r.head = buf.substr(0, end + 4);
    buf.erase(0, end + 4);
    r.status = atoi(r.head.c_str() + 9);
    bool has_len;
    std::string len = r.field("Content-Length", &has_len);
    if (has_len)
        r.length = atoll(len.c_str());
    r.chunked = r.field("Transfer-Encoding").find("chunked") != std::string::npos;
    if (method == "HEAD" || r.status == 204 || r.status == 304 || r.status < 200) {
        r.complete = true;
        return r;
    }
    if (r.chunked) {
        for (;;) {
            size_t eol;
            while ((eol = buf.find("\r\n")) == std::string::npos)
                if (!more())
                    return r;
            size_t n = strtoul(buf.c_str(), nullptr, 16);
            if (n == 0) {  // the last chunk; no trailers expected
                while (buf.find("\r\n\r\n") == std::string::npos)
                    if (!more())
                        return r;
                r.complete = true;
                return r;
            }
            while (buf.size() < eol + 2 + n + 2)
                if (!more())
                    return r;
            r.body.append(buf, eol + 2, n);
            buf.erase(0, eol + 2 + n + 2);
        }
    }
    if (r.length >= 0) {
        size_t want = static_cast<size_t>(r.length);
        r.body.reserve(want);
        for (;;) {
            size_t take = std::min(buf.size(), want - r.body.size());
            r.body.append(buf, 0, take);
            buf.erase(0, take);
            if (r.body.size() == want) {
                r.complete = true;
                return r;
            }
            if (!more())
                return r;
        }
    }
    while (more()) {
    }
    r.body.swap(buf);
    buf.clear();
    r.complete = r.closed;
    return r;
}

}  // namespace zt
