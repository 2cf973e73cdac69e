#include "store/s3_xml.h"

#include <pugixml.hpp>

namespace virga::s3 {
namespace {

bool Load(std::string_view body, pugi::xml_document* doc) {
  return !body.empty() && doc->load_buffer(body.data(), body.size());
}

bool ParseSize(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

ErrorDocument ParseError(std::string_view body) {
  ErrorDocument e;
  pugi::xml_document doc;
  if (Load(body, &doc)) {
    pugi::xml_node err = doc.child("Error");
    e.code = err.child_value("Code");
    e.message = err.child_value("Message");
  }
  return e;
}

Result<ListPage> ParseListPage(std::string_view body) {
  pugi::xml_document doc;
  if (!Load(body, &doc)) return Status::Corruption("the listing is not XML");
  pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) return Status::Corruption("the listing has no ListBucketResult element");
  ListPage page;
  for (pugi::xml_node item : root.children("Contents")) {
    ListPage::Entry e;
    e.name = item.child_value("Key");
    std::string_view size = item.child_value("Size");
    if (!ParseSize(size, &e.size)) {
      return Status::Corruption("the listing gives object \"" + e.name.substr(0, 200) +
                                "\" a size that is not a number");
    }
    page.entries.push_back(std::move(e));
  }
  page.truncated = std::string_view(root.child_value("IsTruncated")) == "true";
  page.next_token = root.child_value("NextContinuationToken");
  if (page.truncated && page.next_token.empty()) {
    return Status::Corruption("a truncated listing without a continuation token");
  }
  return page;
}

std::string ParseUploadId(std::string_view body) {
  pugi::xml_document doc;
  if (!Load(body, &doc)) return "";
  return doc.child("InitiateMultipartUploadResult").child_value("UploadId");
}

std::string CompleteMultipartXml(const std::vector<std::string>& etags) {
  std::string xml = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i) {
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
           XmlEscape(etags[i]) + "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  return xml;
}

}  // namespace virga::s3
