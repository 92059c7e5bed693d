// take_metrics(): reads a Metrics snapshot of a running server from its
// shared tables (ServerStats, ProcSlot, ProcCounters), the task queue
// (msgctl IPC_STAT) and /proc/PID/stat of each process. Any process of
// the server may call it, as often as it likes: it reads, never takes a
// lock and never waits for a serving process.
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_METRICS_SNAPSHOT_H
#define ZAN_DETAIL_METRICS_SNAPSHOT_H

#include <sys/types.h>

#include "zan/metrics.h"
#include "zan/detail/process.h"

namespace zan {

Metrics take_metrics(const Runtime& rt);

// Reads /proc/pid/stat: state letter, CPU seconds, RSS in bytes. False
// when the process is gone.
bool read_proc_stat(pid_t pid, char* state, double* cpu_seconds, int64_t* rss_bytes);

}  // namespace zan

#endif
