// ServerConfig: every setting of a TcpServer, with the defaults of the
// Zan/Swoole model. A plain value: filled in by the application before
// start(), checked and completed by validate(), then copied into each
// process at fork.
#ifndef ZAN_SERVER_CONFIG_H
#define ZAN_SERVER_CONFIG_H

#include <stddef.h>

#include <string>

#include "zan/log.h"

namespace zan {

struct ServerConfig {
    // Processes. 0 means "one per CPU" for worker_num and net_worker_num.
    int worker_num = 0;
    int net_worker_num = 0;
    int task_worker_num = 0;
    long max_request = 0;       // Worker recycles after this many messages (0: never)
    long task_max_request = 0;  // TaskWorker recycles after this many tasks (0: never)

    // Connections.
    int max_connection = 10000;  // live connections per server (all NetWorkers)
    int backlog = 512;
    bool open_tcp_nodelay = false;
    bool accept_lock = true;  // accept only under the shared robust lock
    // Pin NetWorker i and Worker i to CPU i % CPUs (so that a pair shares a
    // core and its hand-offs need no cross-CPU wake-up). Off by default.
    bool open_cpu_affinity = false;
    // Before it blocks, a NetWorker that handed messages to a Worker still
    // awake gives up the CPU up to this many times (sched_yield) instead,
    // so that the replies need no wake-up (at the price of a time slice
    // when another program shares the CPU); 0: block at once.
    int hop_yield = 1;
    // The CPU time slice, in microseconds, a NetWorker asks the scheduler
    // for (sched_setattr(2); Linux 6.12 and later, older kernels ignore
    // it). A short slice lets a NetWorker that client bytes or replies wake
    // preempt a process with a longer one on its CPU, and makes a turn of
    // hop_yield cheaper; 0: the kernel's default. 0 or 100..100000.
    int net_worker_slice_us = 100;
    int dispatch_mode = 2;    // 1 round robin, 2 connection, 3 idle, 4 client IP, 5 uid
    // A Worker drops a message whose connection closed before the Worker
    // got to it, instead of calling on_receive.
    bool discard_timeout_request = false;
    size_t buffer_output_size = 2 * 1024 * 1024;  // per-connection output limit
    // A client that takes no byte of its waiting output for this long is
    // disconnected (0: never), like nginx's send_timeout.
    int send_timeout_ms = 60000;
    // Idle connections (Zan and Swoole's heartbeat): every
    // heartbeat_check_interval seconds each NetWorker closes its
    // connections that received no byte for more than heartbeat_idle_time
    // seconds, unless a reply is being written to them or (HTTP) a request
    // of theirs is being answered; the Worker gets on_close. An idle time
    // of 0 is twice the interval; an interval of 0 with an idle time is
    // half of it (at least 1). Both 0: no check.
    int heartbeat_check_interval = 0;
    int heartbeat_idle_time = 0;
    size_t pipe_buffer_size = 32 * 1024 * 1024;   // queued bytes per NetWorker->Worker channel, and per inbox for send_message()

    // Framing (NetWorker side). Without either check every read is a message.
    bool open_eof_check = false;  // messages end with package_eof
    std::string package_eof = "\r\n";
    bool open_length_check = false;  // length-prefixed messages
    char package_length_type = 'N';  // c C s S n N l L q Q J (pack(3) letters)
    int package_length_offset = 0;
    int package_body_offset = 4;
    size_t package_max_length = 2 * 1024 * 1024;

    // Tasks.
    int task_ipc_mode = 3;  // 3 preemptive shared queue, 2 addressed by mtype
    std::string task_tmpdir = "/tmp";
    size_t task_max_length = 64 * 1024 * 1024;  // largest task payload

    // Lifecycle.
    int max_wait_time = 3;  // seconds: drain limit for stop, reload and recycling
    // Seconds a binary upgrade waits for the new Master to be ready before
    // it stops it and keeps the old one serving.
    int upgrade_timeout = 30;
    std::string log_file;   // empty: standard error
    Level log_level = Level::info;
    std::string pid_file;
    bool daemonize = false;
    std::string user;   // applied in the children
    std::string group;

    // Fills in defaults (CPU counts) and checks every value; returns an
    // empty string or a message naming the bad setting.
    std::string validate();
    // Size of the length field for package_length_type, 0 if invalid.
    static int length_size(char type);
};

}  // namespace zan

#endif
