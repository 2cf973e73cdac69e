#include "aws/ini.h"

#include <gtest/gtest.h>

namespace virga::aws {
namespace {

TEST(ParseIni, SectionsSettingsAndComments) {
  Result<IniFile> ini = ParseIni(
      "# a comment\n"
      "; another\n"
      "\n"
      "[default]\r\n"
      "Region = eu-west-1\r\n"
      "output: json\n"
      "[profile work]  \n"
      "endpoint_url=http://127.0.0.1:4568/\n"
      "s3 =\n"
      "    addressing_style = path\n"
      "note = a # not a comment\n"
      "empty =\n"
      "[default]\n"
      "region = us-west-2\n",
      "config");
  ASSERT_TRUE(ini.ok()) << ini.status().ToString();
  const IniFile::Section* d = ini->Find("default");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->at("region"), "us-west-2");  // the last value wins
  EXPECT_EQ(d->at("output"), "json");
  const IniFile::Section* w = ini->Find("profile work");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->at("endpoint_url"), "http://127.0.0.1:4568/");
  EXPECT_EQ(w->at("s3"), "");
  EXPECT_EQ(w->count("addressing_style"), 0u);  // nested under s3
  EXPECT_EQ(w->at("note"), "a # not a comment");
  EXPECT_EQ(w->at("empty"), "");
  EXPECT_EQ(ini->Find("work"), nullptr);
}

TEST(ParseIni, ErrorsNameFileAndLineButNotTheLine) {
  const std::string secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  Result<IniFile> bare = ParseIni("[default]\naws_access_key_id = AKID\n" + secret + "\n", "/h/c");
  ASSERT_FALSE(bare.ok());
  EXPECT_TRUE(bare.status().IsInvalidArgument());
  EXPECT_EQ(bare.status().message().rfind("/h/c:3: ", 0), 0u) << bare.status().message();
  EXPECT_EQ(bare.status().message().find(secret), std::string::npos);

  EXPECT_EQ(ParseIni("x = 1\n", "f").status().message(), "f:1: a setting before any [section]");
  EXPECT_EQ(ParseIni("\n[default\n", "f").status().message(),
            "f:2: a section header lacks its ']'");
  EXPECT_EQ(ParseIni("[ ]\n", "f").status().message(), "f:1: a section header has no name");
  EXPECT_EQ(ParseIni("[a]\n = 1\n", "f").status().message(), "f:2: a setting has no name");
}

TEST(ReadIniFile, AbsentFileIsNotFound) {
  Result<IniFile> ini = ReadIniFile("/nonexistent/virga/aws/credentials");
  ASSERT_FALSE(ini.ok());
  EXPECT_TRUE(ini.status().IsNotFound());
}

}  // namespace
}  // namespace virga::aws
