// Replays fuzzer inputs without libFuzzer: calls LLVMFuzzerTestOneInput on
// every file named on the command line (a directory: every file in it).
// Used by `make check` to replay t/fuzz/corpus with any compiler.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool replay(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fprintf(stderr, "replay: cannot read %s\n", path.c_str());
        return false;
    }
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    int n = 0;
    bool ok = true;
    for (int i = 1; i < argc; ++i) {
        struct stat st;
        std::vector<std::string> files;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (DIR* d = opendir(argv[i])) {
                while (dirent* e = readdir(d))
                    if (e->d_name[0] != '.') files.push_back(std::string(argv[i]) + "/" + e->d_name);
                closedir(d);
            }
        } else {
            files.push_back(argv[i]);
        }
        for (const std::string& f : files) {
            ok = replay(f) && ok;
            ++n;
        }
    }
    printf("replay: %d inputs, %s\n", n, ok ? "no failures" : "unreadable files");
    return ok ? 0 : 1;
}
