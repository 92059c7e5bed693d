// Fd: owns one file descriptor and closes it exactly once.
// Used by every process; an Fd inherited across fork is a second owner of
// the same open file description, so each side reset()s what it does not use.
#ifndef ZAN_FD_H
#define ZAN_FD_H

#include <unistd.h>

namespace zan {

class Fd {
public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept
    {
        if (this != &o)
            reset(o.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept
    {
        int f = fd_;
        fd_ = -1;
        return f;
    }
    // close() is not retried on EINTR: on Linux the descriptor is gone anyway.
    void reset(int f = -1) noexcept
    {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = f;
    }

private:
    int fd_;
};

}  // namespace zan

#endif
