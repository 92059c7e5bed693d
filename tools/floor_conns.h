// floor_conns.h: the connection table of the two floors `make bench`
// measures zan against, zan-baseline and zan-hopfloor. A level-triggered
// epoll table indexed by descriptor: read into one shared buffer, keep a
// heap buffer only while a message is partial or a write is pending (and
// give it back once empty), write at once and wait for EPOLLOUT only for
// what the socket did not take. Also the fixed HTTP answers and the
// search for complete request heads both floors use.
//
// Owns the accepted descriptors it holds (close() and the destructor
// close them); the epoll descriptor belongs to the caller.
#ifndef ZAN_TOOLS_FLOOR_CONNS_H
#define ZAN_TOOLS_FLOOR_CONNS_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "zan/fd.h"
#include "zan/socket.h"

namespace zan_floor {

const char kHello[] =
    "HTTP/1.1 200 OK\r\nServer: zan-floor\r\nContent-Type: text/plain\r\n"
    "Content-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n";
const char kNotFound[] =
    "HTTP/1.1 404 Not Found\r\nServer: zan-floor\r\nContent-Type: text/plain\r\n"
    "Content-Length: 10\r\nConnection: keep-alive\r\n\r\nnot found\n";

// Bytes at p taken by complete request heads ("...\r\n\r\n"); the rest is
// a partial head. Bodies are not supported: a floor, not a server.
inline size_t complete_heads(const char* p, size_t n)
{
    size_t used = 0;
    while (used < n) {
        const void* end = memmem(p + used, n - used, "\r\n\r\n", 4);
        if (!end)
            break;
        used = static_cast<size_t>(static_cast<const char*>(end) - p) + 4;
    }
    return used;
}

// Appends the answer to each complete head in [p, p+n): hello for "GET / ",
// 404 for anything else.
inline void answer_heads(const char* p, size_t n, std::string* out)
{
    for (size_t at = 0; at < n;) {
        const void* end = memmem(p + at, n - at, "\r\n\r\n", 4);
        size_t next = end ? static_cast<size_t>(static_cast<const char*>(end) - p) + 4 : n;
        bool hello = n - at >= 6 && memcmp(p + at, "GET / ", 6) == 0;
        out->append(hello ? kHello : kNotFound, hello ? sizeof kHello - 1 : sizeof kNotFound - 1);
        at = next;
    }
}

// accept4() one connection. On EMFILE/ENFILE the spare descriptor (one
// on /dev/null, kept open for this) is given up to accept the client and
// close it at once, so that the level-triggered listening socket does not
// stay readable for ever; then the spare is taken back. Returns the
// descriptor or -1 (nothing to accept, or a client refused so).
inline int accept_one(int listen_fd, zan::Fd* spare)
{
    int fd = zan::accept_conn(listen_fd, nullptr);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && *spare) {
        spare->reset();
        zan::Fd refused(zan::accept_conn(listen_fd, nullptr));
        refused.reset();
        spare->reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        errno = EMFILE;
    }
    return fd;
}

