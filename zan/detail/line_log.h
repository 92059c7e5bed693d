// LineLog: a file of whole lines that several processes append to (the
// HTTP access log). Lines are gathered in a buffer of this process and
// written with O_APPEND, whole lines per write(2), so that processes
// sharing the file never tear or interleave a line: on a regular file
// one write(2) is atomic with respect to the other appenders whatever
// its size (the kernel holds the file's lock for the whole call); on a
// pipe or FIFO only up to PIPE_BUF bytes are, so there a flush writes at
// most PIPE_BUF bytes of whole lines per call (a single longer line goes
// alone and may be torn). A short write (disk full, file size limit)
// is continued where it stopped; lines that cannot be written are
// dropped and counted, never kept without bound.
// Owns its descriptor (O_APPEND, O_CLOEXEC) and closes it once. Used by
// one process at a time: each process opens its own (after fork), and
// reopens it itself after the file is rotated.
#ifndef ZAN_DETAIL_LINE_LOG_H
#define ZAN_DETAIL_LINE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <string>
#include <string_view>

#include "zan/fd.h"

namespace zan {

class LineLog {
public:
    static constexpr size_t kBufferSize = 64 * 1024;

    LineLog() = default;
    ~LineLog() { close(); }
    LineLog(const LineLog&) = delete;
    LineLog& operator=(const LineLog&) = delete;

    // Opens (creates 0644) path for appending; buffered lines are flushed
    // to the old file first. False with errno, the old file kept.
    bool open(const std::string& path);
    // Flushes, then opens the same path again (after rotation).
    bool reopen();
    // Flushes and closes.
    void close();
    bool is_open() const { return fd_.valid(); }
    const std::string& path() const { return path_; }

    // Room for one line of at most max bytes, its '\n' included: write
    // it at the returned pointer, then call commit() with its end (after
    // the '\n'). Flushes first when the buffer cannot take max more bytes.
    char* begin_line(size_t max);
    void commit(const char* end) { len_ = static_cast<size_t>(end - buf_.get()); }
    // Appends line and a '\n'.
    void append(std::string_view line);

    // Writes the buffered lines. False with errno when some could not be
    // written: after EAGAIN they stay buffered for the next flush, after
    // any other error they are dropped (and counted).
    bool flush();
    size_t pending() const { return len_; }
    uint64_t dropped_lines() const { return dropped_; }

private:
    bool write_out(size_t* done);
    void drop(size_t from);
    void reserve(size_t n);

    Fd fd_;
    std::string path_;
    std::unique_ptr<char[]> buf_;
    size_t cap_ = 0;
    size_t len_ = 0;
    bool regular_ = true;   // a regular file: no PIPE_BUF limit per write
    int last_errno_ = 0;    // the error last logged, so a full disk logs once
    uint64_t dropped_ = 0;
};

}  // namespace zan

#endif
