#include "zan/tcp_client.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "zan/detail/connector.h"
#include "zan/socket.h"

namespace zan {

// Buffers keep at most this much capacity once a connection is over.
static constexpr size_t kKeepCapacity = 64 * 1024;

// A callback on the stack. The destructor of the client marks every
// running one dead, so the code that called it returns without touching
// the freed object (the callback may destroy the client).
struct TcpClient::Guard {
    TcpClient* client;
    Guard* prev;
    bool dead = false;

    explicit Guard(TcpClient* c) : client(c), prev(c->guards_) { c->guards_ = this; }
    ~Guard()
    {
        if (!dead)
            client->guards_ = prev;
    }
};

// Runs the callback in *slot, moved out so that it may replace itself or
// destroy the client while it runs; false if the client is gone.
template <class F, class... A>
bool TcpClient::call(F* slot, A&&... args)
{
    if (!*slot)
        return true;
    Guard guard(this);
    uint64_t serial = cb_serial_;
    F cb = std::move(*slot);
    cb(*this, std::forward<A>(args)...);
    if (guard.dead)
        return false;
    if (cb_serial_ == serial)  // not replaced from inside
        *slot = std::move(cb);
    return true;
}

TcpClient::TcpClient(EventLoop& loop) : loop_(loop), connector_(new Connector(loop)) {}

TcpClient::~TcpClient()
{
    for (Guard* g = guards_; g; g = g->prev)
        g->dead = true;
    reset();
}

bool TcpClient::connect(std::string_view host, uint16_t port)
{
    std::optional<InetAddr> addr = resolver_.resolve(host, port, &error_);
    if (!addr) {
        errno = EHOSTUNREACH;
        return false;
    }
    return connect(*addr);
}

bool TcpClient::connect(const InetAddr& addr)
{
    if (state_ != kIdle) {
        errno = state_ == kConnected ? EISCONN : EALREADY;
        error_ = state_ == kConnected ? "already connected" : "already connecting";
        return false;
    }
    reset();  // a failure of the last connection that is still to be told
    in_.clear();
    in_.shrink_if_empty(kKeepCapacity);
    error_.clear();
    peer_ = addr;
    reading_ = true;
    state_ = kConnecting;
    connector_->start(addr, connect_timeout_ms_,
                      [this](Fd fd, int err) { connected(std::move(fd), err); });
    return true;
}

void TcpClient::connected(Fd fd, int err)
{
    if (err != 0) {
        std::string why = "connect() to " + peer_.to_string();
        if (err == ETIMEDOUT && connect_timeout_ms_ > 0)
            why += " timed out after " + std::to_string(connect_timeout_ms_) + " ms";
        else
            why += std::string(" failed: ") + strerror(err);
        fail(err, std::move(why));
        return;
    }
    fd_ = std::move(fd);
    if (!loop_.watch(fd_.get(), kReadable, [this](uint32_t ev) { handle_event(ev); })) {
        fail(errno, std::string("watching the connection failed: ") + strerror(errno));
        return;
    }
    state_ = kConnected;
    if (nodelay_)
        set_tcp_nodelay(fd_.get(), true);
    last_in_ms_ = last_out_ms_ = loop_.now_ms();
    update_interest();  // output queued while connecting
    if (shut_wanted_ && out_.empty() && ::shutdown(fd_.get(), SHUT_WR) == 0)
        shut_done_ = true;
    arm_timer();
    call(&connect_cb_);
}

bool TcpClient::send(std::string_view data)
{
    if (state_ == kIdle || shut_wanted_ || pending_err_) {
        errno = state_ == kIdle ? ENOTCONN : EPIPE;
        return false;
    }
    if (state_ == kConnected && out_.empty()) {
        ssize_t n;
        do
            n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n >= 0) {
            last_out_ms_ = loop_.now_ms();
            data.remove_prefix(static_cast<size_t>(n));
            if (data.empty())
                return true;
        } else if (errno != EAGAIN) {
            // Told from the loop: callbacks never run inside send().
            int err = errno;
            pending_err_ = err;
            pending_why_ = "send() to " + peer_.to_string() + " failed: " + strerror(err);
            if (!notify_timer_)
                notify_timer_ = loop_.run_after(0, [this] { notify(); });
            errno = err;
            return false;
        }
    }
    size_t before = out_.readable();
    out_.append(data);
    if (state_ == kConnected && before == 0)
        update_interest();
    if (out_.readable() < high_water_)
        return true;
    over_mark_ = true;
    if (before < high_water_ && high_water_cb_) {
        high_water_due_ = true;
        if (!notify_timer_)
            notify_timer_ = loop_.run_after(0, [this] { notify(); });
    }
    return false;
}

void TcpClient::shutdown()
{
    if (state_ == kIdle || shut_wanted_)
        return;
    shut_wanted_ = true;
    if (state_ == kConnected && out_.empty() && ::shutdown(fd_.get(), SHUT_WR) == 0)
        shut_done_ = true;
}

void TcpClient::close() { reset(); }

void TcpClient::set_reading(bool on)
{
    if (on == reading_)
        return;
    reading_ = on;
    if (state_ == kConnected)
        update_interest();
}

void TcpClient::set_idle_timeout(long long ms)
{
    idle_ms_ = ms > 0 ? ms : 0;
    last_out_ms_ = std::max(last_out_ms_, loop_.now_ms());  // counted from now
    arm_timer();
}

void TcpClient::set_read_timeout(long long ms)
{
    read_ms_ = ms > 0 ? ms : 0;
    read_from_ms_ = loop_.now_ms();  // counted from now, not the last byte
    arm_timer();
}

