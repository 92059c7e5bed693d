// Runtime: everything the processes of one server share, built by the
// Master before the first fork and inherited by every child: settings,
// callbacks, listening sockets, the shared-memory tables, the task queue
// and every channel. After fork a child calls keep_only() so that it
// holds exactly the descriptors its role uses (nothing leaks by accident).
// This is an internal header file, you should not include this.
#ifndef ZAN_DETAIL_PROCESS_H
#define ZAN_DETAIL_PROCESS_H

#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "zan/callbacks.h"
#include "zan/detail/channel.h"
#include "zan/fd.h"
#include "zan/inet_addr.h"
#include "zan/detail/msg_queue.h"
#include "zan/protocol.h"
#include "zan/role.h"
#include "zan/server_config.h"
#include "zan/session_id.h"
#include "zan/detail/shm.h"
#include "zan/detail/shm_mutex.h"
#include "zan/detail/shm_tables.h"

namespace zan {

class EventLoop;
class Worker;
class TaskWorker;
class NetWorker;
class UserWorker;

// Frame kinds on the channels.
enum FrameKind : uint8_t {
    // NetWorker -> Worker
    kFrameConnect = 1,  // id = session
    kFrameData,         // id = session, payload = one message
    kFrameClose,        // id = session; arg 1: peer half-closed, ack wanted
    kFrameDrained,      // id = session: its output fell to the watched size
    // Worker -> NetWorker
    kFrameReply,        // id = session, payload = bytes for the client
    kFrameCloseReq,     // id = session: close after the output is flushed
    kFrameCloseAck,     // id = session: the Worker ran on_close
    kFrameBind,         // id = session, payload = uid (8 bytes)
    kFrameSendfile,     // id = session, payload = SendfileHeader + path; arg = reply flags
    kFramePartAck,      // id = session, arg = bytes of streamed parts processed
    kFrameWatchOutput,  // id = session, arg = size: send kFrameDrained at or below it
    // Inbox of a Worker
    kFrameTaskResult,   // id = task id, payload = result
    kFramePipeMessage,  // arg = source worker id
    // Control: child <-> Master
    kCtlReady,          // child -> Master: started
    kCtlRetire,         // child -> Master: stopping by itself, fork my successor
    kCtlWorkerDied,     // Master -> NetWorker: arg = worker id
    kCtlNetDied,        // Master -> Worker: arg = NetWorker index
};

// FrameHeader::arg of data and reply frames: flags in the low 8 bits;
// with counted replies the upper 24 bits carry the request's sequence
// number on its connection, which its reply frames repeat so that the
// NetWorker can put replies in request order.
enum : int {
    kReplyEnd = 1,    // last frame of the reply to one message
    kReplyClose = 2,  // close the connection once this is written
    kDataLast = 1,    // data frame: the last message this connection may send
    kDataPart = 2,    // data frame: a part of a streamed message (ConnProtocol::kPart)
    kDataFirst = 4,   // with kDataPart: its first part
    kDataEnd = 8,     // with kDataPart: its last part
    kDataCut = 16,    // with kDataPart | kDataEnd, no payload: it ends unfinished
    kFlagMask = 0xff,
    kSeqShift = 8,
};
constexpr uint32_t kSeqMask = 0xffffff;

struct SendfileHeader {
    uint64_t offset;
    uint64_t length;
};

// Calls a layer above the process model makes into it (HttpServer's
// access log); each is optional. See TcpServer::start(), Master,
// Worker, NetWorker and ChildProcess for where they run.
struct ProcessHooks {
    // Master: in start() once the user and group are known (false, with
    // *err, fails start()), and on SIGRTMIN before it tells the children
    // (err is null then).
    std::function<bool(std::string* err)> master_files;
    // Worker and NetWorker: with their loop, just before it runs.
    std::function<void(EventLoop&)> loop_start;
    // Worker and NetWorker, on SIGRTMIN, after the error log.
    std::function<void()> reopen;
    // Every child, once its role has ended, before _exit().
    std::function<void()> exit;
};

struct Listener {
    InetAddr addr;
    Fd fd;
    std::string name;  // LISTEN_FDNAMES entry when passed to us, else ""
};

// ServerStats::shutting_down: 0 while serving, then how the server stops.
enum : int64_t {
    kStopDrain = 1,     // for good: the listening sockets close (NetAcceptor::stop)
    kStopHandOver = 2,  // they live on in a successor server (NetAcceptor::hand_over)
};

struct Runtime {
    ServerConfig cfg;
    Callbacks cb;
    FrameHook frame_hook;
    ProtocolSpec protocol;  // when protocol.make is set it replaces the framing settings
    std::vector<ProcessCallback> user_procs;
    ProcessHooks hooks;
    TcpServer* server = nullptr;
    std::vector<Listener> listeners;

