#include "t/tmp_helpers.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "zan/log.h"

namespace zt {

std::string make_temp_dir()
{
    char tmpl[] = "/tmp/zan-test-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    return d ? d : "";
}

void remove_tree(const std::string& dir)
{
    if (dir.empty() || dir.rfind("/tmp/zan-test-", 0) != 0)
        return;  // only what make_temp_dir() made
    // Depth first, and symlinks are removed, never followed.
    ::nftw(dir.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); },
           16, FTW_DEPTH | FTW_PHYS);
}

bool write_file(const std::string& path, const std::string& data)
{
    FILE* f = ::fopen(path.c_str(), "wb");
    if (!f)
        return false;
    bool ok = ::fwrite(data.data(), 1, data.size(), f) == data.size();
    return ::fclose(f) == 0 && ok;
}

std::string read_file(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool set_mtime(const std::string& path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    return ::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0;
}

CapturedLog::CapturedLog(const char* prefix)
{
    std::string tmpl = std::string("/tmp/") + prefix + ".XXXXXX";
    int fd = ::mkstemp(&tmpl[0]);
    if (fd >= 0) {
        ::close(fd);
        path_ = tmpl;
        zan::Logger::instance().open(path_);
    }
}

CapturedLog::~CapturedLog()
{
    zan::Logger::instance().open("");
    if (!path_.empty())
        ::unlink(path_.c_str());
}

std::string CapturedLog::text() const
{
    std::string out;
    if (FILE* f = ::fopen(path_.c_str(), "r")) {
        char buf[512];
        size_t n;
        while ((n = ::fread(buf, 1, sizeof(buf), f)) > 0)
            out.append(buf, n);
        ::fclose(f);
    }
    return out;
}

}  // namespace zt
