// TcpClient: one outbound TCP connection on an EventLoop (muduo's
// TcpClient + TcpConnection in one object): a non-blocking connect with a
// timeout, input handed to a callback in a Buffer, output buffered with a
// high-water mark, idle and read timeouts, close and half-close.
//
// Owns its socket (SOCK_NONBLOCK|SOCK_CLOEXEC, through its Connector, an
// internal class, while connecting), its watch and timers on the loop, and both buffers. close()
// or the destructor closes the socket at once and drops unsent output;
// nothing is leaked on any path. Callbacks run from the loop, never from
// a method the application calls, and may call any method, connect()
// again, or destroy the client: it notices and touches nothing afterwards.
//
// Used in a process that runs a loop (a Worker or UserWorker reaches its
// own with TcpServer::loop()); never shared across fork. Not thread-safe.
// See zan_tcp_client(3).
#ifndef ZAN_TCP_CLIENT_H
#define ZAN_TCP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "zan/buffer.h"
#include "zan/event_loop.h"
#include "zan/fd.h"
#include "zan/hosts_resolver.h"
#include "zan/inet_addr.h"

namespace zan {

class Connector;

class TcpClient {
public:
    using ConnectCallback = std::function<void(TcpClient&)>;
    // The bytes received so far; consume() what was used, the rest stays.
    using DataCallback = std::function<void(TcpClient&, Buffer& in)>;
    // The output buffer emptied after send() had returned false.
    using DrainCallback = std::function<void(TcpClient&)>;
    // The output buffer reached the high-water mark (bytes buffered).
    using HighWaterCallback = std::function<void(TcpClient&, size_t buffered)>;
    // The connection ended or could not be made: err is 0 when the peer
    // closed it in order, else an errno value; why says what happened.
    using CloseCallback = std::function<void(TcpClient&, int err, const std::string& why)>;

    static constexpr size_t kDefaultHighWater = 4u << 20;

    explicit TcpClient(EventLoop& loop);
    ~TcpClient();
    TcpClient(const TcpClient&) = delete;
    TcpClient& operator=(const TcpClient&) = delete;

    void on_connect(ConnectCallback cb) { set(&connect_cb_, std::move(cb)); }
    void on_data(DataCallback cb) { set(&data_cb_, std::move(cb)); }
    void on_drain(DrainCallback cb) { set(&drain_cb_, std::move(cb)); }
    void on_high_water(HighWaterCallback cb) { set(&high_water_cb_, std::move(cb)); }
    void on_close(CloseCallback cb) { set(&close_cb_, std::move(cb)); }

    // Settings, in ms (0 = none). The connect timeout applies to the next
    // connect(); the idle timeout (no byte sent or received) and the read
    // timeout (no byte received; re-armed by every byte) apply at once.
    void set_connect_timeout(long long ms) { connect_timeout_ms_ = ms; }
    void set_idle_timeout(long long ms);
    void set_read_timeout(long long ms);
    void set_high_water(size_t bytes) { high_water_ = bytes ? bytes : 1; }
    // TCP_NODELAY on each new connection (default on).
    void set_nodelay(bool on) { nodelay_ = on; }
    // Where connect(host, port) looks names up (default /etc/hosts).
    void set_resolver(HostsResolver r) { resolver_ = std::move(r); }

    // Starts connecting. The outcome comes from the loop: on_connect, or
    // on_close with the error. False only when nothing was started: a
    // connection exists or is being made (EISCONN, EALREADY), or the host
    // is neither numeric nor in the hosts file (error() says why).
    bool connect(std::string_view host, uint16_t port);
    bool connect(const InetAddr& addr);

    // Queues data (also while connecting) and writes what the socket
    // takes. True while the buffered output is below the high-water mark;
    // false at or above it (nothing is dropped: wait for on_drain), or
    // when there is no connection or its write side is shut (EPIPE; the
    // data is dropped).
    bool send(std::string_view data);
    // Half-close: shuts the write side down once the output is written;
    // input keeps coming until the peer closes (then on_close, err 0).
    void shutdown();
    // Closes now, dropping unsent output; on_close is not called.
    void close();
    // Stops or resumes reading (input flow control); a reset is still seen.
    void set_reading(bool on);

    bool connected() const { return state_ == kConnected; }
    bool connecting() const { return state_ == kConnecting; }
    size_t buffered() const { return out_.readable(); }
    Buffer& input() { return in_; }
    const InetAddr& peer() const { return peer_; }
    int fd() const { return fd_.get(); }
    // Why the last connect() returned false, or the last close reason.
    const std::string& error() const { return error_; }
    EventLoop& loop() const { return loop_; }

private:
    enum State { kIdle, kConnecting, kConnected };
    struct Guard;

    template <class F>
    void set(F* slot, F cb)
    {
        *slot = std::move(cb);
        ++cb_serial_;
    }
    template <class F, class... A>
    bool call(F* slot, A&&... args);

    void connected(Fd fd, int err);
    void handle_event(uint32_t ev);
    bool handle_read();
    void handle_write();
    int flush();
    void update_interest();
    void fail(int err, std::string why);
    void arm_timer();
    void check_timeouts();
    void notify();
    void reset();

    EventLoop& loop_;
    std::unique_ptr<Connector> connector_;  // the connect in progress
    HostsResolver resolver_;
    Fd fd_;
    State state_ = kIdle;
    InetAddr peer_;
    Buffer in_;
    Buffer out_;
    std::string error_;
    ConnectCallback connect_cb_;
    DataCallback data_cb_;
    DrainCallback drain_cb_;
    HighWaterCallback high_water_cb_;
    CloseCallback close_cb_;
    uint64_t cb_serial_ = 0;
    uint64_t conn_serial_ = 0;  // bumped whenever a connection ends
    Guard* guards_ = nullptr;   // callbacks running now (see call())
    long long connect_timeout_ms_ = 0;
    long long idle_ms_ = 0;
    long long read_ms_ = 0;
    long long last_in_ms_ = 0;
    long long last_out_ms_ = 0;
    long long read_from_ms_ = 0;  // set_read_timeout() was called then
    size_t high_water_ = kDefaultHighWater;
    EventLoop::TimerId timer_ = 0;        // idle / read timeouts
    long long timer_due_ = 0;
    EventLoop::TimerId notify_timer_ = 0;  // deferred high-water / failure
    int pending_err_ = 0;
    std::string pending_why_;
    bool nodelay_ = true;
    bool reading_ = true;
    bool over_mark_ = false;     // send() returned false: on_drain is due
    bool high_water_due_ = false;
    bool shut_wanted_ = false;
    bool shut_done_ = false;
};

}  // namespace zan

#endif
