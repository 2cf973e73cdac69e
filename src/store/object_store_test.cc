#include "virga/object_store.h"

#include "store/s3_test_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "store/throttled_store.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/virga_store_test.XXXXXX";
  char* dir = ::mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr) << tmpl;
  return tmpl;
}

std::vector<std::string> Keys(const std::vector<ObjectInfo>& infos) {
  std::vector<std::string> keys;
  for (const auto& info : infos) keys.push_back(info.key);
  return keys;
}

using testing::Payload;

// kThrottledMem: mem:// opened with the cloud emulation of throttled_store.h
// switched on (a small latency), so every conformance test runs through it.
// kS3: s3:// against s3rver (a real S3 implementation), started once.
enum class Backend { kFile, kMem, kThrottledMem, kS3 };
const char* BackendName(Backend b) {
  return b == Backend::kFile ? "File" : b == Backend::kMem ? "Mem" : b == Backend::kS3 ? "S3" : "ThrottledMem";
}
void PrintTo(Backend b, std::ostream* os) { *os << BackendName(b); }

// One s3rver for the whole binary (tests/s3/s3rver.mjs), bucket "virga-test";
// each test works under its own prefix. Stopped, and its directory removed,
// when the process exits.
void SharedS3Server(Status* status) {
  static testing::S3TestServer server;
  static const Status started = [] {
    Status s = server.Start({"virga-test"});
    if (s.ok()) server.UseInProcessEnv();
    return s;
  }();
  *status = started;
}

class ObjectStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kFile) {
      root_ = MakeTempDir();
      uri_ = "file://" + root_;
    } else if (GetParam() == Backend::kS3) {
      Status s;
      SharedS3Server(&s);
      if (!s.ok()) GTEST_SKIP() << "*** SKIPPED s3:// conformance: " << s.ToString() << " ***";
      static std::atomic<int> counter{0};
      uri_ = "s3://virga-test/" + std::to_string(counter++) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name();
      // Parameterised test names hold '/': keep the prefix one clean component.
      for (size_t i = std::string("s3://virga-test/").size(); i < uri_.size(); ++i) {
        if (uri_[i] == '/') uri_[i] = '_';
      }
    } else {
      static std::atomic<int> counter{0};
      uri_ = "mem://store_test_" + std::to_string(counter++) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }
    const bool throttled = GetParam() == Backend::kThrottledMem;
    if (throttled) {
      ::setenv("VIRGA_STORE_LATENCY_MS", "0.2", 1);
      ::setenv("VIRGA_STORE_BANDWIDTH_MBPS", "2000", 1);
    }
    auto store = ObjectStore::Open(uri_);
    ::unsetenv("VIRGA_STORE_LATENCY_MS");
    ::unsetenv("VIRGA_STORE_BANDWIDTH_MBPS");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = *store;
    throttled_ = dynamic_cast<ThrottledStore*>(store_.get());
    ASSERT_EQ(throttled_ != nullptr, throttled);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
    if (throttled_ != nullptr) {
      EXPECT_GT(throttled_->stats().requests, 0u);  // the decorator saw the test's calls
    }
  }

  std::string GetOrDie(const std::string& key) {
    std::string out;
    Status s = store_->Get(key, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  std::string root_;  // file backend only
  std::string uri_;
  std::shared_ptr<ObjectStore> store_;
  ThrottledStore* throttled_ = nullptr;  // store_, when it is throttled
};

TEST_P(ObjectStoreTest, PutGetOverwrite) {
  EXPECT_EQ(store_->uri(), uri_);
  ASSERT_TRUE(store_->Put("a/b/c.txt", "hello").ok());
  EXPECT_EQ(GetOrDie("a/b/c.txt"), "hello");
  ASSERT_TRUE(store_->Put("a/b/c.txt", "bye").ok());
  EXPECT_EQ(GetOrDie("a/b/c.txt"), "bye");

  const std::string big = Payload(3 << 20, 7);  // binary, with NULs
  ASSERT_TRUE(store_->Put("big", big).ok());
  std::string out = "junk that must be replaced";
  ASSERT_TRUE(store_->Get("big", &out).ok());
  EXPECT_TRUE(out == big);

  ASSERT_TRUE(store_->Put("empty", "").ok());
  out = "junk";
  ASSERT_TRUE(store_->Get("empty", &out).ok());
  EXPECT_EQ(out, "");
  auto info = store_->Stat("empty");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 0u);
}

