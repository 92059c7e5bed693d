// ShmRegion: mapping, bump allocation, and sharing across fork.
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "t/fork_helpers.h"
#include "zan/fd.h"
#include "zan/detail/shm.h"
#include "zan/sys.h"

namespace {

using zt::Child;
using zt::read_byte;

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

struct Counters {
    long hits;
    char name[32];
};

struct WithDefaults {
    int a = 7;
    int b = 9;
};

struct Ninety {
    char bytes[90];
};

struct alignas(128) Wide {
    char bytes[200];
};

}  // namespace

TEST(Shm, CreateRoundsUpToPagesAndZeroFills)
{
    zan::ShmRegion r;
    EXPECT_FALSE(r.valid());
    ASSERT_TRUE(r.create(100)) << strerror(errno);
    size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    EXPECT_TRUE(r.valid());
    EXPECT_EQ(r.size(), page);
    EXPECT_EQ(r.used(), 0u);
    EXPECT_EQ(r.creator(), ::getpid());
    EXPECT_TRUE(aligned(r.data(), page));
    const unsigned char* p = static_cast<const unsigned char*>(r.data());
    for (size_t i = 0; i < r.size(); i++)
        ASSERT_EQ(p[i], 0) << "byte " << i;

    zan::ShmRegion big;
    ASSERT_TRUE(big.create(page + 1));
    EXPECT_EQ(big.size(), 2 * page);
}

TEST(Shm, BadArguments)
{
    zan::ShmRegion r;
    errno = 0;
    EXPECT_FALSE(r.create(0));
    EXPECT_EQ(errno, EINVAL);
    EXPECT_FALSE(r.create(SIZE_MAX));
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(r.alloc_bytes(8, 8), nullptr);  // no mapping yet
    EXPECT_EQ(errno, EINVAL);

    ASSERT_TRUE(r.create(4096));
    EXPECT_FALSE(r.create(4096));
    EXPECT_EQ(errno, EBUSY);
    EXPECT_EQ(r.alloc_bytes(0, 8), nullptr);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(r.alloc_bytes(8, 0), nullptr);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(r.alloc_bytes(8, 24), nullptr);  // not a power of two
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(r.alloc<int>(0), nullptr);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(r.used(), 0u);
}

TEST(Shm, VisibleAcrossFork)
{
    zan::ShmRegion r;
    ASSERT_TRUE(r.create(1 << 16));
    Counters* c = r.alloc<Counters>();
    ASSERT_NE(c, nullptr);
    c->hits = 41;  // written before fork: the child starts from it

    // Two pipes order the steps: the child writes, says so on `ready`; the
    // parent checks, writes, says so on `go`; the child checks.
    zan::Fd ready_rd, ready_wr, go_rd, go_wr;
    ASSERT_TRUE(zan::make_pipe(false, &ready_rd, &ready_wr));
    ASSERT_TRUE(zan::make_pipe(false, &go_rd, &go_wr));
    Child child;
    ASSERT_TRUE(child.start([&] {
        if (c->hits != 41)
            return 1;
        c->hits = 42;
        strcpy(c->name, "from child");
        if (zan::write_all(ready_wr.get(), "r", 1) != 1)
            return 2;
        char b;
        if (!read_byte(go_rd.get(), 5000, &b))
            return 3;
        return c->hits == 100 ? 0 : 4;  // the parent's write after fork
    }));
    ready_wr.reset();
    go_rd.reset();
    char b;
    ASSERT_TRUE(read_byte(ready_rd.get(), 5000, &b)) << "child exited: " << child.wait(0);
    EXPECT_EQ(c->hits, 42);
    c->hits = 100;
    ASSERT_EQ(zan::write_all(go_wr.get(), "g", 1), 1);
    ASSERT_EQ(child.wait(5000), 0);
    EXPECT_STREQ(c->name, "from child");
}