inline int epoll_add(int ep, int fd, uint32_t events)
{
    struct epoll_event ev = {};
    ev.events = events;
    ev.data.fd = fd;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

struct Conn {
    bool open = false;
    bool want_out = false;
    bool eof = false;  // the client half-closed: close once all is answered
    uint32_t inflight = 0;  // requests handed on whose replies are due (hop floor)
    uint32_t gen = 0;  // counts the connections this slot has held
    std::string in;    // a partial message
    std::string out;   // reply bytes the socket did not take yet
};

class ConnTable {
public:
    static constexpr size_t kMaxPending = 1 << 20;  // a larger partial message closes

    ConnTable() = default;
    ConnTable(const ConnTable&) = delete;
    ConnTable& operator=(const ConnTable&) = delete;
    ~ConnTable()
    {
        for (size_t fd = 0; fd < conns_.size(); fd++)
            if (conns_[fd].open)
                close(static_cast<int>(fd));
    }

    void attach(int ep) { ep_ = ep; }
    Conn& operator[](int fd) { return conns_[static_cast<size_t>(fd)]; }
    bool is_open(int fd) const { return fd >= 0 && static_cast<size_t>(fd) < conns_.size() && conns_[static_cast<size_t>(fd)].open; }
    uint32_t gen(int fd) const { return conns_[static_cast<size_t>(fd)].gen; }
    bool wants_out(int fd) const { return !conns_[static_cast<size_t>(fd)].out.empty(); }
    size_t open_count() const { return open_; }

    // Takes an accepted descriptor (closes it if epoll refuses it).
    bool add(int fd)
    {
        if (static_cast<size_t>(fd) >= conns_.size())
            conns_.resize(static_cast<size_t>(fd) + 1024);
        zan::set_tcp_nodelay(fd, true);
        if (epoll_add(ep_, fd, EPOLLIN) < 0) {
            ::close(fd);
            return false;
        }
        Conn& c = conns_[static_cast<size_t>(fd)];
        c.open = true;
        c.gen++;
        open_++;
        return true;
    }

    // One read; then take(p, n) is given the partial message kept so far
    // plus the new bytes and returns how many it used; the rest is kept.
    // Closes on an error or a partial message over kMaxPending. On end of
    // file (a half-close) it stops reading and closes once every reply
    // has been written (see finish()). Returns false when it stopped.
    template <class Take>
    bool read(int fd, Take take)
    {
        Conn& c = conns_[static_cast<size_t>(fd)];
        ssize_t n;
        do
            n = ::read(fd, rbuf_.data(), rbuf_.size());
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n < 0) {
            close(fd);
            return false;
        }
        if (n == 0) {
            c.eof = true;
            set_events(fd, c.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
            finish(fd);
            return false;
        }
        size_t len = static_cast<size_t>(n);
        if (c.in.empty()) {  // the common case: no copy of the request
            size_t used = take(rbuf_.data(), len);
            if (!c.open)
                return false;
            c.in.assign(rbuf_.data() + used, len - used);
        } else {
            c.in.append(rbuf_.data(), len);
            size_t used = take(c.in.data(), c.in.size());
            if (!c.open)
                return false;
            c.in.erase(0, used);
        }
        if (c.in.size() > kMaxPending) {
            close(fd);
            return false;
        }
        if (c.in.empty() && c.in.capacity() > 15)
            std::string().swap(c.in);
        return true;
    }

    // Writes what the socket takes now; queues the rest (after anything
    // already queued, to keep the order) and waits for EPOLLOUT.
    void send(int fd, const char* p, size_t n)
    {
        Conn& c = conns_[static_cast<size_t>(fd)];
        if (!c.out.empty()) {
            c.out.append(p, n);
            return;
        }
        ssize_t w;
        do
            w = ::send(fd, p, n, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN) {
            close(fd);
            return;
        }
        size_t done = w < 0 ? 0 : static_cast<size_t>(w);
        if (done < n) {
            c.out.assign(p + done, n - done);
            set_out(fd, true);
        }
        finish(fd);
    }

    // Closes a half-closed connection once nothing is due or unwritten.
    void finish(int fd)
    {
        Conn& c = conns_[static_cast<size_t>(fd)];
        if (c.open && c.eof && c.out.empty() && c.inflight == 0)
            close(fd);
    }

    void on_writable(int fd)
    {
        Conn& c = conns_[static_cast<size_t>(fd)];
        ssize_t w;
        do
            w = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0) {
            close(fd);
            return;
        }
        c.out.erase(0, static_cast<size_t>(w));
        if (c.out.empty()) {
            std::string().swap(c.out);
            set_out(fd, false);
            finish(fd);
        }
    }

    // Closes the connection; the slot keeps its generation, so a reply
    // still on its way for it can be told from one for the next holder.
    void close(int fd)
    {
        epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        Conn& c = conns_[static_cast<size_t>(fd)];
        uint32_t gen = c.gen;
        c = Conn();
        c.gen = gen;
        open_--;
    }

private:
    void set_out(int fd, bool on)
    {
        Conn& c = conns_[static_cast<size_t>(fd)];
        if (c.want_out == on)
            return;
        uint32_t in = c.eof ? 0u : static_cast<uint32_t>(EPOLLIN);  // EOF stays readable
        set_events(fd, in | (on ? static_cast<uint32_t>(EPOLLOUT) : 0u));
        c.want_out = on;
    }

    void set_events(int fd, uint32_t events)
    {
        struct epoll_event ev = {};
        ev.events = events;
        ev.data.fd = fd;
        epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
    }

    int ep_ = -1;
    size_t open_ = 0;
    std::vector<Conn> conns_;
    std::vector<char> rbuf_ = std::vector<char>(64 * 1024);
};

}  // namespace zan_floor

#endif
