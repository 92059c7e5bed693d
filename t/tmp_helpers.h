// Temporary files and directories of the tests, small whole-file reads
// and writes, and CapturedLog, which points the process Logger at a
// temporary file.
#ifndef ZAN_T_TMP_HELPERS_H
#define ZAN_T_TMP_HELPERS_H

#include <time.h>

#include <string>

namespace zt {

// A fresh directory under /tmp (mkdtemp); removed with remove_tree(),
// with everything below it (symlinks are removed, never followed).
std::string make_temp_dir();
void remove_tree(const std::string& dir);

// A directory from make_temp_dir(), removed with all it holds at scope exit.
struct TempDir {
    std::string path = make_temp_dir();
    ~TempDir() { remove_tree(path); }
};

std::string read_file(const std::string& path);
// Creates or truncates path with data; false on any error.
bool write_file(const std::string& path, const std::string& data);
// Sets path's access and modification times to t (links not followed).
bool set_mtime(const std::string& path, time_t t);
bool file_exists(const std::string& path);

// Points the process Logger at a temporary file for the life of the object
// (keeps expected warn lines out of the test output); text() reads it.
class CapturedLog {
public:
    explicit CapturedLog(const char* prefix = "zan_test");
    ~CapturedLog();
    CapturedLog(const CapturedLog&) = delete;
    CapturedLog& operator=(const CapturedLog&) = delete;
    std::string text() const;

private:
    std::string path_;
};

}  // namespace zt

#endif