void TcpClient::handle_event(uint32_t ev)
{
    if (pending_err_) {  // a failed send() is the news, not what follows
        notify();
        return;
    }
    uint64_t serial = conn_serial_;
    if ((ev & (kReadable | kError)) && !handle_read())
        return;
    if ((ev & kWritable) && serial == conn_serial_)
        handle_write();
}

// False when the connection ended or the client is gone.
bool TcpClient::handle_read()
{
    int err = 0;
    ssize_t n = in_.read_fd(fd_.get(), &err);
    if (n > 0) {
        last_in_ms_ = loop_.now_ms();
        uint64_t serial = conn_serial_;
        return call(&data_cb_, in_) && serial == conn_serial_;
    }
    if (n < 0 && err == EAGAIN)
        return true;
    if (n == 0) {
        std::string why = "closed by the peer " + peer_.to_string();
        if (!out_.empty())
            why += " with " + std::to_string(out_.readable()) + " bytes unsent";
        fail(0, std::move(why));
    } else {
        fail(err, "recv() from " + peer_.to_string() + " failed: " + strerror(err));
    }
    return false;
}

void TcpClient::handle_write()
{
    if (int err = flush()) {
        fail(err, "send() to " + peer_.to_string() + " failed: " + strerror(err));
        return;
    }
    if (!out_.empty())
        return;
    update_interest();
    if (shut_wanted_ && !shut_done_ && ::shutdown(fd_.get(), SHUT_WR) == 0)
        shut_done_ = true;
    if (over_mark_) {
        over_mark_ = false;
        call(&drain_cb_);
    }
}

// Writes buffered output until the socket is full: 0, or the errno.
int TcpClient::flush()
{
    while (!out_.empty()) {
        ssize_t n = ::send(fd_.get(), out_.peek(), out_.readable(), MSG_NOSIGNAL);
        if (n >= 0) {
            out_.consume(static_cast<size_t>(n));
            last_out_ms_ = loop_.now_ms();
        } else if (errno == EAGAIN) {
            return 0;
        } else if (errno != EINTR) {
            return errno;
        }
    }
    out_.shrink_if_empty(kKeepCapacity);
    return 0;
}

void TcpClient::update_interest()
{
    uint32_t mask = (reading_ ? kReadable : kError) | (out_.empty() ? 0u : static_cast<uint32_t>(kWritable));
    loop_.update(fd_.get(), mask);
}

// Ends the connection and tells on_close; the callback may destroy us.
void TcpClient::fail(int err, std::string why)
{
    reset();
    error_ = why;
    call(&close_cb_, err, why);
}

// The earliest idle or read deadline gets a timer. A timer due earlier
// than needed is kept, and so is one when nothing is due any more: it
// re-arms itself when it fires, or lets itself lapse. So bytes moving
// cost no timer operations, nor does a read timeout set as each request
// goes out and cleared when its answer is in.
void TcpClient::arm_timer()
{
    long long due = 0;
    if (state_ == kConnected && read_ms_ > 0)
        due = std::max(last_in_ms_, read_from_ms_) + read_ms_;
    if (state_ == kConnected && idle_ms_ > 0) {
        long long idle_due = std::max(last_in_ms_, last_out_ms_) + idle_ms_;
        due = due ? std::min(due, idle_due) : idle_due;
    }
    if (timer_ && due != 0 && timer_due_ > due) {
        loop_.cancel(timer_);
        timer_ = 0;
    }
    if (due == 0 || timer_)
        return;
    timer_due_ = due;
    timer_ = loop_.run_after(due - loop_.now_ms(), [this] {
        timer_ = 0;
        check_timeouts();
    });
}

void TcpClient::check_timeouts()
{
    long long now = loop_.now_ms();
    if (read_ms_ > 0 && now >= std::max(last_in_ms_, read_from_ms_) + read_ms_) {
        fail(ETIMEDOUT, "no data from " + peer_.to_string() + " for " +
                            std::to_string(read_ms_) + " ms");
        return;
    }
    if (idle_ms_ > 0 && now >= std::max(last_in_ms_, last_out_ms_) + idle_ms_) {
        fail(ETIMEDOUT, "connection to " + peer_.to_string() + " idle for " +
                            std::to_string(idle_ms_) + " ms");
        return;
    }
    arm_timer();
}

// What send() could not tell at once: a failed write, the high-water mark.
void TcpClient::notify()
{
    if (notify_timer_)
        loop_.cancel(notify_timer_);  // called early, from handle_event()
    notify_timer_ = 0;
    if (pending_err_) {
        int err = pending_err_;
        std::string why = std::move(pending_why_);
        fail(err, std::move(why));
        return;
    }
    if (high_water_due_) {
        high_water_due_ = false;
        call(&high_water_cb_, out_.readable());
    }
}

// Closes the connection or the connect in progress and forgets its state;
// settings and callbacks stay.
void TcpClient::reset()
{
    connector_->cancel();
    if (fd_)
        loop_.unwatch(fd_.get());
    fd_.reset();
    if (timer_)
        loop_.cancel(timer_);
    if (notify_timer_)
        loop_.cancel(notify_timer_);
    timer_ = notify_timer_ = 0;
    pending_err_ = 0;
    pending_why_.clear();
    out_.clear();
    out_.shrink_if_empty(kKeepCapacity);
    if (state_ != kIdle)
        ++conn_serial_;
    state_ = kIdle;
    over_mark_ = high_water_due_ = shut_wanted_ = shut_done_ = false;
}

}  // namespace zan