    // Shared memory.
    ShmRegion shm;
    ServerStats* stats = nullptr;
    ProcSlot* procs = nullptr;        // one per child id
    SessionSlot* sessions = nullptr;  // net_worker_num * max_connection
    ShmMutex* accept_lock = nullptr;
    MsgQueue task_queue;

    // Channels. pair k*W+w joins NetWorker k and Worker w (ring mode: two
    // shared-memory rings, woken through wake_fd); inbox w is read by
    // Worker w and written by Workers, TaskWorkers and UserWorkers.
    std::vector<Channel> net_end;
    std::vector<Channel> worker_end;
    std::vector<Channel> inbox_rd;
    std::vector<Channel> inbox_wr;
    Channel ctl;  // this child's end of its control channel with the Master
    // eventfd per child id of a Worker or NetWorker: written to wake the
    // process(es) of that id (see Channel::prepare_sleep); others are unset.
    std::vector<Fd> wake_fd;
    size_t ring_bytes = 0;  // capacity of each pair ring

    // Who this process is.
    Role role = Role::master;
    int id = -1;     // child id: Workers [0,W), TaskWorkers [W,W+T), NetWorkers, UserWorkers
    int index = -1;  // index within the role
    pid_t master_pid = 0;
    bool set_ids = false;  // switch to uid/gid in every child (user/group)
    uid_t uid = 0;
    gid_t gid = 0;
    Worker* worker = nullptr;
    TaskWorker* task_worker = nullptr;
    NetWorker* net_worker = nullptr;
    UserWorker* user_worker = nullptr;
    volatile bool stopping = false;
    int data_flags = 0;     // flags of the data frame being handled (kDataLast)
    pid_t predecessor = 0;  // still-running process this one replaces (reload, recycling)
    // Master started by a binary upgrade: the notify address of the
    // Master it replaces (see BinaryUpgrade); "" otherwise.
    std::string upgrade_parent;
    long long wake_us = 0;  // NetWorker: monotonic_us() of the last wake-up (requests' receipt)

    int W() const { return cfg.worker_num; }
    int T() const { return cfg.task_worker_num; }
    int N() const { return cfg.net_worker_num; }
    int U() const { return static_cast<int>(user_procs.size()); }
    int proc_count() const { return W() + T() + N() + U(); }
    int first_id(Role r) const;
    Role role_of(int id) const;
    int index_of(int id) const { return id - first_id(role_of(id)); }
    SessionSlot* slot_at(int net, uint32_t slot) const
    {
        return sessions + static_cast<size_t>(net) * static_cast<size_t>(cfg.max_connection) + slot;
    }
    int32_t* sleeping_word() const { return &procs[id].sleeping; }
    // This process's monitoring figures (zan_stats(3)).
    ProcCounters& counters() const { return procs[id].m; }
    int wake_of(int child_id) const { return wake_fd[static_cast<size_t>(child_id)].get(); }
    // Slot of a live session, or nullptr when the id is stale or invalid.
    SessionSlot* live_session(SessionId s) const;
    // True when pid is still a process of child id: the Master has not
    // reaped it (after that the pid may be another program's) and
    // kill(pid, 0) succeeds (an exited process counts until it is reaped).
    bool running(int child_id, pid_t pid) const;

    // True when our parent is no longer the Master (it died; we were
    // re-parented). See exit_orphaned().
    bool master_gone() const;
    // The Master is gone: remove the task queue, so that nothing is left
    // behind, and _exit(0). See also leave_orphaned().
    [[noreturn]] void exit_orphaned() const;

    // Allocates shared memory, the task queue and every channel.
    bool setup(std::string* err);
    // In a freshly forked child: become (role, index) and close every
    // inherited descriptor this role does not use.
    void become(Role r, int idx, Channel ctl_end);

private:
    // The parts of setup(), in order; each sets *err when it fails.
    bool layout_shm(std::string* err);
    bool make_task_queue(std::string* err);
    bool make_wake_fds(std::string* err);
    bool make_rings(std::string* err);
    bool make_inboxes(std::string* err);
};

// The Runtime of a server (its friends; for the library's own modules).
Runtime& server_runtime(TcpServer& server);
const Runtime& server_runtime(const TcpServer& server);

// What exit_orphaned() does, for a signal handler that only has the task
// queue's id (-1: none): only async-signal-safe calls.
[[noreturn]] void leave_orphaned(int task_queue_id);

// The signal a child gets when its Master dies (PR_SET_PDEATHSIG); its
// handler calls leave_orphaned(). Applications must leave it alone.
inline int parent_death_signal() { return SIGRTMIN + 1; }
// The signal that asks the Master for a binary upgrade (zanctl upgrade).
inline int upgrade_signal() { return SIGRTMIN + 2; }

// Process name set with prctl(PR_SET_NAME): zan-master, zan-net-<i>,
// zan-worker-<i>, zan-task-<i>, zan-user-<i>.
std::string process_name(Role role, int index);
void set_process_name(const std::string& name);

}  // namespace zan

#endif
