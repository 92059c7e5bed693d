#include "zan/detail/master_notifier.h"

#include <errno.h>
#include <unistd.h>

#include "zan/log.h"
#include "zan/sys.h"

namespace zan {

MasterNotifier::MasterNotifier(EventLoop& loop, const std::string& parent)
    : loop_(loop), manager_(SdNotify::from_env()), parent_(parent),
      ping_us_(SdNotify::watchdog_ping_us(::getpid()))
{
}

MasterNotifier::~MasterNotifier()
{
    if (ping_timer_)
        loop_.cancel(ping_timer_);
}

void MasterNotifier::send(const std::string& msg)
{
    // An upgraded Master is not the service's main process until the old
    // one hands over (ready()): the manager would refuse what it sends.
    if (silent_ || parent_.enabled() || manager_.send(msg))
        return;
    // Only the first of a run of failures is worth a line.
    static int last_errno = 0;
    if (errno != last_errno)
        log_errno(Level::warn, errno, "sd_notify to %s failed", manager_.address().c_str());
    last_errno = errno;
}

void MasterNotifier::start()
{
    if (!parent_.enabled())
        start_watchdog();
}

void MasterNotifier::start_watchdog()
{
    if (ping_us_ <= 0 || !manager_.enabled() || ping_timer_)
        return;
    long long ms = ping_us_ / 1000;
    ping_timer_ = loop_.run_every(ms > 0 ? ms : 1, [this] { send("WATCHDOG=1"); });
}

void MasterNotifier::ready(const std::string& status)
{
    std::string msg = "READY=1\nMAINPID=" + std::to_string(::getpid()) + "\nSTATUS=" + status;
    bool told_parent = false;
    if (parent_.enabled()) {
        told_parent = parent_.send(msg);
        if (!told_parent)
            log_errno(Level::warn, errno, "cannot tell the Master this one replaces (%s) that it is ready",
                      parent_.address().c_str());
        parent_ = SdNotify();
    }
    if (!told_parent)
        send(msg);
    start_watchdog();
}

void MasterNotifier::reloading(const std::string& status)
{
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_us()) + "\nSTATUS=" + status);
}

void MasterNotifier::reloaded(const std::string& status) { send("READY=1\nSTATUS=" + status); }

void MasterNotifier::stopping(const std::string& status) { send("STOPPING=1\nSTATUS=" + status); }

void MasterNotifier::status(const std::string& status) { send("STATUS=" + status); }

void MasterNotifier::hand_over(const std::string& ready_message)
{
    send(ready_message);
    silent_ = true;
    if (ping_timer_) {
        loop_.cancel(ping_timer_);
        ping_timer_ = 0;
    }
}

void MasterNotifier::close_after_fork()
{
    manager_ = SdNotify();
    parent_ = SdNotify();
}

}  // namespace zan
