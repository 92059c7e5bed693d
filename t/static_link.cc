// Built by t/static_check.sh against the *installed* headers and library
// with -static. It exercises a few modules and then proves from its own
// ELF program headers that it has no dynamic loader and no dynamic section.
#include <elf.h>
#include <stdio.h>
#include <string.h>

#include <fstream>
#include <optional>
#include <vector>

#include "zan/zan.h"

int main()
{
    zan::Buffer buf;
    buf.append("static ok");
    std::optional<zan::InetAddr> addr = zan::InetAddr::parse("127.0.0.1", 9501);
    if (!addr || addr->port() != 9501) {
        fprintf(stderr, "static_link: InetAddr broken\n");
        return 1;
    }
    zan::EventLoop loop;
    int fired = 0;
    loop.run_after(0, [&] { fired++; loop.stop(); });
    loop.run();
    if (fired != 1) {
        fprintf(stderr, "static_link: EventLoop broken\n");
        return 1;
    }

    std::ifstream f("/proc/self/exe", std::ios::binary);
    Elf64_Ehdr eh;
    if (!f.read(reinterpret_cast<char*>(&eh), sizeof(eh)) || memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
        fprintf(stderr, "static_link: cannot read own ELF header\n");
        return 1;
    }
    std::vector<Elf64_Phdr> ph(eh.e_phnum);
    f.seekg(static_cast<std::streamoff>(eh.e_phoff));
    f.read(reinterpret_cast<char*>(ph.data()),
           static_cast<std::streamsize>(eh.e_phnum * sizeof(Elf64_Phdr)));
    for (const Elf64_Phdr& p : ph) {
        if (p.p_type == PT_INTERP || p.p_type == PT_DYNAMIC) {
            fprintf(stderr, "static_link: binary is dynamically linked (%s)\n",
                    p.p_type == PT_INTERP ? "PT_INTERP" : "PT_DYNAMIC");
            return 1;
        }
    }
    printf("static_link: %s, statically linked (no PT_INTERP, no PT_DYNAMIC)\n",
           std::string(buf.view()).c_str());
    return 0;
}
