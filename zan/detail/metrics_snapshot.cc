#include "zan/detail/metrics_snapshot.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <unistd.h>

#include "zan/sys.h"

namespace zan {

bool read_proc_stat(pid_t pid, char* state, double* cpu_seconds, int64_t* rss_bytes)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[1024];
    ssize_t n = read_some(fd, buf, sizeof(buf) - 1);
    ::close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    // "pid (comm) S ppid ...": comm may hold anything, so start after its last ')'.
    char* p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return false;
    p += 2;
    *state = *p;
    // Fields after comm, from 1: state, ..., utime 12, stime 13, ..., rss 22.
    long long utime = 0, stime = 0, rss = 0;
    for (int field = 1; *p && field <= 22; field++) {
        if (field == 12)
            utime = strtoll(p, nullptr, 10);
        else if (field == 13)
            stime = strtoll(p, nullptr, 10);
        else if (field == 22)
            rss = strtoll(p, nullptr, 10);
        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
    }
    static const long hz = ::sysconf(_SC_CLK_TCK);
    static const long page = ::sysconf(_SC_PAGESIZE);
    *cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(hz > 0 ? hz : 100);
    *rss_bytes = static_cast<int64_t>(rss) * page;
    return true;
}

// The /proc figures of pid, when it runs.
static void fill_process(ProcessMetrics* p, pid_t pid)
{
    p->pid = 0;
    if (pid > 0 && read_proc_stat(pid, &p->state, &p->cpu_seconds, &p->rss_bytes) && p->state != 'Z')
        p->pid = pid;
    if (!p->pid) {
        p->state = '-';
        p->cpu_seconds = 0;
        p->rss_bytes = 0;
    }
}

// The counters of child id (role given), read from its slot.
static ProcessMetrics read_slot(const Runtime& rt, int id)
{
    const ProcSlot& s = rt.procs[id];
    const ProcCounters& m = s.m;
    Role role = rt.role_of(id);
    ProcessMetrics p;
    p.role = role_name(role);
    p.id = rt.index_of(id);
    fill_process(&p, atomic_load(&s.pid));
    p.start_time = atomic_load(&s.start_time);
    p.accepted = atomic_load(&m.accepted);
    p.closed = atomic_load(&m.closed);
    p.reading = atomic_load(&m.conn_reading);
    p.writing = atomic_load(&m.conn_writing);
    p.waiting = atomic_load(&m.conn_waiting);
    p.bytes_in = atomic_load(&m.bytes_in);
    p.bytes_out = atomic_load(&m.bytes_out);
    if (role == Role::net_worker)
        p.received = atomic_load(&m.requests);
    else if (role == Role::worker)
        p.requests = atomic_load(&s.handled);
    else if (role == Role::task_worker)
        p.tasks_done = atomic_load(&m.requests);
    for (int i = 0; i < 5; i++)
        p.responses[i] = atomic_load(&m.responses[i]);
    for (int i = 0; i < kRefusedStatuses; i++)
        p.refused[i] = atomic_load(&m.refused[i]);
    p.tasks_queued = atomic_load(&m.tasks_queued);
    p.tasks_running = atomic_load(&m.task_running);
    p.tasks_failed = atomic_load(&m.tasks_failed);
    p.respawns = atomic_load(&s.respawns);
    p.respawn_exit = atomic_load(&m.respawn_exit);
    p.respawn_signal = atomic_load(&m.respawn_signal);
    p.respawn_max_request = atomic_load(&m.respawn_max_request);
    for (int b = 0; b <= kDurationBuckets; b++)
        p.duration[b] = atomic_load(&m.duration[b]);
    p.duration_sum_us = atomic_load(&m.duration_sum_us);
    return p;
}

Metrics take_metrics(const Runtime& rt)
{
    Metrics mx;
    if (!rt.stats || !rt.procs)
        return mx;
    mx.start_time = atomic_load(&rt.stats->start_time);
    mx.last_reload = atomic_load(&rt.stats->last_reload);
    mx.reloads = atomic_load(&rt.stats->reload_count);
    struct msqid_ds ds;
    if (rt.task_queue.valid() && ::msgctl(rt.task_queue.id(), IPC_STAT, &ds) == 0) {
        mx.task_queue_depth = static_cast<int64_t>(ds.msg_qnum);
        mx.task_queue_bytes = static_cast<int64_t>(ds.__msg_cbytes);
    }
    mx.procs.reserve(static_cast<size_t>(rt.proc_count()) + 1);
    ProcessMetrics master;
    master.role = role_name(Role::master);
    fill_process(&master, rt.master_pid);
    master.start_time = mx.start_time;
    mx.procs.push_back(master);
    for (int id = 0; id < rt.proc_count(); id++)
        mx.procs.push_back(read_slot(rt, id));
    return mx;
}

}  // namespace zan
