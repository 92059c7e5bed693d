// MsgQueue: owns one System V message queue created with IPC_PRIVATE.
//
// The Master create()s it before fork and every child inherits the id with
// the object. Only the creator pid removes the queue in the destructor; any
// process may call remove() explicitly (e.g. the first child noticing that
// the Master died), and the queue is then gone for everybody. Messages are
// routed by mtype (> 0): a TaskWorker receives the type addressed to it, or
// 0 for "any". A SysV queue cannot be polled, so receivers block in
// msgrcv(2) and check their flags when a signal interrupts it: msgrcv and
// msgsnd are never restarted (SA_RESTART does not apply), which is what
// retry_eintr=false is for.
//
// One payload is at most max_message_size() bytes (kernel.msgmax, 8192 by
// default); larger ones are refused with kTooBig, and the caller carries big
// task payloads through shared memory or in chunks. Each object keeps one
// receive buffer of max_message_size() + sizeof(long) bytes, so recv()
// allocates nothing per message beyond the capacity of `out`. The object is
// private to one process (the queue itself is shared); not thread-safe.
#ifndef ZAN_DETAIL_MSG_QUEUE_H
#define ZAN_DETAIL_MSG_QUEUE_H

#include <stddef.h>
#include <sys/types.h>

#include <memory>
#include <string>

namespace zan {

class MsgQueue {
public:
    enum Result {
        kOk,
        kAgain,        // full (send) or empty (recv), non-blocking
        kTooBig,       // payload > max_message_size()
        kRemoved,      // EIDRM or EINVAL: queue gone (or never created)
        kInterrupted,  // EINTR with retry_eintr=false
        kError,        // errno set
    };

    MsgQueue() = default;
    MsgQueue(MsgQueue&& o) noexcept;
    MsgQueue& operator=(MsgQueue&& o) noexcept;
    MsgQueue(const MsgQueue&) = delete;
    MsgQueue& operator=(const MsgQueue&) = delete;
    // IPC_RMID if getpid() == creator() and the queue is still valid.
    ~MsgQueue();

    // msgget(IPC_PRIVATE, IPC_CREAT|IPC_EXCL|perms). Returns false with errno
    // set (EBUSY if this object already holds a queue; ENOSPC at msgmni).
    bool create(int perms = 0600);
    bool valid() const { return id_ >= 0; }
    int id() const { return id_; }
    pid_t creator() const { return creator_; }
    // IPC_RMID. Idempotent: EINVAL/EIDRM (already removed by another
    // process) count as done. Afterwards valid() is false. Returns false
    // with errno set on other errors (EPERM) and keeps the id.
    bool remove();

    // kernel.msgmax from /proc/sys/kernel/msgmax (read once per process),
    // 8192 when it cannot be read.
    static size_t max_message_size();

    // Sends `len` bytes with type `mtype` (> 0, else kError with EINVAL).
    // `block` false uses IPC_NOWAIT. EINTR is retried unless retry_eintr is
    // false, which returns kInterrupted.
    Result send(long mtype, const void* data, size_t len, bool block, bool retry_eintr = true);
    // Receives one message chosen by msgrcv(2) rules for `mtype` (0: the
    // first of any type; > 0: the first of that type; < 0: the first of the
    // lowest type <= |mtype|). The payload replaces *out and the type goes
    // to *got_type; either may be nullptr. Empty and non-blocking: kAgain.
    Result recv(long mtype, std::string* out, long* got_type, bool block, bool retry_eintr = true);

    // IPC_STAT counters; 0 with errno set when the queue is gone.
    size_t queued_messages() const;
    size_t queued_bytes() const;
    // Capacity of the queue in bytes (msg_qbytes, kernel.msgmnb by default).
    size_t max_queue_bytes() const;
    // IPC_SET msg_qbytes. Lowering needs only ownership; raising above
    // kernel.msgmnb needs CAP_SYS_RESOURCE. Returns false with errno set.
    bool set_max_queue_bytes(size_t bytes);

private:
    void drop();        // the destructor's work: IPC_RMID if we are the creator
    bool gone() const;  // IPC_STAT says EINVAL/EIDRM
    bool grow(std::unique_ptr<char[]>* buf, size_t* cap, size_t want);

    int id_ = -1;
    pid_t creator_ = 0;
    // Message buffers: a long mtype followed by the payload; sized lazily.
    std::unique_ptr<char[]> sbuf_;
    size_t scap_ = 0;  // payload capacity of sbuf_
    std::unique_ptr<char[]> rbuf_;
    size_t rcap_ = 0;  // payload capacity of rbuf_
};

}  // namespace zan

#endif
