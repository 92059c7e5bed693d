// Unit tests for zan::Logger, log() and log_errno(): the line format, level
// filtering, truncation to one line, reopen() after rotation, and whole
// lines from processes sharing one O_APPEND file.
#include "zan/log.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "t/fork_helpers.h"
#include "t/tmp_helpers.h"
#include "zan/sys.h"

using zan::Level;
using zan::Logger;

namespace {

using zt::wait_child;

// Splits on '\n'; a last piece without '\n' is returned too (and is a bug).
std::vector<std::string> lines_of(const std::string& s)
{
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t nl = s.find('\n', pos);
        if (nl == std::string::npos) {
            out.push_back(s.substr(pos));
            break;
        }
        out.push_back(s.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

struct Parsed {
    time_t when = 0;
    std::string level;
    long pid = 0;
    std::string tag;
    std::string msg;
};

// Parses "YYYY-MM-DD HH:MM:SS.mmm level pid tag: msg" strictly. (No
// std::regex: GCC 12 warns inside <regex> under -fsanitize with -Werror.)
bool parse_line(const std::string& line, Parsed* p)
{
    static const char kShape[] = "dddd-dd-dd dd:dd:dd.ddd ";
    const size_t n = sizeof(kShape) - 1;
    if (line.size() < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool digit = line[i] >= '0' && line[i] <= '9';
        if (kShape[i] == 'd' ? !digit : line[i] != kShape[i])
            return false;
    }
    auto num = [&](size_t at, size_t len) { return std::stoi(line.substr(at, len)); };
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = num(0, 4) - 1900;
    tm.tm_mon = num(5, 2) - 1;
    tm.tm_mday = num(8, 2);
    tm.tm_hour = num(11, 2);
    tm.tm_min = num(14, 2);
    tm.tm_sec = num(17, 2);
    tm.tm_isdst = -1;
    p->when = mktime(&tm);

    size_t sp = line.find(' ', n);
    if (sp == std::string::npos)
        return false;
    p->level = line.substr(n, sp - n);
    if (p->level != "debug" && p->level != "info" && p->level != "warn" && p->level != "error")
        return false;
    size_t at = sp + 1;
    sp = line.find(' ', at);
    if (sp == std::string::npos || sp == at)
        return false;
    for (size_t i = at; i < sp; i++)
        if (line[i] < '0' || line[i] > '9')
            return false;
    p->pid = std::stol(line.substr(at, sp - at));
    at = sp + 1;
    size_t colon = line.find(": ", at);
    if (colon == std::string::npos || colon == at)
        return false;
    p->tag = line.substr(at, colon - at);
    if (p->tag.find_first_of(" :") != std::string::npos)
        return false;
    p->msg = line.substr(colon + 2);
    return true;
}

}  // namespace

// Points the process-wide Logger at a fresh file in a temporary directory
// and puts its old settings back afterwards.
class Log : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/zan_log_test.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << strerror(errno);
        dir_ = tmpl;
        path_ = dir_ + "/zan.log";
        Logger& l = Logger::instance();
        saved_path_ = l.path();
        saved_level_ = l.level();
        ASSERT_TRUE(l.open(path_)) << strerror(errno);
        l.set_level(Level::debug);
        l.set_tag("test");
    }
    void TearDown() override
    {
        Logger& l = Logger::instance();
        l.open(saved_path_);
        l.set_level(saved_level_);
        l.set_tag("main");
        for (const char* f : {"/zan.log", "/zan.log.1"})
            ::unlink((dir_ + f).c_str());
        ::rmdir(dir_.c_str());
    }

    std::vector<std::string> lines() { return lines_of(zt::read_file(path_)); }

    std::string dir_;
    std::string path_;
    std::string saved_path_;
    Level saved_level_ = Level::info;
};

TEST_F(Log, LineFormat)
{
    time_t before = time(nullptr);
    zan::log(Level::info, "hello %d %s", 42, "world");
    time_t after = time(nullptr);
    std::string text = zt::read_file(path_);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    std::vector<std::string> ls = lines_of(text);
    ASSERT_EQ(ls.size(), 1u);
    Parsed p;
    ASSERT_TRUE(parse_line(ls[0], &p)) << ls[0];
    EXPECT_EQ(p.level, "info");
    EXPECT_EQ(p.pid, static_cast<long>(::getpid()));
    EXPECT_EQ(p.tag, "test");
    EXPECT_EQ(p.msg, "hello 42 world");
    EXPECT_GE(p.when, before - 1);
    EXPECT_LE(p.when, after + 1);
}

TEST_F(Log, FileIsAppendAndCloexec)
{
    int fd = Logger::instance().fd();
    ASSERT_GE(fd, 0);
    EXPECT_NE(fd, 2);
    EXPECT_EQ(Logger::instance().path(), path_);
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_APPEND);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct stat st;
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777 & ~0644u, 0u);  // at most 0644 after the umask
}

