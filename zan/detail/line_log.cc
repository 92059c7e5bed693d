#include "zan/detail/line_log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zan/log.h"

namespace zan {

bool LineLog::open(const std::string& path)
{
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    flush();  // what the old file was due
    struct stat st;
    regular_ = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    fd_.reset(fd);
    path_ = path;
    return true;
}

bool LineLog::reopen()
{
    if (path_.empty()) {
        errno = EBADF;
        return false;
    }
    std::string p = path_;
    return open(p);
}

void LineLog::close()
{
    flush();
    fd_.reset();
}

void LineLog::reserve(size_t n)
{
    if (cap_ - len_ >= n)
        return;
    size_t cap = len_ + n > kBufferSize ? len_ + n : kBufferSize;
    std::unique_ptr<char[]> b(new char[cap]);
    if (len_)
        memcpy(b.get(), buf_.get(), len_);
    buf_ = std::move(b);
    cap_ = cap;
}

char* LineLog::begin_line(size_t max)
{
    if (cap_ - len_ < max && len_ > 0 && !flush() && cap_ - len_ < max)
        drop(0);  // the file takes nothing (EAGAIN): the oldest lines go
    reserve(max);
    return buf_.get() + len_;
}

void LineLog::append(std::string_view line)
{
    char* p = begin_line(line.size() + 1);
    memcpy(p, line.data(), line.size());
    p[line.size()] = '\n';
    commit(p + line.size() + 1);
}

// Writes buf_[0, len_) in whole lines per call; *done gets the bytes
// written. False with errno on the first failed call.
bool LineLog::write_out(size_t* done)
{
    const char* b = buf_.get();
    size_t off = 0;
    while (off < len_) {
        size_t n = len_ - off;
        if (!regular_ && n > PIPE_BUF) {
            // At most PIPE_BUF bytes are atomic here: the whole lines that
            // fit, or one longer line alone.
            const char* p = b + off;
            const void* nl = memrchr(p, '\n', PIPE_BUF);
            if (!nl)
                nl = memchr(p + PIPE_BUF, '\n', n - PIPE_BUF);
            if (nl)
                n = static_cast<size_t>(static_cast<const char*>(nl) - p) + 1;
        }
        ssize_t w = ::write(fd_.get(), b + off, n);
        if (w < 0 && errno == EINTR)
            continue;  // nothing was written
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            *done = off;
            return false;
        }
        // A short write (a full disk, the file size limit, a signal in a
        // long write) goes on from where it stopped: the rest of a cut
        // line follows at once, and the next call reports the error.
        off += static_cast<size_t>(w);
    }
    *done = off;
    return true;
}

// Drops buf_[from, len_) (whole lines but possibly the first), counting
// the lines.
void LineLog::drop(size_t from)
{
    const char* p = buf_.get() + from;
    const char* end = buf_.get() + len_;
    uint64_t n = 0;
    while (p < end) {
        const void* nl = memchr(p, '\n', static_cast<size_t>(end - p));
        n++;
        p = nl ? static_cast<const char*>(nl) + 1 : end;
    }
    dropped_ += n;
    len_ = from;
}

bool LineLog::flush()
{
    if (len_ == 0)
        return true;
    if (!fd_.valid()) {
        drop(0);
        errno = EBADF;
        return false;
    }
    size_t done = 0;
    if (write_out(&done)) {
        len_ = 0;
        last_errno_ = 0;
        return true;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
        // No room now (a non-blocking pipe): keep the rest for later.
        memmove(buf_.get(), buf_.get() + done, len_ - done);
        len_ -= done;
    } else {
        uint64_t before = dropped_;
        drop(done);
        len_ = 0;
        if (err != last_errno_)
            log_errno(Level::error, err, "write() to %s failed: %llu lines dropped", path_.c_str(),
                      static_cast<unsigned long long>(dropped_ - before));
    }
    last_errno_ = err;
    errno = err;
    return false;
}

}  // namespace zan
