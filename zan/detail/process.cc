#include "zan/detail/process.h"

#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "zan/log.h"

namespace zan {

std::string process_name(Role role, int index)
{
    if (role == Role::master)
        return "zan-master";
    return std::string("zan-") + role_name(role) + "-" + std::to_string(index);
}

void set_process_name(const std::string& name)
{
    ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
}

int Runtime::first_id(Role r) const
{
    switch (r) {
    case Role::worker: return 0;
    case Role::task_worker: return W();
    case Role::net_worker: return W() + T();
    case Role::user_worker: return W() + T() + N();
    default: return -1;
    }
}

Role Runtime::role_of(int id) const
{
    if (id < 0)
        return Role::none;
    if (id < W())
        return Role::worker;
    if (id < W() + T())
        return Role::task_worker;
    if (id < W() + T() + N())
        return Role::net_worker;
    if (id < proc_count())
        return Role::user_worker;
    return Role::none;
}

bool Runtime::master_gone() const { return ::getppid() != master_pid; }

void Runtime::exit_orphaned() const
{
    if (hooks.exit)
        hooks.exit();
    leave_orphaned(task_queue.valid() ? task_queue.id() : -1);
}

void leave_orphaned(int task_queue_id)
{
    if (task_queue_id >= 0)
        ::msgctl(task_queue_id, IPC_RMID, nullptr);
    _exit(0);
}

SessionSlot* Runtime::live_session(SessionId s) const
{
    int net = session_net(s);
    uint32_t slot = session_slot(s);
    if (net >= N() || slot >= static_cast<uint32_t>(cfg.max_connection))
        return nullptr;
    SessionSlot* ss = slot_at(net, slot);
    if (!atomic_load(&ss->active) || atomic_load(&ss->generation) != session_gen(s))
        return nullptr;
    return ss;
}

bool Runtime::running(int child_id, pid_t pid) const
{
    if (pid <= 0)
        return false;
    const ProcSlot& ps = procs[child_id];
    for (const int32_t& r : ps.reaped)
        if (atomic_load(&r) == pid)
            return false;
    return ::kill(pid, 0) == 0;
}

static size_t align_up(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

// Each direction of each NetWorker/Worker pair gets a ring: 256 KiB while
// all rings together stay within 16 MiB (up to 32 pairs), else 128 KiB
// (room for two frames of the largest size).
static size_t ring_capacity(size_t rings)
{
    return rings * 256 * 1024 <= 16 * 1024 * 1024 ? 256 * 1024 : 128 * 1024;
}

bool Runtime::setup(std::string* err)
{
    return layout_shm(err) && (T() == 0 || make_task_queue(err)) && make_wake_fds(err) &&
           make_rings(err) && make_inboxes(err);
}

// One mapping holds the stats, the process slots, the session table, the
// accept lock and every ring.
bool Runtime::layout_shm(std::string* err)
{
    size_t nsess = static_cast<size_t>(N()) * static_cast<size_t>(cfg.max_connection);
    size_t npairs = static_cast<size_t>(N()) * static_cast<size_t>(W());
    ring_bytes = ring_capacity(2 * npairs);
    size_t bytes = align_up(sizeof(ServerStats)) + align_up(sizeof(ProcSlot) * proc_count()) +
                   align_up(sizeof(SessionSlot) * nsess) + align_up(sizeof(ShmMutex)) +
                   2 * npairs * Ring::shm_bytes(ring_bytes) + 4096;
    if (!shm.create(bytes)) {
        *err = std::string("mmap() of shared memory failed: ") + strerror(errno);
        return false;
    }
    stats = shm.alloc<ServerStats>();
    procs = shm.alloc<ProcSlot>(proc_count());
    sessions = shm.alloc<SessionSlot>(nsess);
    accept_lock = shm.alloc<ShmMutex>();
    if (!stats || !procs || !sessions || !accept_lock || !accept_lock->init()) {
        *err = "shared memory layout failed";
        return false;
    }
    for (int id = 0; id < proc_count(); id++) {
        procs[id].role = static_cast<int32_t>(role_of(id));
        procs[id].index = index_of(id);
    }
    return true;
}

bool Runtime::make_task_queue(std::string* err)
{
    if (task_queue.create(0600))
        return true;
    *err = std::string("msgget() for the task queue failed: ") + strerror(errno);
    return false;
}

// An eventfd per Worker and NetWorker: the doorbell of its rings.
bool Runtime::make_wake_fds(std::string* err)
{
    wake_fd.resize(static_cast<size_t>(proc_count()));
    for (int id = 0; id < proc_count(); id++) {
        Role r = role_of(id);
        if (r != Role::worker && r != Role::net_worker)
            continue;
        int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            *err = std::string("eventfd() failed: ") + strerror(errno);
            return false;
        }
        wake_fd[static_cast<size_t>(id)] = Fd(fd);
    }
    return true;
}

// Two rings, one per direction, for every NetWorker/Worker pair.
bool Runtime::make_rings(std::string* err)
{
    size_t npairs = static_cast<size_t>(N()) * static_cast<size_t>(W());
    net_end.resize(npairs);
    worker_end.resize(npairs);
    for (int k = 0; k < N(); k++) {
        for (int w = 0; w < W(); w++) {
            size_t i = static_cast<size_t>(k * W() + w);
            Ring to_worker, to_net;
            if (!to_worker.place(shm, ring_bytes) || !to_net.place(shm, ring_bytes)) {
                *err = std::string("shared memory for a channel ring failed: ") + strerror(errno);
                return false;
            }
            int net_id = first_id(Role::net_worker) + k;
            net_end[i].attach_ring(to_worker, to_net, wake_of(w), &procs[w].sleeping);
            worker_end[i].attach_ring(to_net, to_worker, wake_of(net_id), &procs[net_id].sleeping);
            net_end[i].set_max_pending(cfg.pipe_buffer_size);
        }
    }
    return true;
}

// A socket pair per Worker for sendMessage() from other processes.
bool Runtime::make_inboxes(std::string* err)
{
    inbox_rd.resize(static_cast<size_t>(W()));
    inbox_wr.resize(inbox_rd.size());
    for (size_t i = 0; i < inbox_rd.size(); i++) {
        if (!Channel::make_pair(&inbox_rd[i], &inbox_wr[i])) {
            *err = std::string("socketpair() for an inbox failed: ") + strerror(errno);
            return false;
        }
    }
    return true;
}

void Runtime::become(Role r, int idx, Channel ctl_end)
{
    role = r;
    index = idx;
    id = first_id(r) + idx;
    ctl = std::move(ctl_end);
    if (r != Role::net_worker)
        listeners.clear();
    for (int k = 0; k < N(); k++) {
        for (int w = 0; w < W(); w++) {
            size_t i = static_cast<size_t>(k * W() + w);
            if (!(r == Role::net_worker && k == idx))
                net_end[i].reset();
            if (!(r == Role::worker && w == idx))
                worker_end[i].reset();
        }
    }
    // Our own eventfd, and those of the peers we write to.
    for (int i = 0; i < proc_count(); i++) {
        Role ri = role_of(i);
        bool keep = i == id || (r == Role::net_worker && ri == Role::worker) ||
                    (r == Role::worker && ri == Role::net_worker);
        if (!keep)
            wake_fd[static_cast<size_t>(i)].reset();
    }
    for (int w = 0; w < W(); w++) {
        if (!(r == Role::worker && w == idx))
            inbox_rd[static_cast<size_t>(w)].reset();
        if (r == Role::net_worker)
            inbox_wr[static_cast<size_t>(w)].reset();
    }
    Logger::instance().set_tag(process_name(r, idx).substr(4));
    set_process_name(process_name(r, idx));
}

}  // namespace zan
