#include "worker/work_ledger.h"

#include <algorithm>
#include <charconv>

namespace virga::worker {
namespace {

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace

Result<WorkItem> ParseWorkItem(std::string_view text) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("work item '" + std::string(text) + "': " + why);
  };
  // The key is whatever lies between the second and the second-to-last
  // space, so the numbers are found even if a key had a space.
  const size_t s1 = text.find(' ');
  const size_t s2 = s1 == std::string_view::npos ? s1 : text.find(' ', s1 + 1);
  const size_t s4 = text.rfind(' ');
  const size_t s3 = s4 == std::string_view::npos || s4 == 0 ? std::string_view::npos
                                                            : text.rfind(' ', s4 - 1);
  if (s2 == std::string_view::npos || s3 == std::string_view::npos || s3 <= s2)
    return bad("expected '<epoch> <item index> <partition key> <row begin> <row end>'");
  WorkItem w;
  if (!ParseNumber(text.substr(0, s1), &w.epoch)) return bad("bad epoch");
  if (!ParseNumber(text.substr(s1 + 1, s2 - s1 - 1), &w.index)) return bad("bad item index");
  w.key = std::string(text.substr(s2 + 1, s3 - s2 - 1));
  if (w.key.empty()) return bad("empty partition key");
  if (!ParseNumber(text.substr(s3 + 1, s4 - s3 - 1), &w.begin)) return bad("bad row begin");
  if (!ParseNumber(text.substr(s4 + 1), &w.end)) return bad("bad row end");
  if (w.begin > w.end) return bad("row begin > row end");
  return w;
}

std::string FormatWorkItem(const WorkItem& w) {
  return std::to_string(w.epoch) + " " + std::to_string(w.index) + " " + w.key + " " +
         std::to_string(w.begin) + " " + std::to_string(w.end);
}

uint64_t WorkLedger::Add(uint64_t lease_id, WorkItem item) {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t seq = next_seq_++;
  items_.push_back(LeasedWork{seq, lease_id, std::move(item), std::chrono::steady_clock::now()});
  return seq;
}

std::optional<LeasedWork> WorkLedger::OldestIn(uint64_t from, uint64_t to) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const LeasedWork& w : items_) {  // in seq order
    if (w.seq >= to) break;
    if (w.seq >= from) return w;
  }
  return std::nullopt;
}

std::optional<LeasedWork> WorkLedger::Get(uint64_t seq) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const LeasedWork& w : items_)
    if (w.seq == seq) return w;
  return std::nullopt;
}

void WorkLedger::Remove(uint64_t seq) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::find_if(items_.begin(), items_.end(), [seq](const LeasedWork& w) { return w.seq == seq; });
  if (it != items_.end()) items_.erase(it);
}

std::vector<uint64_t> WorkLedger::DueForRenewal(std::chrono::steady_clock::time_point now,
                                                std::chrono::milliseconds period) {
  std::vector<uint64_t> due;
  std::lock_guard<std::mutex> l(mu_);
  for (LeasedWork& w : items_) {
    if (now - w.renewed < period) continue;
    w.renewed = now;
    due.push_back(w.lease_id);
  }
  return due;
}

std::vector<LeasedWork> WorkLedger::TakeAll() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<LeasedWork> all(std::make_move_iterator(items_.begin()),
                              std::make_move_iterator(items_.end()));
  items_.clear();
  return all;
}

size_t WorkLedger::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return items_.size();
}

}  // namespace virga::worker