TEST_P(ObjectStoreTest, LongKeysAndOddNames) {
  std::string key;
  while (key.size() < 1024) key += std::string(99, 'k') + "/";
  key.resize(1024);
  ASSERT_NE(key.back(), '/');
  for (const std::string& k : {key, std::string("..a"), std::string("a.."),
                               std::string("x/.hidden"), std::string("sp ace/ü")}) {
    ASSERT_TRUE(store_->Put(k, k).ok()) << k;
    EXPECT_EQ(GetOrDie(k), k);
  }
}

TEST_P(ObjectStoreTest, GetRange) {
  ASSERT_TRUE(store_->Put("r", "0123456789").ok());
  std::string out;
  ASSERT_TRUE(store_->GetRange("r", 3, 4, &out).ok());
  EXPECT_EQ(out, "3456");
  ASSERT_TRUE(store_->GetRange("r", 0, 10, &out).ok());
  EXPECT_EQ(out, "0123456789");
  ASSERT_TRUE(store_->GetRange("r", 8, 100, &out).ok());
  EXPECT_EQ(out, "89");
  ASSERT_TRUE(store_->GetRange("r", 5, UINT64_MAX, &out).ok());
  EXPECT_EQ(out, "56789");
  ASSERT_TRUE(store_->GetRange("r", 10, 5, &out).ok());  // offset == size: empty
  EXPECT_EQ(out, "");
  ASSERT_TRUE(store_->GetRange("r", 4, 0, &out).ok());
  EXPECT_EQ(out, "");
  Status s = store_->GetRange("r", 11, 1, &out);
  EXPECT_EQ(s.code(), Status::Code::kOutOfRange) << s.ToString();
  EXPECT_NE(s.message().find("r"), std::string::npos);
  s = store_->GetRange("r", UINT64_MAX, 1, &out);
  EXPECT_EQ(s.code(), Status::Code::kOutOfRange) << s.ToString();
  EXPECT_TRUE(store_->GetRange("missing", 0, 1, &out).IsNotFound());
}

TEST_P(ObjectStoreTest, ListByPrefix) {
  const std::vector<std::string> keys = {
      "data/train/part-00001", "data/train/part-00000", "data/test/part-0", "data/trainer", "model",
      "data/train/sub/x"};
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(store_->Put(keys[i], std::string(i + 1, 'x')).ok());
  }
  auto list = [&](std::string_view prefix) {
    auto r = store_->List(prefix);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? Keys(*r) : std::vector<std::string>{"<error>"};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(list("data/train"), (V{"data/train/part-00000", "data/train/part-00001",
                                   "data/train/sub/x", "data/trainer"}));
  EXPECT_EQ(list("data/train/"),
            (V{"data/train/part-00000", "data/train/part-00001", "data/train/sub/x"}));
  EXPECT_EQ(list("data/train/part-0000"), (V{"data/train/part-00000", "data/train/part-00001"}));
  EXPECT_EQ(list(""), (V{"data/test/part-0", "data/train/part-00000", "data/train/part-00001",
                         "data/train/sub/x", "data/trainer", "model"}));
  EXPECT_EQ(list("mod"), (V{"model"}));
  EXPECT_EQ(list("model"), (V{"model"}));
  EXPECT_EQ(list("model/"), V{});
  EXPECT_EQ(list("nothing/here"), V{});
  EXPECT_EQ(list("data/train/sub/x/y"), V{});
  EXPECT_EQ(list("../"), V{});
  EXPECT_EQ(list("/data"), V{});
  EXPECT_EQ(list("data//train"), V{});

  auto r = store_->List("data/train/");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].size, 2u);  // "data/train/part-00000" was put second
  EXPECT_EQ((*r)[1].size, 1u);
  EXPECT_EQ((*r)[2].size, 6u);
}

