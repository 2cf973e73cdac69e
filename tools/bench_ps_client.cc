// `virga bench ps-client` (hidden): one load-generating process of `virga
// bench ps`, against virga (PsClient) or Redis (hiredis), same workload:
//   pull K distinct keys, g = 0.01 w +- 0.1 (sign from the key), push g.
// virga applies g with its table's optimizer (adagrad) on the server; for
// Redis the client writes w - lr g itself: the model is one hash, fields are
// the 8 raw key bytes, values 4 raw float bytes; a pull is one HMGET of the K
// fields (absent = 0), a push one HSET of the K new weights.
#include <hiredis/hiredis.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "tools/bench_ps.h"
#include "tools/token.h"
#include "virga/ps_client.h"

namespace virga::cli::benchps {
namespace {

constexpr float kRedisLr = 0.1f;

// K distinct keys per call from a fixed pool of 2^20 hashed keys (the same
// pool in every client, like Criteo's hashed categorical features): key =
// SplitMix64(slot) for a random slot. Distinct by a small open-addressing
// set of this call's slots (2K..4K entries, stamped per call), so a pick
// touches a few KiB of L1, not megabytes: the client shares its CPU, and in
// same_cpu its caches, with the server being measured.
class KeyPicker {
 public:
  explicit KeyPicker(uint64_t seed) : state_(seed) {}
  void Pick(std::vector<uint64_t>* keys) {
    size_t cap = 16;
    while (cap < 2 * keys->size()) cap *= 2;
    if (set_.size() != cap) {
      set_.assign(cap, Slot{});
      round_ = 0;
    }
    ++round_;
    const size_t mask = cap - 1;
    for (auto& k : *keys) {
      for (;;) {
        const auto slot = static_cast<uint32_t>(Next()) & (kPoolKeys - 1);
        size_t i = SplitMix64(slot) & mask;
        while (set_[i].round == round_ && set_[i].slot != slot) i = (i + 1) & mask;
        if (set_[i].round == round_) continue;  // drawn already in this call
        set_[i] = {slot, round_};
        k = PoolKey(slot);
        break;
      }
    }
  }

 private:
  struct Slot {
    uint32_t slot = 0, round = 0;
  };
  uint64_t Next() { return SplitMix64(state_++); }
  uint64_t state_;
  std::vector<Slot> set_;
  uint32_t round_ = 0;
};

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// w and g hold keys.size() rows of `width` floats.
void Gradient(std::span<const uint64_t> keys, std::span<const float> w, std::span<float> g) {
  const size_t width = w.size() / keys.size();
  for (size_t i = 0; i < keys.size(); ++i) {
    const float sign = (keys[i] >> 7) & 1 ? 0.1f : -0.1f;
    for (size_t j = i * width; j < (i + 1) * width; ++j) g[j] = 0.01f * w[j] + sign;
  }
}

// One iteration of each system; returns "" or an error.
class VirgaLoad {
 public:
  std::string Init(const ClientArgs& a) {
    auto list = ParseServerList(a.servers);
    if (!list.ok()) return list.status().ToString();
    auto token = LoadToken(a.token_file, false);
    if (!token.ok()) return token.status().ToString();
    PsClientOptions o;
    o.servers = *list;
    o.token = *token;
    if (!a.tls_ca.empty()) o.tls_ca_pem = ReadFile(a.tls_ca);
    auto c = PsClient::Connect(o);
    if (!c.ok()) return c.status().ToString();
    client_ = std::move(*c);
    table_ = a.table;
    // The driver creates the table; a client run by hand (profiling) makes its own.
    TableConfig t;
    t.name = table_;
    t.width = a.width;
    auto kind = ParseOptimizerName(a.optimizer);
    if (!kind.ok()) return kind.status().ToString();
    t.optimizer.kind = *kind;
    if (Status s = client_->CreateTable(t); !s.ok() && s.code() != Status::Code::kAlreadyExists)
      return s.ToString();
    return "";
  }
  int requests_per_iter() const { return 2 * static_cast<int>(client_->num_servers()); }
  std::string Step(std::span<const uint64_t> keys, std::span<float> w, std::span<float> g,
                   bool pipeline) {
    Status s = client_->Pull(table_, keys, w);
    if (!s.ok()) return s.ToString();
    Gradient(keys, w, g);
    // Pipelined: the push is held and written with the next pull, one write
    // for both, as the Redis load sends HSET with the next HMGET.
    s = pipeline ? client_->StartPush(table_, keys, g, /*with_next=*/true)
                 : client_->Push(table_, keys, g);
    return s.ok() ? "" : s.ToString();
  }
  std::string Finish() {
    Status s = client_->Flush();
    return s.ok() ? "" : s.ToString();
  }