TEST_F(Log, AppendsToExistingFile)
{
    zan::log(Level::info, "one");
    ASSERT_TRUE(Logger::instance().open(path_));
    zan::log(Level::info, "two");
    std::vector<std::string> ls = lines();
    ASSERT_EQ(ls.size(), 2u);
    Parsed p;
    ASSERT_TRUE(parse_line(ls[1], &p));
    EXPECT_EQ(p.msg, "two");
}

TEST_F(Log, LevelFiltering)
{
    Logger& l = Logger::instance();
    l.set_level(Level::warn);
    EXPECT_EQ(l.level(), Level::warn);
    EXPECT_FALSE(l.enabled(Level::debug));
    EXPECT_FALSE(l.enabled(Level::info));
    EXPECT_TRUE(l.enabled(Level::warn));
    EXPECT_TRUE(l.enabled(Level::error));
    zan::log(Level::debug, "d");
    zan::log(Level::info, "i");
    zan::log(Level::warn, "w");
    zan::log_errno(Level::info, EIO, "ie");
    zan::log_errno(Level::error, EIO, "e");
    std::vector<std::string> ls = lines();
    ASSERT_EQ(ls.size(), 2u);
    Parsed p;
    ASSERT_TRUE(parse_line(ls[0], &p));
    EXPECT_EQ(p.level, "warn");
    EXPECT_EQ(p.msg, "w");
    ASSERT_TRUE(parse_line(ls[1], &p));
    EXPECT_EQ(p.level, "error");

    l.set_level(Level::off);
    zan::log(Level::error, "nothing");
    EXPECT_EQ(lines().size(), 2u);
}

TEST_F(Log, LogErrnoAppendsStrerror)
{
    zan::log_errno(Level::error, ENOENT, "open(%s) failed", "/nope");
    std::vector<std::string> ls = lines();
    ASSERT_EQ(ls.size(), 1u);
    Parsed p;
    ASSERT_TRUE(parse_line(ls[0], &p)) << ls[0];
    EXPECT_EQ(p.level, "error");
    EXPECT_EQ(p.msg, std::string("open(/nope) failed: ") + strerror(ENOENT));
}

TEST_F(Log, PreservesErrno)
{
    errno = EXDEV;
    zan::log(Level::info, "x");
    EXPECT_EQ(errno, EXDEV);
    errno = ETIMEDOUT;
    zan::log_errno(Level::warn, ENOSPC, "y");
    EXPECT_EQ(errno, ETIMEDOUT);
}

// Message lengths around the 4 KiB limit: each gives exactly one line,
// shorter than 4096 bytes with its '\n', holding a prefix of the message.
TEST_F(Log, LongMessageTruncatedToOneLine)
{
    std::string big(10000, 'a');
    for (size_t i = 0; i < big.size(); i++)
        big[i] = static_cast<char>('a' + i % 26);
    std::vector<size_t> sizes = {10000, 4096, 4095};
    for (size_t n = 4020; n < 4100; n++)
        sizes.push_back(n);
    for (size_t n : sizes) {
        ASSERT_EQ(::ftruncate(Logger::instance().fd(), 0), 0);
        zan::log(Level::info, "%.*s", static_cast<int>(n), big.c_str());
        zan::log_errno(Level::info, EPIPE, "%.*s", static_cast<int>(n), big.c_str());
        std::string text = zt::read_file(path_);
        std::vector<std::string> ls = lines_of(text);
        ASSERT_EQ(ls.size(), 2u) << "n=" << n;
        ASSERT_EQ(text.back(), '\n');
        for (int i = 0; i < 2; i++) {
            const std::string& line = ls[i];
            std::string full = big.substr(0, n);
            if (i == 1)
                full += std::string(": ") + strerror(EPIPE);
            EXPECT_LT(line.size() + 1, 4096u) << "n=" << n;
            Parsed p;
            ASSERT_TRUE(parse_line(line, &p)) << "n=" << n;
            if (line.size() + 1 < 4095)  // room to spare: nothing was cut
                EXPECT_EQ(p.msg, full) << "n=" << n;
            else
                EXPECT_EQ(full.compare(0, p.msg.size(), p.msg), 0) << "n=" << n;
        }
    }
    // A short message is never cut.
    ASSERT_EQ(::ftruncate(Logger::instance().fd(), 0), 0);
    zan::log(Level::info, "%.*s", 3000, big.c_str());
    Parsed p;
    ASSERT_TRUE(parse_line(lines()[0], &p));
    EXPECT_EQ(p.msg, big.substr(0, 3000));
}

