// MasterNotifier: what the Master tells its service manager through
// systemd's notify protocol (SdNotify on NOTIFY_SOCKET): READY=1 with
// MAINPID= once it serves, RELOADING=1 with MONOTONIC_USEC= and READY=1
// again around a reload, STOPPING=1, STATUS= lines, and WATCHDOG=1 every
// half WATCHDOG_USEC from the Master's loop. A Master started by a binary
// upgrade sends its first READY=1 to the Master it replaces instead (the
// parent address, see BinaryUpgrade), which relays it, MAINPID= and all,
// to the service manager (hand_over()) and says nothing more; the
// watchdog pings of the new Master start once it is ready. Owns two
// SdNotify sockets and the watchdog timer on the Master's loop. Used in
// the Master only; a child forked from the Master calls
// close_after_fork().
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_MASTER_NOTIFIER_H
#define ZAN_DETAIL_MASTER_NOTIFIER_H

#include <string>

#include "zan/event_loop.h"
#include "zan/detail/sd_notify.h"

namespace zan {

class MasterNotifier {
public:
    // parent: the notify address of the Master this one replaces, or "".
    MasterNotifier(EventLoop& loop, const std::string& parent);
    ~MasterNotifier();
    MasterNotifier(const MasterNotifier&) = delete;
    MasterNotifier& operator=(const MasterNotifier&) = delete;

    // Starts the watchdog pings (for an upgraded Master: at ready()).
    void start();
    // READY=1, MAINPID= and `status`. An upgraded Master that cannot
    // reach the Master it replaces (gone) tells the service manager itself.
    void ready(const std::string& status);
    void reloading(const std::string& status);
    void reloaded(const std::string& status);
    void stopping(const std::string& status);
    void status(const std::string& status);
    // The binary upgrade succeeded: passes the new Master's READY message
    // (which names its MAINPID) to the service manager, then falls silent.
    void hand_over(const std::string& ready_message);
    void close_after_fork();

private:
    void send(const std::string& msg);
    void start_watchdog();

    EventLoop& loop_;
    SdNotify manager_;
    SdNotify parent_;
    long long ping_us_;
    EventLoop::TimerId ping_timer_ = 0;
    bool silent_ = false;
};

}  // namespace zan

#endif
