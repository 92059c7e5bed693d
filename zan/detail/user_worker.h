// UserWorker: a process the application adds with add_process() before
// start(). Its callback runs once per process start; when it returns the
// process exits and the Master forks it again (it is also respawned when
// it dies). It may use its own event loop (TcpServer::loop(), or the
// timers run_every/run_after), which runs after the callback returns if
// the callback left timers or watched descriptors on it, and
// send_message() to Workers. SIGTERM asks it to stop:
// stopping() turns true and the loop ends.
// Lives in a UserWorker process only.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_USER_WORKER_H
#define ZAN_DETAIL_USER_WORKER_H

#include <string_view>

#include "zan/event_loop.h"
#include "zan/detail/process.h"

namespace zan {

class UserWorker {
public:
    explicit UserWorker(Runtime& rt);
    ~UserWorker();
    int run();
    EventLoop& loop() { return loop_; }
    bool send_message(std::string_view data, int dst_worker);
    bool stopping() const;

private:
    Runtime& rt_;
    EventLoop loop_;
    Fd wake_rd_, wake_wr_;
};

}  // namespace zan

#endif