 private:
  std::unique_ptr<PsClient> client_;
  std::string table_;
};

class RedisLoad {
 public:
  ~RedisLoad() {
    if (ctx_) redisFree(ctx_);
  }
  std::string Init(const ClientArgs& a) {
    const size_t colon = a.redis.rfind(':');
    if (colon == std::string::npos) return "bad --redis address " + a.redis;
    ctx_ = redisConnect(a.redis.substr(0, colon).c_str(), std::stoi(a.redis.substr(colon + 1)));
    if (!ctx_ || ctx_->err)
      return "redis connect " + a.redis + ": " + (ctx_ ? ctx_->errstr : "oom");
    hash_ = a.table;
    row_bytes_ = a.width * sizeof(float);
    return "";
  }
  int requests_per_iter() const { return 2; }
  std::string Step(std::span<const uint64_t> keys, std::span<float> w, std::span<float> g,
                   bool pipeline) {
    const size_t k = keys.size(), width = w.size() / k;
    argv_.assign({"HMGET", hash_.c_str()});
    lens_.assign({5, hash_.size()});
    for (const uint64_t& key : keys) Arg(&key, sizeof key);
    redisAppendCommandArgv(ctx_, static_cast<int>(argv_.size()), argv_.data(), lens_.data());
    if (pending_set_) {  // the previous HSET travels in the same write as this HMGET
      pending_set_ = false;
      if (std::string e = Expect(REDIS_REPLY_INTEGER, 0); !e.empty()) return e;
    }
    if (std::string e = Expect(REDIS_REPLY_ARRAY, k, w); !e.empty()) return e;
    Gradient(keys, w, g);
    vals_.resize(w.size());
    for (size_t j = 0; j < w.size(); ++j) vals_[j] = w[j] - kRedisLr * g[j];
    argv_.assign({"HSET", hash_.c_str()});
    lens_.assign({4, hash_.size()});
    for (size_t i = 0; i < k; ++i) {
      Arg(&keys[i], sizeof(uint64_t));
      Arg(&vals_[i * width], row_bytes_);
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(argv_.size()), argv_.data(), lens_.data());
    pending_set_ = true;
    return pipeline ? "" : Finish();
  }
  std::string Finish() {
    if (!pending_set_) return "";
    pending_set_ = false;
    return Expect(REDIS_REPLY_INTEGER, 0);
  }

 private:
  void Arg(const void* p, size_t n) {
    argv_.push_back(static_cast<const char*>(p));
    lens_.push_back(n);
  }
  // Reads one reply of `type`; for arrays, `n` rows into `w` (absent: zeros).
  std::string Expect(int type, size_t n, std::span<float> w = {}) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) return std::string("redis: ") + ctx_->errstr;
    std::unique_ptr<redisReply, void (*)(void*)> r(static_cast<redisReply*>(raw), freeReplyObject);
    if (r->type == REDIS_REPLY_ERROR) return "redis: " + std::string(r->str, r->len);
    if (r->type != type || (type == REDIS_REPLY_ARRAY && r->elements != n))
      return "redis: unexpected reply type " + std::to_string(r->type);
    const size_t width = row_bytes_ / sizeof(float);
    for (size_t i = 0; i < n; ++i) {
      const redisReply* e = r->element[i];
      float* row = w.data() + i * width;
      if (e->type == REDIS_REPLY_STRING && e->len == row_bytes_)
        std::memcpy(row, e->str, row_bytes_);
      else
        std::fill(row, row + width, 0.0f);
    }
    return "";
  }

  redisContext* ctx_ = nullptr;
  std::string hash_;
  size_t row_bytes_ = sizeof(float);
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
  std::vector<float> vals_;
  bool pending_set_ = false;
};

template <typename Load>
int Run(Load& load, const ClientArgs& a) {
  nlohmann::json out = {{"iters", 0}, {"keys", 0}, {"requests", 0}, {"cpu_s", 0}, {"error", ""}};
  std::string err = load.Init(a);
  const int requests_per_iter = err.empty() ? load.requests_per_iter() : 0;
  std::vector<uint64_t> keys(a.keys);
  std::vector<float> w(size_t{a.keys} * a.width), g(w.size()), lat;
  lat.reserve(1 << 16);
  KeyPicker picker(SplitMix64(a.seed));
  uint64_t iters = 0;
  double cpu0 = -1;
  while (err.empty()) {
    picker.Pick(&keys);
    const int64_t t0 = NowNs();
    if (t0 >= a.end_ns) break;
    if (cpu0 < 0 && t0 >= a.start_ns) cpu0 = ProcessCpuSeconds();
    err = load.Step(keys, w, g, a.pipeline);
    if (t0 < a.start_ns) continue;  // warm-up
    lat.push_back(static_cast<float>((NowNs() - t0) / 1e3));
    ++iters;
  }
  const double cpu1 = ProcessCpuSeconds();
  if (err.empty()) err = load.Finish();
  if (!a.lat_out.empty())
    std::ofstream(a.lat_out, std::ios::binary)
        .write(reinterpret_cast<const char*>(lat.data()),
               static_cast<std::streamsize>(lat.size() * sizeof(float)));
  out["iters"] = iters;
  out["keys"] = iters * 2 * a.keys;  // pulled + pushed
  out["requests"] = iters * requests_per_iter;
  out["cpu_s"] = cpu0 < 0 ? 0.0 : cpu1 - cpu0;
  out["error"] = err;
  std::printf("%s\n", out.dump().c_str());
  return err.empty() ? 0 : 1;
}

}  // namespace

int RunClient(const ClientArgs& a) {
  if (!a.redis.empty()) {
    RedisLoad load;
    return Run(load, a);
  }
  VirgaLoad load;
  return Run(load, a);
}

}  // namespace virga::cli::benchps
