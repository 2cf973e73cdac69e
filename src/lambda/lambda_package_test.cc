#include "lambda/lambda_package.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace virga::lambda {
namespace {

namespace fs = std::filesystem;

class LambdaPackage : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("virga-lambda-package-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The test binary stands in for virga: what matters is its libraries.
  PackageOptions Options() const {
    PackageOptions o;
    o.zip_path = (dir_ / "package.zip").string();
    o.binary = "/proc/self/exe";
    return o;
  }

  fs::path dir_;
};

// Name -> (mode bits, size) as stored in the zip.
std::map<std::string, std::pair<uint32_t, uint64_t>> ZipEntries(const std::string& path,
                                                                std::string* first) {
  std::map<std::string, std::pair<uint32_t, uint64_t>> entries;
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY, &err);
  EXPECT_NE(z, nullptr) << err;
  if (z == nullptr) return entries;
  for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0); ++i) {
    zip_stat_t st;
    zip_stat_index(z, static_cast<zip_uint64_t>(i), 0, &st);
    zip_uint8_t opsys = 0;
    zip_uint32_t attributes = 0;
    zip_file_get_external_attributes(z, static_cast<zip_uint64_t>(i), 0, &opsys, &attributes);
    EXPECT_EQ(opsys, ZIP_OPSYS_UNIX) << st.name;
    if (i == 0) *first = st.name;
    entries[st.name] = {(attributes >> 16) & 0777, st.size};
  }
  zip_discard(z);
  return entries;
}

TEST_F(LambdaPackage, ContentsModesAndBootstrap) {
  Result<PackageReport> report = BuildLambdaPackage(Options());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::string first;
  auto entries = ZipEntries(Options().zip_path, &first);
  EXPECT_EQ(first, "bootstrap");
  ASSERT_TRUE(entries.count("bootstrap"));
  EXPECT_EQ(entries["bootstrap"].first, 0755u);
  EXPECT_EQ(entries["virga"].first, 0755u);
  ASSERT_TRUE(entries.count("lib/ld-linux-x86-64.so.2"));
  EXPECT_EQ(entries["lib/ld-linux-x86-64.so.2"].first, 0755u);
  for (const char* lib : {"lib/libc.so.6", "lib/libstdc++.so.6", "lib/libm.so.6", "lib/libzip.so.4",
                          "lib/libcurl.so.4"}) {
    ASSERT_TRUE(entries.count(lib)) << lib;
    EXPECT_EQ(entries[lib].first, 0644u) << lib;
    EXPECT_GT(entries[lib].second, 0u) << lib;
  }
  EXPECT_TRUE(entries.count("certs/ca-certificates.crt"));
  EXPECT_TRUE(entries.count("lib/"));
  EXPECT_EQ(entries.size(), report->files.size() + 2);  // + lib/ and certs/
  uint64_t unzipped = 0;
  for (const PackagedFile& f : report->files) {
    EXPECT_EQ(entries[f.name].second, f.bytes) << f.name;
    unzipped += f.bytes;
  }
  EXPECT_EQ(report->unzipped_bytes, unzipped);
  EXPECT_EQ(report->zipped_bytes, fs::file_size(Options().zip_path));
  EXPECT_LT(report->zipped_bytes, report->unzipped_bytes);

  // Unpacked, the modes are on disk and the bootstrap uses lib/ only.
  const fs::path root = dir_ / "task";
  fs::create_directories(root);
  ASSERT_TRUE(ExtractZip(Options().zip_path, root.string()).ok());
  struct stat st {};
  ASSERT_EQ(::stat((root / "bootstrap").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((root / "lib/libc.so.6").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  std::ifstream in(root / "bootstrap");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(text.str().starts_with("#!/bin/sh\n"));
  EXPECT_NE(text.str().find(R"(exec "$root/lib/ld-linux-x86-64.so.2" --library-path "$root/lib" )"
                            R"("$root/virga" lambda-runtime)"),
            std::string::npos)
      << text.str();
  EXPECT_NE(text.str().find("unset LD_LIBRARY_PATH"), std::string::npos);
}

TEST_F(LambdaPackage, RefusesAPackageOverTheLimits) {
  PackageOptions o = Options();
  o.max_zipped_bytes = 1 << 20;
  Result<PackageReport> report = BuildLambdaPackage(o);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(report.status().message().find("MiB zipped (limit 1.0 MiB for a direct upload)"),
            std::string::npos)
      << report.status().message();
  EXPECT_NE(report.status().message().find("MiB unzipped (limit 250.0 MiB)"), std::string::npos);
  EXPECT_FALSE(fs::exists(o.zip_path));
  EXPECT_FALSE(fs::exists(o.zip_path + ".tmp"));
}

TEST_F(LambdaPackage, Errors) {
  PackageOptions o = Options();
  o.binary = (dir_ / "missing").string();
  EXPECT_TRUE(BuildLambdaPackage(o).status().IsNotFound());
  o = Options();
  o.zip_path = "";
  EXPECT_TRUE(BuildLambdaPackage(o).status().IsInvalidArgument());
  o = Options();
  o.ca_bundle = (dir_ / "no-such-bundle.pem").string();
  EXPECT_TRUE(BuildLambdaPackage(o).status().IsNotFound());
}

TEST_F(LambdaPackage, ResolvesTheLoaderAndLibc) {
  Result<std::vector<SharedObject>> objects =
      ResolveSharedObjects(fs::canonical("/proc/self/exe").string());
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  int loaders = 0;
  bool libc = false;
  for (const SharedObject& so : *objects) {
    loaders += so.loader;
    libc |= so.name == "libc.so.6";
    EXPECT_TRUE(fs::path(so.path).is_absolute()) << so.path;
    EXPECT_FALSE(fs::is_symlink(so.path)) << so.path;
  }
  EXPECT_EQ(loaders, 1);
  EXPECT_TRUE(libc);
}

}  // namespace
}  // namespace virga::lambda
