#include "zan/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "zan/sys.h"

namespace zan {

static const char* const kLevelNames[] = {"debug", "info", "warn", "error", "off"};

const char* level_name(Level level) { return kLevelNames[static_cast<int>(level)]; }

std::optional<Level> parse_level(std::string_view text)
{
    for (int i = 0; i <= 4; i++) {
        if (text == kLevelNames[i] || (text.size() == 1 && text[0] == '0' + i))
            return static_cast<Level>(i);
    }
    return std::nullopt;
}

Logger& Logger::instance()
{
    static Logger logger;
    return logger;
}

Logger::~Logger()
{
    if (owns_fd_)
        ::close(fd_);
}

bool Logger::open(const std::string& path)
{
    int fd = 2;
    if (!path.empty()) {
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return false;
    }
    if (owns_fd_)
        ::close(fd_);
    fd_ = fd;
    owns_fd_ = !path.empty();
    path_ = path;
    return true;
}

bool Logger::reopen()
{
    if (path_.empty())
        return true;
    std::string p = path_;
    return open(p);
}

void Logger::set_tag(std::string_view tag)
{
    size_t n = tag.size() < sizeof(tag_) - 1 ? tag.size() : sizeof(tag_) - 1;
    memcpy(tag_, tag.data(), n);
    tag_[n] = '\0';
}

void Logger::vwrite(Level level, int err, const char* fmt, va_list ap)
{
    int saved = errno;  // before localtime_r(), which may set it
    char line[4096];
    struct timeval tv;
    ::gettimeofday(&tv, nullptr);
    struct tm tm;
    ::localtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d.%03d %s %d %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, static_cast<int>(tv.tv_usec / 1000), level_name(level),
                     static_cast<int>(::getpid()), tag_);
    size_t len = static_cast<size_t>(n);
    const size_t room = sizeof(line) - 1;  // keep one byte for '\n'
    if (len < room) {
        int m = vsnprintf(line + len, room - len, fmt, ap);
        if (m > 0)
            len += static_cast<size_t>(m);
    }
    if (err >= 0 && len < room) {
        char ebuf[128];
        const char* es = strerror_r(err, ebuf, sizeof(ebuf));
        int m = snprintf(line + len, room - len, ": %s", es);
        if (m > 0)
            len += static_cast<size_t>(m);
    }
    if (len > room - 1)
        len = room - 1;  // truncated: vsnprintf already wrote a terminator
    line[len++] = '\n';
    write_some(fd_, line, len);  // one write(2) per line; a lost line is not retried
    errno = saved;
}

void log(Level level, const char* fmt, ...)
{
    Logger& l = Logger::instance();
    if (!l.enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    l.vwrite(level, -1, fmt, ap);
    va_end(ap);
}

void log_errno(Level level, int err, const char* fmt, ...)
{
    Logger& l = Logger::instance();
    if (!l.enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    l.vwrite(level, err, fmt, ap);
    va_end(ap);
}

}  // namespace zan