TEST_P(ObjectStoreTest, DeleteIsIdempotent) {
  ASSERT_TRUE(store_->Put("x/y", "1").ok());
  ASSERT_TRUE(store_->Put("x/z", "2").ok());
  ASSERT_TRUE(store_->Delete("x/y").ok());
  EXPECT_FALSE(*store_->Exists("x/y"));
  std::string out;
  EXPECT_TRUE(store_->Get("x/y", &out).IsNotFound());
  EXPECT_TRUE(store_->Delete("x/y").ok());
  EXPECT_TRUE(store_->Delete("never/was").ok());
  EXPECT_TRUE(store_->Delete("x").ok());  // a prefix of keys, not an object
  EXPECT_EQ(GetOrDie("x/z"), "2");
  ASSERT_TRUE(store_->Delete("x/z").ok());
  // With "x/..." all gone, "x" is a free key again (file:// pruned the directory).
  ASSERT_TRUE(store_->Put("x", "3").ok()) << uri_;
  EXPECT_EQ(GetOrDie("x"), "3");
  EXPECT_EQ(Keys(*store_->List("")), std::vector<std::string>{"x"});
}

TEST_P(ObjectStoreTest, ExistsAndStat) {
  ASSERT_TRUE(store_->Put("dir/obj", "12345").ok());
  auto exists = store_->Exists("dir/obj");
  ASSERT_TRUE(exists.ok());
  EXPECT_TRUE(*exists);
  exists = store_->Exists("dir/other");
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
  exists = store_->Exists("dir");  // a prefix is not an object
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
  auto info = store_->Stat("dir/obj");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->key, "dir/obj");
  EXPECT_EQ(info->size, 5u);
  EXPECT_TRUE(store_->Stat("dir").status().IsNotFound());
}

TEST_P(ObjectStoreTest, NotFoundMessagesNameTheKey) {
  const std::string key = "no/such/key-123";
  std::string out;
  for (Status s :
       {store_->Get(key, &out), store_->GetRange(key, 0, 1, &out), store_->Stat(key).status()}) {
    EXPECT_TRUE(s.IsNotFound()) << s.ToString();
    EXPECT_NE(s.message().find(key), std::string::npos) << s.ToString();
  }
}

TEST_P(ObjectStoreTest, InvalidKeysRejected) {
  const std::vector<std::string> bad = {"",
                                        "/a",
                                        "a//b",
                                        "a/",
                                        ".",
                                        "..",
                                        "a/../b",
                                        "a/./b",
                                        "../escape",
                                        "a\\b",
                                        std::string("a\0b", 3),
                                        std::string(1025, 'k'),
                                        "obj.virga-tmp-0123"};
  std::string out;
  for (const std::string& key : bad) {
    SCOPED_TRACE(key);
    EXPECT_TRUE(ValidateObjectKey(key).IsInvalidArgument());
    EXPECT_TRUE(store_->Put(key, "x").IsInvalidArgument());
    EXPECT_TRUE(store_->Get(key, &out).IsInvalidArgument());
    EXPECT_TRUE(store_->GetRange(key, 0, 1, &out).IsInvalidArgument());
    EXPECT_TRUE(store_->Delete(key).IsInvalidArgument());
    EXPECT_TRUE(store_->Exists(key).status().IsInvalidArgument());
    EXPECT_TRUE(store_->Stat(key).status().IsInvalidArgument());
  }
  EXPECT_EQ(Keys(*store_->List("")), std::vector<std::string>{});
  Status s = ValidateObjectKey("a//b");
  EXPECT_NE(s.message().find("a//b"), std::string::npos) << s.ToString();
  s = ValidateObjectKey(std::string("a\0b", 3));
  EXPECT_NE(s.message().find("a\\x00b"), std::string::npos) << s.ToString();
}

