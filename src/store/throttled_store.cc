#include "store/throttled_store.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <thread>

namespace virga {
namespace {

using std::chrono::nanoseconds;

constexpr char kLatencyEnv[] = "VIRGA_STORE_LATENCY_MS";
constexpr char kBandwidthEnv[] = "VIRGA_STORE_BANDWIDTH_MBPS";
constexpr double kMaxLatencyMs = 60e3;  // a minute: anything longer is a typo

class RealClock final : public ThrottleClock {
 public:
  nanoseconds Now() override { return std::chrono::steady_clock::now().time_since_epoch(); }
  void SleepUntil(nanoseconds deadline) override {
    std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline)));
  }
};

// Reads the variable `name` into *out when it is set and not empty (then
// sets *set). A value that is not a finite number accepted by `valid` is
// InvalidArgument naming the variable and saying what was `expected`.
Status ReadEnvNumber(const char* name, bool (*valid)(double), const char* expected, double* out,
                     bool* set) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return Status::OK();
  *set = true;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || errno != 0 || !std::isfinite(v) || !valid(v)) {
    return Status::InvalidArgument(std::string(name) + "=\"" + text + "\": expected " + expected);
  }
  *out = v;
  return Status::OK();
}

// The link of a ThrottledStore (see its constructor).
std::shared_ptr<ThrottleLink> ChooseLink(double bytes_per_s, std::shared_ptr<ThrottleLink> given,
                                         ThrottleClock* clock) {
  if (given != nullptr || bytes_per_s <= 0) return given;
  if (clock != nullptr) return std::make_shared<ThrottleLink>(bytes_per_s, clock);
  return ThrottleLink::ForProcess(bytes_per_s);
}

}  // namespace

ThrottleClock* ThrottleClock::Real() {
  static ThrottleClock* clock = new RealClock;  // never destroyed: usable during exit
  return clock;
}

ThrottleLink::ThrottleLink(double bytes_per_s, ThrottleClock* clock)
    : bytes_per_s_(bytes_per_s), clock_(clock) {}

std::shared_ptr<ThrottleLink> ThrottleLink::ForProcess(double bytes_per_s) {
  static std::mutex mu;
  static auto* links = new std::map<double, std::shared_ptr<ThrottleLink>>;  // GUARDED_BY(mu)
  std::lock_guard<std::mutex> l(mu);
  auto& link = (*links)[bytes_per_s];
  if (link == nullptr) link = std::make_shared<ThrottleLink>(bytes_per_s, ThrottleClock::Real());
  return link;
}

nanoseconds ThrottleLink::Transfer(uint64_t bytes) {
  if (bytes == 0) return nanoseconds(0);
  const double ns = std::min(1e18, static_cast<double>(bytes) / bytes_per_s_ * 1e9);
  const nanoseconds now = clock_->Now();
  nanoseconds done;
  {
    std::lock_guard<std::mutex> l(mu_);
    done = std::max(busy_until_, now) + nanoseconds(static_cast<int64_t>(ns));
    busy_until_ = done;
  }
  clock_->SleepUntil(done);  // never under mu_: other transfers book meanwhile
  return done - now;
}

Result<ThrottleOptions> ThrottleOptionsFromEnv(bool* set) {
  *set = false;
  double latency_ms = 0, mbps = 0;
  VIRGA_RETURN_IF_ERROR(ReadEnvNumber(
      kLatencyEnv, [](double v) { return v >= 0 && v <= kMaxLatencyMs; },
      "milliseconds per request, a number from 0 to 60000", &latency_ms, set));
  VIRGA_RETURN_IF_ERROR(ReadEnvNumber(
      kBandwidthEnv, [](double v) { return v > 0; }, "MB/s (1 MB = 1e6 bytes), a number > 0", &mbps,
      set));
  ThrottleOptions o;
  o.latency = nanoseconds(static_cast<int64_t>(std::llround(latency_ms * 1e6)));
  o.bandwidth_bytes_per_s = mbps * 1e6;
  return o;
}

Result<std::shared_ptr<ObjectStore>> MaybeThrottle(std::shared_ptr<ObjectStore> inner) {
  bool set = false;
  VIRGA_ASSIGN_OR_RETURN(ThrottleOptions options, ThrottleOptionsFromEnv(&set));
  if (!set) return inner;
  return std::shared_ptr<ObjectStore>(std::make_shared<ThrottledStore>(std::move(inner), options));
}

Result<std::shared_ptr<ObjectStore>> MaybeThrottle(Result<std::shared_ptr<ObjectStore>> opened) {
  if (!opened.ok()) return opened;
  return MaybeThrottle(std::move(opened).value());
}

ThrottledStore::ThrottledStore(std::shared_ptr<ObjectStore> inner, ThrottleOptions options,
                               std::shared_ptr<ThrottleLink> link, ThrottleClock* clock)
    : inner_(std::move(inner)),
      options_(options),
      link_(ChooseLink(options.bandwidth_bytes_per_s, std::move(link), clock)),
      clock_(clock != nullptr ? clock : ThrottleClock::Real()) {}

void ThrottledStore::Slept(nanoseconds d) {
  slept_ns_.fetch_add(d.count(), std::memory_order_relaxed);
}

void ThrottledStore::Request() {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (options_.latency <= nanoseconds(0)) return;
  clock_->SleepUntil(clock_->Now() + options_.latency);
  Slept(options_.latency);
}

void ThrottledStore::Moved(uint64_t bytes, std::atomic<uint64_t>* counter) {
  counter->fetch_add(bytes, std::memory_order_relaxed);
  if (link_ != nullptr) Slept(link_->Transfer(bytes));
}

Status ThrottledStore::Put(std::string_view key, std::string_view data) {
  Request();
  Moved(data.size(), &bytes_written_);
  return inner_->Put(key, data);
}

Status ThrottledStore::Get(std::string_view key, std::string* out) {
  Request();
  Status s = inner_->Get(key, out);
  if (s.ok()) Moved(out->size(), &bytes_read_);
  return s;
}

Status ThrottledStore::GetRange(std::string_view key, uint64_t offset, uint64_t length,
                                std::string* out) {
  Request();
  Status s = inner_->GetRange(key, offset, length, out);
  if (s.ok()) Moved(out->size(), &bytes_read_);
  return s;
}

Result<std::vector<ObjectInfo>> ThrottledStore::List(std::string_view prefix) {
  Request();
  return inner_->List(prefix);
}

Status ThrottledStore::Delete(std::string_view key) {
  Request();
  return inner_->Delete(key);
}

Result<bool> ThrottledStore::Exists(std::string_view key) {
  Request();
  return inner_->Exists(key);
}

Result<ObjectInfo> ThrottledStore::Stat(std::string_view key) {
  Request();
  return inner_->Stat(key);
}

ThrottleStats ThrottledStore::stats() const {
  ThrottleStats s;
  s.requests = requests_.load(std::memory_order_relaxed);
  s.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  s.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  s.slept = nanoseconds(slept_ns_.load(std::memory_order_relaxed));
  return s;
}

}  // namespace virga
