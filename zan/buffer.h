// Buffer: a growable byte buffer for socket and channel I/O.
//
//   +-----------------+------------------+------------------+
//   | prependable     | readable         | writable         |
//   +-----------------+------------------+------------------+
//   0          read_index       write_index            capacity
//
// Consuming from the front is O(1); space at the front lets a header be
// prepended without moving the payload. Owns its memory only; it never
// closes the descriptors it reads from or writes to. Private to one
// process (a copy survives fork like any heap object).
#ifndef ZAN_BUFFER_H
#define ZAN_BUFFER_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include <string_view>
#include <vector>

namespace zan {

class Buffer {
public:
    static constexpr size_t kCheapPrepend = 16;
    static constexpr size_t kInitialSize = 1024;

    explicit Buffer(size_t initial = kInitialSize)
        : buf_(kCheapPrepend + initial), read_(kCheapPrepend), write_(kCheapPrepend)
    {
    }

    size_t readable() const { return write_ - read_; }
    size_t writable() const { return buf_.size() - write_; }
    size_t prependable() const { return read_; }
    bool empty() const { return read_ == write_; }
    size_t capacity() const { return buf_.size(); }

    const char* peek() const { return buf_.data() + read_; }
    char* begin_write() { return buf_.data() + write_; }
    std::string_view view() const { return std::string_view(peek(), readable()); }

    void consume(size_t n)
    {
        if (n < readable()) {
            read_ += n;
        } else {
            clear();
        }
    }
    void clear() { read_ = write_ = kCheapPrepend; }

    void append(const void* data, size_t len)
    {
        ensure_writable(len);
        memcpy(begin_write(), data, len);
        write_ += len;
    }
    void append(std::string_view s) { append(s.data(), s.size()); }
    // Marks `n` bytes written directly at begin_write().
    void commit(size_t n) { write_ += n; }
    // Makes room for `len` more bytes, compacting before growing.
    void ensure_writable(size_t len)
    {
        if (writable() < len)
            make_space(len);
    }
    // Puts `len` bytes in front of the readable data; needs
    // prependable() >= len (true for up to kCheapPrepend after a clear()).
    void prepend(const void* data, size_t len);

    // Releases memory beyond `keep` bytes of capacity when the buffer is
    // empty (for idle connections).
    void shrink_if_empty(size_t keep = 0);

    // Reads what is available on `fd` with one readv(2) into the writable
    // space plus a 64 KiB stack area. Returns bytes read, 0 at EOF, or -1
    // with the error in *saved_errno. EINTR is retried.
    ssize_t read_fd(int fd, int* saved_errno);
    // Writes the readable bytes with one write(2) and consumes what was
    // written. Returns bytes written or -1 with the error in *saved_errno.
    ssize_t write_fd(int fd, int* saved_errno);

private:
    void make_space(size_t len);

    std::vector<char> buf_;
    size_t read_;
    size_t write_;
};

}  // namespace zan

#endif