TEST_P(ObjectStoreTest, ReadersNeverSeeAPartialPut) {
  if (GetParam() == Backend::kS3) {
    // S3 replaces an object atomically; s3rver, the S3 implementation these tests run
    // against, overwrites its object file in place (createWriteStream), so a reader can
    // see a torn object there. virga writes each key once; this is s3rver's limit.
    GTEST_SKIP() << "*** SKIPPED on s3rver: it overwrites objects in place, not atomically ***";
  }
  const std::string a = Payload(2 << 20, 1);
  const std::string b = Payload(3 << 20, 2);
  ASSERT_TRUE(store_->Put("hot", a).ok());
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, reads{0}, write_errors{0}, list_errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 12; ++i) {
        if (!store_->Put("hot", (i + w) % 2 ? a : b).ok()) ++write_errors;
      }
    });
  }
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      std::string out;
      while (!done.load()) {
        Status s = store_->Get("hot", &out);
        if (!s.ok() || (out != a && out != b)) ++bad;
        ++reads;
      }
    });
  }
  readers.emplace_back([&] {  // the temp files of in-flight Puts are never listed
    while (!done.load()) {
      auto list = store_->List("");
      if (!list.ok() || list->size() != 1 || (*list)[0].key != "hot" ||
          ((*list)[0].size != a.size() && (*list)[0].size != b.size())) {
        ++list_errors;
      }
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(write_errors.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(list_errors.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

// One writer puts objects under fresh nested prefixes while another deletes the only object
// of its own prefix over and over: a file store prunes the emptied directories (datasets/
// itself included), and the writer's mkdirs must survive that race.
TEST_P(ObjectStoreTest, PutsSurviveConcurrentDeletesOfSiblings) {
  if (GetParam() == Backend::kS3) GTEST_SKIP() << "*** SKIPPED on s3rver: slow; no directories ***";
  std::atomic<bool> done{false};
  std::atomic<int> put_errors{0};
  std::thread deleter([&] {
    while (!done.load()) {
      if (!store_->Put("d/x/part", "1").ok() || !store_->Delete("d/x/part").ok()) ++put_errors;
    }
  });
  for (int i = 0; i < 300; ++i) {
    const std::string key = "d/y" + std::to_string(i) + "/train/part";
    if (!store_->Put(key, "v").ok()) ++put_errors;
    if (!store_->Delete(key).ok()) ++put_errors;
  }
  done = true;
  deleter.join();
  EXPECT_EQ(put_errors.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, ObjectStoreTest,
                         ::testing::Values(Backend::kFile, Backend::kMem, Backend::kThrottledMem,
                                           Backend::kS3),
                         [](const auto& info) { return BackendName(info.param); });

TEST(MemStoreTest, OpensOfOneNameShareObjects) {
  auto s1 = ObjectStore::Open("mem://shared_name");
  auto s2 = ObjectStore::Open("mem://shared_name");
  auto other = ObjectStore::Open("mem://other_name");
  ASSERT_TRUE(s1.ok() && s2.ok() && other.ok());
  ASSERT_TRUE((*s1)->Put("k", "v").ok());
  std::string out;
  ASSERT_TRUE((*s2)->Get("k", &out).ok());
  EXPECT_EQ(out, "v");
  EXPECT_TRUE((*other)->Get("k", &out).IsNotFound());
  s1 = Status::Cancelled("drop");
  s2 = Status::Cancelled("drop");
  auto s3 = ObjectStore::Open("mem://shared_name");  // outlives its handles
  ASSERT_TRUE(s3.ok());
  ASSERT_TRUE((*s3)->Get("k", &out).ok());
  EXPECT_EQ(out, "v");
  EXPECT_EQ((*s3)->uri(), "mem://shared_name");
}

TEST(ObjectStoreOpenTest, UnknownSchemeNamesTheUri) {
  auto r = ObjectStore::Open("s4://bucket/x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("s4://bucket/x"), std::string::npos);
  EXPECT_FALSE(ObjectStore::Open("").ok());
  EXPECT_FALSE(ObjectStore::Open("file://").ok());
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = MakeTempDir(); }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
};

TEST_F(FileStoreTest, UrisAreNormalised) {
  for (const std::string& uri :
       {"file://" + root_, "file://" + root_ + "/", root_, "file://" + root_ + "/./sub/..//"}) {
    auto r = ObjectStore::Open(uri);
    ASSERT_TRUE(r.ok()) << uri << ": " << r.status().ToString();
    EXPECT_EQ((*r)->uri(), "file://" + root_) << uri;
  }
  std::string cwd = fs::current_path();
  fs::current_path(root_);
  auto rel = ObjectStore::Open("file://rel/dir");
  auto plain = ObjectStore::Open("plain");
  fs::current_path(cwd);
  ASSERT_TRUE(rel.ok() && plain.ok());
  EXPECT_EQ((*rel)->uri(), "file://" + root_ + "/rel/dir");
  EXPECT_EQ((*plain)->uri(), "file://" + root_ + "/plain");
  EXPECT_TRUE(fs::is_directory(root_ + "/rel/dir"));
}

TEST_F(FileStoreTest, ObjectsAreFilesUnderTheRoot) {
  auto store = *ObjectStore::Open(root_ + "/new/store");
  ASSERT_TRUE(store->Put("a/b/c", "content").ok());
  std::ifstream in(root_ + "/new/store/a/b/c");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "content");
  // Nothing but the object itself is left in its directory.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root_ + "/new/store/a/b")) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "c");
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(FileStoreTest, RejectsARegularFileAsRoot) {
  std::string file = root_ + "/not_a_dir";
  std::ofstream(file) << "x";
  for (const std::string& uri : {"file://" + file, file}) {
    auto r = ObjectStore::Open(uri);
    ASSERT_FALSE(r.ok()) << uri;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status().ToString();
  }
}

TEST_F(FileStoreTest, TempFileOfACrashedWriterIsNotListed) {
  auto store = *ObjectStore::Open(root_);
  ASSERT_TRUE(store->Put("a/real", "1").ok());
  // What a writer killed between open and rename leaves behind.
  std::ofstream(root_ + "/a/real.virga-tmp-00c0ffee00c0ffee") << "partial";
  std::ofstream(root_ + "/top.virga-tmp-1234") << "partial";
  auto list = store->List("");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Keys(*list), std::vector<std::string>{"a/real"});
  EXPECT_EQ(Keys(*store->List("a/real")), std::vector<std::string>{"a/real"});
  EXPECT_EQ(Keys(*store->List("top")), std::vector<std::string>{});
  std::string out;
  EXPECT_TRUE(store->Get("top.virga-tmp-1234", &out).IsInvalidArgument());
  // A new Put of the same key is unaffected by the leftover.
  ASSERT_TRUE(store->Put("a/real", "2").ok());
  ASSERT_TRUE(store->Get("a/real", &out).ok());
  EXPECT_EQ(out, "2");
}

TEST_F(FileStoreTest, ErrorsNameTheKeyAndTheCause) {
  auto store = *ObjectStore::Open(root_);
  ASSERT_TRUE(store->Put("f", "file").ok());
  Status s = store->Put("f/child", "x");  // "f" is a file, cannot be a directory
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("f/child"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("Not a directory"), std::string::npos) << s.ToString();
  std::string out;
  EXPECT_TRUE(store->Get("f/child", &out).IsNotFound());
  EXPECT_TRUE(store->Delete("f/child").ok());
}

}  // namespace
}  // namespace virga