TEST(Shm, AllocAlignment)
{
    zan::ShmRegion r;
    ASSERT_TRUE(r.create(1 << 16));
    char* a = r.alloc<char>();
    char* b = r.alloc<char>(3);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(aligned(a, zan::ShmRegion::kCacheLine));
    EXPECT_TRUE(aligned(b, zan::ShmRegion::kCacheLine));
    EXPECT_EQ(b - a, 64);  // one char still takes a whole cache line
    Wide* w = r.alloc<Wide>(2);
    ASSERT_NE(w, nullptr);
    EXPECT_TRUE(aligned(w, 128));
    EXPECT_TRUE(aligned(&w[1], 128));

    void* raw = r.alloc_bytes(1, 1);
    ASSERT_NE(raw, nullptr);
    void* eight = r.alloc_bytes(8, 8);
    EXPECT_TRUE(aligned(eight, 8));
    EXPECT_EQ(static_cast<char*>(eight) - static_cast<char*>(raw), 8);
    void* paged = r.alloc_bytes(10, 4096);
    EXPECT_TRUE(aligned(paged, 4096));
    EXPECT_TRUE(r.contains(paged, 10));
    EXPECT_FALSE(r.contains(static_cast<char*>(r.data()) + r.size()));
    EXPECT_TRUE(r.contains(static_cast<char*>(r.data()) + r.size() - 1));
    EXPECT_FALSE(r.contains(&r));
    EXPECT_EQ(r.used(), static_cast<size_t>(static_cast<char*>(paged) + 10 -
                                            static_cast<char*>(r.data())));
}

TEST(Shm, AllocValueInitialises)
{
    zan::ShmRegion r;
    ASSERT_TRUE(r.create(4096));
    WithDefaults* d = r.alloc<WithDefaults>(5);
    ASSERT_NE(d, nullptr);
    for (int i = 0; i < 5; i++) {
        EXPECT_EQ(d[i].a, 7);
        EXPECT_EQ(d[i].b, 9);
    }
    Counters* c = r.alloc<Counters>(3);
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 3; i++) {
        EXPECT_EQ(c[i].hits, 0);
        EXPECT_EQ(c[i].name[0], '\0');
    }
}

TEST(Shm, AllocOutOfRoom)
{
    zan::ShmRegion r;
    ASSERT_TRUE(r.create(4096));
    ASSERT_EQ(r.size(), 4096u) << "test assumes 4 KiB pages";
    EXPECT_NE(r.alloc_bytes(4000, 8), nullptr);
    size_t used = r.used();
    errno = 0;
    EXPECT_EQ(r.alloc_bytes(97, 8), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(r.used(), used);  // a failed allocation takes nothing
    EXPECT_EQ(r.alloc<Ninety>(), nullptr);  // 96 bytes left, but not from a 64-byte boundary
    EXPECT_EQ(r.alloc<long>(SIZE_MAX / 4), nullptr);  // n * sizeof(T) overflows
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_NE(r.alloc_bytes(96, 8), nullptr);  // exactly the rest
    EXPECT_EQ(r.used(), r.size());
    EXPECT_EQ(r.available(), 0u);
    EXPECT_EQ(r.alloc_bytes(1, 1), nullptr);
}

TEST(Shm, MoveTransfersMapping)
{
    zan::ShmRegion a;
    ASSERT_TRUE(a.create(4096));
    int* x = a.alloc<int>();
    *x = 5;
    void* base = a.data();
    zan::ShmRegion b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(a.data(), nullptr);
    EXPECT_EQ(b.data(), base);
    EXPECT_EQ(b.used(), sizeof(int));
    EXPECT_EQ(*x, 5);
    zan::ShmRegion c;
    ASSERT_TRUE(c.create(8192));
    c = std::move(b);  // c's own mapping is unmapped first
    EXPECT_EQ(c.data(), base);
    EXPECT_EQ(c.size(), 4096u);
    c.reset();
    EXPECT_FALSE(c.valid());
    EXPECT_EQ(c.size(), 0u);
}
