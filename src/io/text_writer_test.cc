#include "virga/text_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "virga/line_reader.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

class TextWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/virga_tw_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  static std::string ReadRaw(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // The text of `path` as LineReader sees it, lines joined with '\n'.
  static std::string ReadBack(const std::string& path) {
    auto reader = LineReader::Open(path);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return "<error>";
    std::string text;
    std::string_view line;
    for (;;) {
      auto more = (*reader)->Next(&line);
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      text.append(line).push_back('\n');
    }
    return text;
  }
  size_t Entries() const {
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }

  std::string dir_;
};

TEST_F(TextWriterTest, RoundTripsEveryFormat) {
  std::string text;
  for (int i = 0; i < 300000; ++i) {  // ~6 MB: several staging buffers
    text += std::to_string(i % 7) + " 3:" + std::to_string(i) +
            " 17:0.5 99:" + std::to_string(i * 31 % 1000) + "\n";
  }
  struct Case {
    std::string name;
    std::string magic;
  };
  for (const Case& c : {Case{"out.txt", text.substr(0, 4)}, Case{"out.gz", "\x1f\x8b"},
                        Case{"out.zst", "\x28\xb5\x2f\xfd"}}) {
    SCOPED_TRACE(c.name);
    const std::string path = Path(c.name);
    auto w = TextWriter::Open(path);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    // Mixed write sizes: many small ones, one bigger than the staging buffer.
    size_t half = text.size() / 2;
    for (size_t pos = 0; pos < half;) {
      size_t n = std::min<size_t>(half - pos, 1 + pos % 97);
      ASSERT_TRUE((*w)->Write(std::string_view(text).substr(pos, n)).ok());
      pos += n;
    }
    ASSERT_TRUE((*w)->Write(std::string_view(text).substr(half)).ok());
    EXPECT_EQ((*w)->bytes_written(), text.size());
    EXPECT_FALSE(fs::exists(path));  // not published before Close
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_TRUE((*w)->Close().ok());  // idempotent
    EXPECT_FALSE((*w)->Write("late").ok());
    const std::string raw = ReadRaw(path);
    EXPECT_EQ(raw.substr(0, c.magic.size()), c.magic);
    if (c.name != "out.txt") {
      EXPECT_LT(raw.size(), text.size() / 3);
    }
    EXPECT_TRUE(ReadBack(path) == text);
  }
  EXPECT_EQ(Entries(), 3u);  // no temp files left behind
}

TEST_F(TextWriterTest, DestroyWithoutCloseLeavesNothing) {
  for (std::string name : {"a.txt", "a.gz", "a.zst"}) {
    {
      auto w = TextWriter::Open(Path(name));
      ASSERT_TRUE(w.ok());
      ASSERT_TRUE((*w)->Write(std::string(3 << 20, 'x')).ok());
      EXPECT_EQ(Entries(), 1u);  // the temp file
    }
    EXPECT_FALSE(fs::exists(Path(name)));
    EXPECT_EQ(Entries(), 0u) << name;
  }
}

TEST_F(TextWriterTest, CloseReplacesAnExistingFile) {
  const std::string path = Path("r.txt");
  std::ofstream(path) << "old content that is longer\n";
  auto w = TextWriter::Open(path).value();
  ASSERT_TRUE(w->Write("new\n").ok());
  EXPECT_EQ(ReadRaw(path), "old content that is longer\n");  // untouched until Close
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(ReadRaw(path), "new\n");
}

TEST_F(TextWriterTest, EmptyOutputIsAValidStream) {
  for (std::string name : {"e.txt", "e.gz", "e.zst"}) {
    auto w = TextWriter::Open(Path(name)).value();
    ASSERT_TRUE(w->Close().ok());
    EXPECT_EQ(ReadBack(Path(name)), "") << name;
    if (name != "e.txt") {
      EXPECT_GT(fs::file_size(Path(name)), 0u) << name;
    }
  }
}

TEST_F(TextWriterTest, MissingDirectoryIsAnErrorNamingThePath) {
  const std::string path = Path("no/such/dir/x.gz");
  auto w = TextWriter::Open(path);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find(path), std::string::npos) << w.status().ToString();
}

TEST_F(TextWriterTest, UncreatableFileIsAnIOError) {
  std::ofstream(Path("file")) << "x";
  const std::string path = Path("file/x.txt");  // parent is a regular file
  auto w = TextWriter::Open(path);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Status::Code::kIOError) << w.status().ToString();
  EXPECT_NE(w.status().message().find(path), std::string::npos) << w.status().ToString();
}

}  // namespace
}  // namespace virga