TEST_F(Log, ReopenAfterRenameCreatesNewFile)
{
    Logger& l = Logger::instance();
    zan::log(Level::info, "before");
    std::string rotated = path_ + ".1";
    ASSERT_EQ(::rename(path_.c_str(), rotated.c_str()), 0);
    zan::log(Level::info, "still old");  // the open fd follows the renamed file
    struct stat st;
    EXPECT_NE(::stat(path_.c_str(), &st), 0);
    ASSERT_TRUE(l.reopen()) << strerror(errno);
    EXPECT_EQ(l.path(), path_);
    zan::log(Level::info, "after");

    std::vector<std::string> old_lines = lines_of(zt::read_file(rotated));
    ASSERT_EQ(old_lines.size(), 2u);
    Parsed p;
    ASSERT_TRUE(parse_line(old_lines[1], &p));
    EXPECT_EQ(p.msg, "still old");
    std::vector<std::string> new_lines = lines();
    ASSERT_EQ(new_lines.size(), 1u);
    ASSERT_TRUE(parse_line(new_lines[0], &p));
    EXPECT_EQ(p.msg, "after");
}

TEST_F(Log, OpenFailureKeepsCurrentFile)
{
    Logger& l = Logger::instance();
    int fd = l.fd();
    errno = 0;
    EXPECT_FALSE(l.open(dir_ + "/no/such/dir/x.log"));
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(l.fd(), fd);
    EXPECT_EQ(l.path(), path_);
    zan::log(Level::info, "still here");
    EXPECT_EQ(lines().size(), 1u);
}

TEST_F(Log, EmptyPathMeansStderr)
{
    Logger& l = Logger::instance();
    int fd = l.fd();
    ASSERT_TRUE(l.open(""));
    EXPECT_EQ(l.fd(), 2);
    EXPECT_TRUE(l.path().empty());
    EXPECT_TRUE(::fcntl(fd, F_GETFD) < 0 && errno == EBADF);  // the file was closed
    EXPECT_TRUE(l.reopen());
    EXPECT_EQ(l.fd(), 2);
    EXPECT_TRUE(::fcntl(2, F_GETFD) >= 0);  // stderr itself is never closed
    ASSERT_TRUE(l.open(path_));
}

TEST_F(Log, TagIsTruncated)
{
    Logger::instance().set_tag("a-very-long-process-tag-name-indeed");
    zan::log(Level::info, "m");
    Parsed p;
    ASSERT_TRUE(parse_line(lines()[0], &p));
    EXPECT_EQ(p.tag, std::string("a-very-long-process-tag-name-indeed").substr(0, 23));
}

TEST_F(Log, ParseLevelAndLevelName)
{
    const char* names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= 4; i++) {
        std::optional<Level> lv = zan::parse_level(names[i]);
        ASSERT_TRUE(lv);
        EXPECT_EQ(static_cast<int>(*lv), i);
        EXPECT_STREQ(zan::level_name(*lv), names[i]);
        char digit[2] = {static_cast<char>('0' + i), '\0'};
        lv = zan::parse_level(digit);
        ASSERT_TRUE(lv);
        EXPECT_EQ(static_cast<int>(*lv), i);
    }
    for (const char* bad : {"", "5", "INFO", "warning", "00", "info "})
        EXPECT_FALSE(zan::parse_level(bad)) << bad;
}

// Two forked writers, released together, write 2000 lines each to the same
// O_APPEND file; every line must come out whole and in each writer's order.
TEST_F(Log, ForkedWritersNeverInterleave)
{
    const int kLines = 2000;
    const std::string pad(300, '=');
    zan::Fd gate_r, gate_w;
    ASSERT_TRUE(zan::make_pipe(false, &gate_r, &gate_w));
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = ::fork();
        ASSERT_GE(pids[k], 0);
        if (pids[k] == 0) {
            gate_w.reset();
            char c;
            if (zan::read_some(gate_r.get(), &c, 1) != 0)  // EOF is the start signal
                _exit(1);
            Logger::instance().set_tag(k == 0 ? "w0" : "w1");
            for (int i = 0; i < kLines; i++)
                zan::log(Level::info, "seq %d %s", i, pad.c_str());
            _exit(0);
        }
    }
    gate_r.reset();
    gate_w.reset();  // both children start now
    for (int k = 0; k < 2; k++) {
        int st = wait_child(pids[k], 5000);
        EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child " << k;
    }

    std::string text = zt::read_file(path_);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    std::vector<std::string> ls = lines_of(text);
    EXPECT_EQ(ls.size(), static_cast<size_t>(2 * kLines));
    int next[2] = {0, 0};
    for (const std::string& line : ls) {
        Parsed p;
        ASSERT_TRUE(parse_line(line, &p)) << "broken line: " << line.substr(0, 120);
        ASSERT_TRUE(p.tag == "w0" || p.tag == "w1") << p.tag;
        int k = p.tag == "w0" ? 0 : 1;
        EXPECT_EQ(p.pid, static_cast<long>(pids[k]));
        ASSERT_EQ(p.msg, "seq " + std::to_string(next[k]) + " " + pad);
        next[k]++;
    }
    EXPECT_EQ(next[0], kLines);
    EXPECT_EQ(next[1], kLines);
}
