// decode_task(): a packet on the task queue is input like any other. A
// bad one is refused with a reason, never a crash, and a task "in a file"
// is read only from this server's own task files.
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "t/tmp_helpers.h"
#include "zan/sys.h"
#include "zan/detail/task_worker.h"

namespace {

std::string packet(uint16_t flags, uint64_t len, const std::string& body)
{
    zan::TaskHeader h{};
    h.magic = zan::kTaskMagic;
    h.flags = flags;
    h.src_worker = -1;
    h.dst = -1;
    h.task_id = 7;
    h.len = len;
    return std::string(reinterpret_cast<const char*>(&h), sizeof(h)) + body;
}

class TaskPacket : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_FALSE(dir_.path.empty());
        prefix_ = dir_.path + "/zan-task-4242-";
    }
    // A task file as submit_task() makes it: prefix + mkostemp letters.
    std::string task_file(const std::string& data)
    {
        std::string path = prefix_ + "XXXXXX";
        int fd = ::mkostemp(&path[0], O_CLOEXEC);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(zan::write_all(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
        ::close(fd);
        return path;
    }
    bool decode(const std::string& msg, std::string* err)
    {
        zan::TaskHeader h;
        payload_.clear();
        return zan::decode_task(msg, prefix_, 1 << 20, &h, &payload_, err);
    }

    zt::TempDir dir_;
    std::string prefix_;
    std::string payload_;
};

TEST_F(TaskPacket, InlineTaskIsDecoded)
{
    std::string err;
    ASSERT_TRUE(decode(packet(0, 5, "hello"), &err)) << err;
    EXPECT_EQ(payload_, "hello");
}

TEST_F(TaskPacket, MalformedPacketsAreRefused)
{
    std::string err;
    EXPECT_FALSE(decode("short", &err));
    std::string bad = packet(0, 5, "hello");
    bad[0] ^= 1;
    EXPECT_FALSE(decode(bad, &err));
    EXPECT_FALSE(decode(packet(0, 6, "hello"), &err));
    EXPECT_FALSE(decode(packet(0, UINT64_MAX, "hello"), &err));
}

TEST_F(TaskPacket, TaskInAFileIsReadAndRemoved)
{
    std::string path = task_file("from a file");
    std::string err;
    ASSERT_TRUE(decode(packet(zan::kTaskInFile, 11, path), &err)) << err;
    EXPECT_EQ(payload_, "from a file");
    EXPECT_FALSE(zt::file_exists(path)) << "the task file was left behind";
}

// A length that does not match the file (a huge one once crashed the
// TaskWorker with a failed allocation) is refused, and the file removed.
TEST_F(TaskPacket, FileLengthMustMatchTheHeader)
{
    std::string err;
    std::string path = task_file("twelve bytes");
    EXPECT_FALSE(decode(packet(zan::kTaskInFile, uint64_t(1) << 62, path), &err));
    EXPECT_FALSE(zt::file_exists(path));
    path = task_file("twelve bytes");
    EXPECT_FALSE(decode(packet(zan::kTaskInFile, 13, path), &err));
    path = task_file(std::string((1 << 20) + 1, 'x'));  // over max_len
    EXPECT_FALSE(decode(packet(zan::kTaskInFile, (1 << 20) + 1, path), &err));
}

// Only this server's task files: another file, even one whose name merely
// contains "/zan-task-", or a name that climbs out of the directory, is
// neither read nor removed.
TEST_F(TaskPacket, OnlyOwnTaskFilesAreOpened)
{
    std::string err;
    std::string other = dir_.path + "/keep.txt";
    ASSERT_TRUE(zt::write_file(other, "keep"));
    std::string elsewhere = dir_.path + "/x/zan-task-4242-abc";
    std::string other_server = dir_.path + "/zan-task-999-abcdef";
    ASSERT_TRUE(zt::write_file(other_server, "keep"));
    for (const std::string& p : {other, elsewhere, other_server, prefix_ + "../keep.txt",
                                 prefix_, std::string("/etc/passwd")}) {
        SCOPED_TRACE(p);
        EXPECT_FALSE(decode(packet(zan::kTaskInFile, 4, p), &err));
    }
    EXPECT_TRUE(zt::file_exists(other));
    EXPECT_TRUE(zt::file_exists(other_server));
}

}  // namespace
