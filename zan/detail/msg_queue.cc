#include "zan/detail/msg_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include <atomic>
#include <new>

#include "zan/fd.h"
#include "zan/log.h"
#include "zan/sys.h"

namespace zan {

namespace {

constexpr size_t kDefaultMsgMax = 8192;

size_t read_msgmax()
{
    Fd fd(::open("/proc/sys/kernel/msgmax", O_RDONLY | O_CLOEXEC));
    if (!fd)
        return kDefaultMsgMax;
    char buf[32];
    ssize_t n = read_some(fd.get(), buf, sizeof(buf) - 1);
    if (n <= 0)
        return kDefaultMsgMax;
    buf[n] = '\0';
    char* end = nullptr;
    errno = 0;
    unsigned long v = strtoul(buf, &end, 10);
    if (errno != 0 || end == buf || v == 0)
        return kDefaultMsgMax;
    return static_cast<size_t>(v);
}

}  // namespace

MsgQueue::MsgQueue(MsgQueue&& o) noexcept
    : id_(o.id_),
      creator_(o.creator_),
      sbuf_(std::move(o.sbuf_)),
      scap_(o.scap_),
      rbuf_(std::move(o.rbuf_)),
      rcap_(o.rcap_)
{
    o.id_ = -1;
    o.creator_ = 0;
    o.scap_ = o.rcap_ = 0;
}

MsgQueue& MsgQueue::operator=(MsgQueue&& o) noexcept
{
    if (this != &o) {
        drop();
        id_ = o.id_;
        creator_ = o.creator_;
        sbuf_ = std::move(o.sbuf_);
        scap_ = o.scap_;
        rbuf_ = std::move(o.rbuf_);
        rcap_ = o.rcap_;
        o.id_ = -1;
        o.creator_ = 0;
        o.scap_ = o.rcap_ = 0;
    }
    return *this;
}

MsgQueue::~MsgQueue() { drop(); }

void MsgQueue::drop()
{
    if (id_ >= 0 && ::getpid() == creator_ && !remove())
        log_errno(Level::warn, errno, "msgctl(%d, IPC_RMID) failed; queue left behind", id_);
    id_ = -1;
}

bool MsgQueue::create(int perms)
{
    if (id_ >= 0) {
        errno = EBUSY;
        return false;
    }
    int id = ::msgget(IPC_PRIVATE, IPC_CREAT | IPC_EXCL | (perms & 0777));
    if (id < 0)
        return false;
    id_ = id;
    creator_ = ::getpid();
    return true;
}

bool MsgQueue::remove()
{
    if (id_ < 0)
        return true;
    if (::msgctl(id_, IPC_RMID, nullptr) < 0 && errno != EINVAL && errno != EIDRM)
        return false;
    id_ = -1;
    return true;
}

size_t MsgQueue::max_message_size()
{
    static std::atomic<size_t> cached{0};
    size_t v = cached.load(std::memory_order_relaxed);
    if (v == 0) {
        v = read_msgmax();
        cached.store(v, std::memory_order_relaxed);
    }
    return v;
}

bool MsgQueue::gone() const
{
    struct msqid_ds ds;
    return id_ < 0 || (::msgctl(id_, IPC_STAT, &ds) < 0 && (errno == EINVAL || errno == EIDRM));
}

// Makes *buf hold a long mtype plus at least `want` payload bytes.
bool MsgQueue::grow(std::unique_ptr<char[]>* buf, size_t* cap, size_t want)
{
    if (*buf && *cap >= want)
        return true;
    char* p = new (std::nothrow) char[sizeof(long) + want];
    if (p == nullptr) {
        errno = ENOMEM;
        return false;
    }
    buf->reset(p);
    *cap = want;
    return true;
}

MsgQueue::Result MsgQueue::send(long mtype, const void* data, size_t len, bool block,
                                bool retry_eintr)
{
    if (mtype <= 0 || (data == nullptr && len > 0)) {
        errno = EINVAL;
        return kError;
    }
    if (len > max_message_size()) {
        errno = E2BIG;
        return kTooBig;
    }
    if (id_ < 0) {
        errno = EINVAL;
        return kRemoved;
    }
    if (!grow(&sbuf_, &scap_, max_message_size()))
        return kError;
    memcpy(sbuf_.get(), &mtype, sizeof(long));
    if (len > 0)
        memcpy(sbuf_.get() + sizeof(long), data, len);
    int flags = block ? 0 : IPC_NOWAIT;
    for (;;) {
        if (::msgsnd(id_, sbuf_.get(), len, flags) == 0)
            return kOk;
        int err = errno;
        if (err == EINTR && retry_eintr)
            continue;
        if (err == EINTR)
            return kInterrupted;
        if (err == EAGAIN)
            return kAgain;
        if (err == EINVAL && !gone()) {
            errno = E2BIG;  // kernel.msgmax was lowered after we cached it
            return kTooBig;
        }
        errno = err;
        if (err == EIDRM || err == EINVAL) {
            id_ = -1;
            return kRemoved;
        }
        return kError;  // EACCES, EFAULT, ENOMEM
    }
}

MsgQueue::Result MsgQueue::recv(long mtype, std::string* out, long* got_type, bool block,
                                bool retry_eintr)
{
    if (id_ < 0) {
        errno = EINVAL;
        return kRemoved;
    }
    if (!grow(&rbuf_, &rcap_, max_message_size()))
        return kError;
    int flags = block ? 0 : IPC_NOWAIT;
    ssize_t n;
    for (;;) {
        n = ::msgrcv(id_, rbuf_.get(), rcap_, mtype, flags);
        if (n >= 0)
            break;
        int err = errno;
        if (err == EINTR && retry_eintr)
            continue;
        if (err == EINTR)
            return kInterrupted;
        if (err == ENOMSG)
            return kAgain;
        if (err == E2BIG && rcap_ < (SIZE_MAX - sizeof(long)) / 2) {
            // A sender saw a larger kernel.msgmax than we did: grow, retry.
            if (!grow(&rbuf_, &rcap_, rcap_ * 2))
                return kError;
            continue;
        }
        errno = err;
        if (err == EIDRM || err == EINVAL) {
            id_ = -1;
            return kRemoved;
        }
        return kError;  // EACCES, EFAULT, ENOMEM
    }
    if (got_type != nullptr)
        memcpy(got_type, rbuf_.get(), sizeof(long));
    if (out != nullptr) {
        try {
            out->assign(rbuf_.get() + sizeof(long), static_cast<size_t>(n));
        } catch (...) {
            errno = ENOMEM;  // the message is consumed and lost
            return kError;
        }
    }
    return kOk;
}

size_t MsgQueue::queued_messages() const
{
    struct msqid_ds ds;
    if (id_ < 0) {
        errno = EINVAL;
        return 0;
    }
    return ::msgctl(id_, IPC_STAT, &ds) < 0 ? 0 : static_cast<size_t>(ds.msg_qnum);
}

size_t MsgQueue::queued_bytes() const
{
    struct msqid_ds ds;
    if (id_ < 0) {
        errno = EINVAL;
        return 0;
    }
    return ::msgctl(id_, IPC_STAT, &ds) < 0 ? 0 : static_cast<size_t>(ds.msg_cbytes);
}

size_t MsgQueue::max_queue_bytes() const
{
    struct msqid_ds ds;
    if (id_ < 0) {
        errno = EINVAL;
        return 0;
    }
    return ::msgctl(id_, IPC_STAT, &ds) < 0 ? 0 : static_cast<size_t>(ds.msg_qbytes);
}

bool MsgQueue::set_max_queue_bytes(size_t bytes)
{
    struct msqid_ds ds;
    if (id_ < 0) {
        errno = EINVAL;
        return false;
    }
    if (::msgctl(id_, IPC_STAT, &ds) < 0)
        return false;
    ds.msg_qbytes = static_cast<msglen_t>(bytes);
    return ::msgctl(id_, IPC_SET, &ds) == 0;
}

}  // namespace zan
