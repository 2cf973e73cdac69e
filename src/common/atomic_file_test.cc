#include "common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace virga {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("virga-atomic-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Names in the directory, sorted.
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesAndReplacesWholeContent) {
  const std::string path = Path("a.json");
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(Read(path), "first");
  ASSERT_TRUE(WriteFileAtomically(path, "second, longer").ok());
  EXPECT_EQ(Read(path), "second, longer");
  ASSERT_TRUE(WriteFileAtomically(path, "", {.durable = false}).ok());
  EXPECT_EQ(Read(path), "");
  EXPECT_EQ(Entries(), std::vector<std::string>{"a.json"});  // no temporary left
}

TEST_F(AtomicFileTest, NothingIsVisibleBeforeCommit) {
  const std::string path = Path("out.txt");
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  auto f = AtomicFile::Create(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE(f->Append("new ").ok());
  ASSERT_TRUE(f->Append("content").ok());
  EXPECT_EQ(Read(path), "old");  // readers still see the old file, not a part
  ASSERT_EQ(Entries().size(), 2u);
  EXPECT_NE(Entries()[1].find(kAtomicTempMarker), std::string::npos) << Entries()[1];
  ASSERT_TRUE(f->Commit().ok());
  EXPECT_EQ(Read(path), "new content");
  EXPECT_EQ(Entries(), std::vector<std::string>{"out.txt"});
  EXPECT_TRUE(f->Commit().IsInvalidArgument());
  EXPECT_TRUE(f->Append("x").IsInvalidArgument());
}

TEST_F(AtomicFileTest, AbortAndDestructionRemoveTheTemporary) {
  const std::string path = Path("gone.txt");
  {
    auto f = AtomicFile::Create(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(f->Append("half").ok());
  }  // destroyed without Commit
  EXPECT_TRUE(Entries().empty());
  auto f = AtomicFile::Create(path);
  ASSERT_TRUE(f.ok());
  AtomicFile moved = std::move(*f);  // the moved-from object owns nothing
  moved.Abort();
  moved.Abort();
  EXPECT_TRUE(Entries().empty());
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(AtomicFileTest, ModeIsHonoured) {
  const mode_t old_mask = ::umask(022);
  ASSERT_TRUE(WriteFileAtomically(Path("secret"), "token\n", {.mode = 0600}).ok());
  ASSERT_TRUE(WriteFileAtomically(Path("model"), "m", {.mode = 0644}).ok());
  // The temporary has the final mode from its creation on.
  auto f = AtomicFile::Create(Path("pending"), {.mode = 0600});
  ASSERT_TRUE(f.ok());
  struct stat tmp_st {};
  ASSERT_EQ(::fstat(f->fd(), &tmp_st), 0);
  f->Abort();
  ::umask(old_mask);
  struct stat st {};
  ASSERT_EQ(::stat(Path("secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(Path("model").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(tmp_st.st_mode & 0777, 0600u);
}

TEST_F(AtomicFileTest, MissingDirectoryIsNotFoundNamingThePath) {
  const std::string path = Path("no/such/dir/x.json");
  Status s = WriteFileAtomically(path, "x");
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
}

TEST_F(AtomicFileTest, FailedRenameNamesThePathAndCleansUp) {
  // A non-empty directory cannot be replaced by a file.
  const std::string path = Path("busy");
  fs::create_directories(path + "/inside");
  Status s = WriteFileAtomically(path, "data");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find(path + ": rename"), std::string::npos) << s.ToString();
  EXPECT_EQ(Entries(), std::vector<std::string>{"busy"});  // the temporary is gone
  EXPECT_TRUE(fs::is_directory(path + "/inside"));
}

TEST_F(AtomicFileTest, FailedWriteNamesThePathAndCleansUp) {
  // In a child: a 4 KiB file size limit makes write(2) fail with EFBIG.
  const std::string path = Path("big.bin");
  ASSERT_TRUE(WriteFileAtomically(path, "small").ok());
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const struct rlimit limit = {4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    Status s = WriteFileAtomically(path, std::string(1 << 20, 'x'));
    const bool named = s.message().find(path + ": write") != std::string::npos;
    ::_exit(!s.ok() && s.code() == Status::Code::kIOError && named ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the write did not fail as expected";
  EXPECT_EQ(Read(path), "small");  // the old content stays whole
  EXPECT_EQ(Entries(), std::vector<std::string>{"big.bin"});
}

TEST_F(AtomicFileTest, NoReplaceKeepsTheFirstWriter) {
  const std::string path = Path("token");
  ASSERT_TRUE(WriteFileAtomically(path, "first", {.replace = false}).ok());
  Status s = WriteFileAtomically(path, "second", {.replace = false});
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_EQ(Read(path), "first");
  EXPECT_EQ(Entries(), std::vector<std::string>{"token"});
}

TEST_F(AtomicFileTest, RelativePathsWork) {
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  Status s = WriteFileAtomically("rel.txt", "here");
  fs::current_path(cwd);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Read(Path("rel.txt")), "here");
}

}  // namespace
}  // namespace virga
