// Levelled logging. Each line is formatted in a stack buffer and written
// with one write(2) to an O_APPEND descriptor, so lines from different
// processes never interleave and no cross-process lock is needed.
// The Logger is one object per process (inherited across fork); a child
// calls set_tag() to name itself in every line it writes.
#ifndef ZAN_LOG_H
#define ZAN_LOG_H

#include <stdarg.h>

#include <optional>
#include <string>
#include <string_view>

namespace zan {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

const char* level_name(Level level);
// Accepts "debug", "info", "warn", "error", "off" or a digit 0-4.
std::optional<Level> parse_level(std::string_view text);

class Logger {
public:
    static Logger& instance();

    // Logs to `path` (created 0644, O_APPEND, O_CLOEXEC); an empty path
    // means standard error. Returns false with errno set.
    bool open(const std::string& path);
    // Re-opens the current file (after log rotation). No-op for stderr.
    bool reopen();
    const std::string& path() const { return path_; }
    int fd() const { return fd_; }

    void set_level(Level level) { level_ = level; }
    Level level() const { return level_; }
    bool enabled(Level level) const { return level != Level::off && level >= level_; }
    // Short process name shown in each line, e.g. "master", "net-1", "worker-3".
    void set_tag(std::string_view tag);

    // Formats and writes one line; `err` >= 0 appends ": strerror(err)".
    void vwrite(Level level, int err, const char* fmt, va_list ap);

    ~Logger();

private:
    Logger() = default;
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;

    int fd_ = 2;
    bool owns_fd_ = false;
    Level level_ = Level::info;
    std::string path_;
    char tag_[24] = "main";
};

void log(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void log_errno(Level level, int err, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace zan

#endif
