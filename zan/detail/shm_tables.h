// Shared-memory tables of a running server: the server-wide counters
// (ServerStats), the process table (ProcSlot) and the session table
// (SessionSlot), with the atomic functions that access them. The Master
// lays these out in one ShmRegion before the first fork; every child sees
// the same memory. Everything here is trivially copyable, holds no
// pointers, and is updated with lock-free atomic builtins only (a process
// may die at any instruction). See zan_stats(3).
#ifndef ZAN_DETAIL_SHM_TABLES_H
#define ZAN_DETAIL_SHM_TABLES_H

#include <stdint.h>
#include <sys/types.h>

#include <type_traits>

#include "zan/metrics.h"

namespace zan {

template <class T>
inline T atomic_load(const T* p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <class T>
inline void atomic_store(T* p, T v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
template <class T>
inline T atomic_add(T* p, T v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

// Adds v to a counter that only the calling process writes (a
// NetWorker's own figures): a relaxed load and store, no locked
// instruction; readers in other processes see whole values.
template <class T>
inline void counter_add(T* p, T v)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

// Index of status in kRefusedStatus, or -1.
inline int refused_index(int status)
{
    for (int i = 0; i < kRefusedStatuses; i++)
        if (kRefusedStatus[i] == status)
            return i;
    return -1;
}

// Index of the histogram bucket of a duration of us microseconds.
inline int duration_bucket(int64_t us)
{
    int i = 0;
    while (i < kDurationBuckets && us > kDurationBoundsUs[i])
        i++;
    return i;
}

// The figures one child id keeps for monitoring (see zan_stats(3)): they
// count over all processes of the id, from the start of the server. Each
// field has one writer role: the NetWorker of the id (connections, bytes,
// requests received, the histogram, its own refusals), the Worker (the
// requests it handled are ProcSlot::handled; statuses of its replies,
// tasks it queued), the TaskWorker (tasks run), or the Master (the
// respawn causes and tasks lost with their TaskWorker). A NetWorker, the
// only process of its id at any time, adds with counter_add(); the
// others, whose predecessor may still run (reload), with relaxed atomic
// adds. Readers never block them.
struct ProcCounters {
    // NetWorker: connections and client bytes.
    int64_t accepted;
    int64_t closed;
    int64_t conn_reading;   // sampled every 250 ms: reading a request
    int64_t conn_writing;   // a request handled or its reply written
    int64_t conn_waiting;   // idle keep-alive
    int64_t bytes_in;
    int64_t bytes_out;
    int64_t requests;       // NetWorker: messages received; TaskWorker: tasks run
    // NetWorker (its own replies) and Worker: replies by status class 1xx..5xx.
    int64_t responses[5];
    int64_t refused[kRefusedStatuses];  // NetWorker: input refused, by status
    int64_t tasks_queued;   // Worker: tasks it submitted
    int64_t task_running;   // TaskWorker: 1 while on_task runs
    int64_t tasks_failed;   // Master: TaskWorker ended while running a task
    // NetWorker: receive to reply written, in microseconds.
    int64_t duration[kDurationBuckets + 1];
    int64_t duration_sum_us;
    // Master: why the id was forked again (a line of its own).
    alignas(64) int64_t respawn_exit;        // it exited (any code) by itself
    int64_t respawn_signal;       // a signal killed it
    int64_t respawn_max_request;  // recycled after max_request / task_max_request
};

// Server-wide counters (the stats() figures).
struct ServerStats {
    int64_t start_time;            // time(2) when the Master started
    int64_t last_reload;           // time(2) of the last reload, 0 if none
    int64_t connection_num;        // live client connections
    int64_t accept_count;
    int64_t close_count;
    int64_t reload_count;          // reloads (SIGUSR1 and SIGUSR2) done
    // Added to by every Worker once per loop pass: a line of its own.
    alignas(64) int64_t request_count;  // messages handled by Workers
    alignas(64) int64_t task_count;     // tasks handled by TaskWorkers
    int64_t worker_respawn_count;  // children re-forked after an exit
    int64_t worker_normal_exit;
    int64_t worker_abnormal_exit;
    int64_t tasking_num;           // tasks queued or running
    // Read by Workers for every request, written once: a line of its own.
    alignas(64) int64_t shutting_down;  // 1 once the Master began a graceful stop
};

// One per child id (Workers, TaskWorkers, NetWorkers, UserWorkers). The
// fields written on the request path are grouped by writer, one cache
// line per group, so that a process's writes do not take from its peers
// the lines they read.
struct ProcSlot {
    int32_t pid;            // current process with this id, 0 when none
    int32_t role;           // Role (zan/role.h)
    int32_t index;          // index within its role
    int32_t reader;         // Worker: the process reading this id's channels
    int64_t start_time;     // time(2)
    int64_t respawns;
    // The last processes of this id the Master reaped (written by the
    // Master alone): such a pid may already be another program's, so a
    // successor never takes it for its running predecessor. A pid leaves
    // the list when the Master forks a process of this id with it.
    int32_t reaped[4];
    int32_t reaped_next;
    // Written by the process itself, once per loop pass.
    alignas(64) int64_t request_count;  // messages handled by this id since start
    int64_t handled;        // messages it finished (dispatched - handled = backlog)
    int64_t hop_yields;     // NetWorker: turns of hop_yield taken, all its processes
    // Written by the NetWorkers, once per pass (dispatch_mode 3 only: its sole reader).
    alignas(64) int64_t dispatched;  // messages sent to it by NetWorkers
    // Worker, NetWorker: about to block, wake me (Channel::prepare_sleep).
    // Written by the process twice per pass, read by its peers.
    alignas(64) int32_t sleeping;
    // Monitoring figures (not read on the request path).
    alignas(64) ProcCounters m;
};

// One per connection slot of a NetWorker. Written only by that NetWorker
// (and by the Master when it clears the slots of a dead NetWorker), except
// uid, which the Worker calling bind() stores.
struct SessionSlot {
    uint32_t generation;    // bumped on every close; part of the session id
    int32_t active;         // 1 while connected
    int32_t fd;
    int32_t worker;         // worker chosen for connect/close (home worker)
    int64_t connect_time;   // time(2)
    int64_t last_time;      // time(2) of the last data received
    int64_t out_bytes;      // bytes waiting in the NetWorker's output buffer
    uint64_t uid;           // bind(session, uid)
    uint32_t addr_len;
    int32_t listener;
    uint8_t addr[28];       // sockaddr_in or sockaddr_in6 of the peer
    uint8_t pad[4];
};

static_assert(std::is_trivially_copyable_v<ServerStats>, "shm data must be trivially copyable");
static_assert(std::is_trivially_copyable_v<ProcSlot>, "shm data must be trivially copyable");
static_assert(std::is_trivially_copyable_v<ProcCounters>, "shm data must be trivially copyable");
static_assert(std::is_trivially_copyable_v<SessionSlot>, "shm data must be trivially copyable");

}  // namespace zan

#endif
