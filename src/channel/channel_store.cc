#include "channel/channel_store.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>

namespace virga::channel {
namespace {

// ---- object store ----------------------------------------------------------

class ObjectChannel final : public ChannelStore {
 public:
  explicit ObjectChannel(std::shared_ptr<ObjectStore> store) : store_(std::move(store)) {}

  Status Put(std::string_view key, std::string_view data) override {
    ++counters_.puts;
    counters_.bytes_written += data.size();
    return store_->Put(key, data);
  }
  Status Get(std::string_view key, std::string* out) override {
    ++counters_.gets;
    Status s = store_->Get(key, out);
    if (s.ok()) counters_.bytes_read += out->size();
    return s;
  }
  Result<bool> Exists(std::string_view key) override {
    ++counters_.probes;
    return store_->Exists(key);
  }
  Status Delete(std::string_view key) override {
    ++counters_.deletes;
    return store_->Delete(key);
  }
  Status DeletePrefix(std::string_view prefix) override {
    VIRGA_ASSIGN_OR_RETURN(auto objects, store_->List(prefix));
    for (const ObjectInfo& o : objects) VIRGA_RETURN_IF_ERROR(Delete(o.key));
    return Status::OK();
  }
  std::string Describe() const override { return "store " + store_->uri(); }

 private:
  std::shared_ptr<ObjectStore> store_;
};

// ---- redis -----------------------------------------------------------------

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

class RedisChannel final : public ChannelStore {
 public:
  RedisChannel(std::string host, int port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {}
  ~RedisChannel() override {
    if (ctx_ != nullptr) redisFree(ctx_);
  }

  Status Connect() {
    if (ctx_ != nullptr) {
      redisFree(ctx_);
      ctx_ = nullptr;
    }
    ctx_ = redisConnectWithTimeout(host_.c_str(), port_, ToTimeval(timeout_));
    if (ctx_ == nullptr || ctx_->err) {
      std::string why = ctx_ ? ctx_->errstr : "out of memory";
      if (ctx_ != nullptr) redisFree(ctx_);
      ctx_ = nullptr;
      return Status::Unavailable("redis " + Address() + ": cannot connect: " + why);
    }
    redisSetTimeout(ctx_, ToTimeval(timeout_));
    const char* argv[] = {"PING"};
    Reply r;
    return Command(1, argv, nullptr, "PING", &r);
  }

  Status Put(std::string_view key, std::string_view data) override {
    ++counters_.puts;
    counters_.bytes_written += data.size();
    const char* argv[] = {"SET", key.data(), data.data()};
    const size_t len[] = {3, key.size(), data.size()};
    Reply r;
    return Command(3, argv, len, key, &r);
  }
  Status Get(std::string_view key, std::string* out) override {
    ++counters_.gets;
    const char* argv[] = {"GET", key.data()};
    const size_t len[] = {3, key.size()};
    Reply r;
    VIRGA_RETURN_IF_ERROR(Command(2, argv, len, key, &r));
    if (r->type == REDIS_REPLY_NIL) {
      return Status::NotFound("redis " + Address() + ": " + std::string(key) + ": no such key");
    }
    if (r->type != REDIS_REPLY_STRING) return Unexpected(key, "GET");
    out->assign(r->str, r->len);
    counters_.bytes_read += r->len;
    return Status::OK();
  }
  Result<bool> Exists(std::string_view key) override {
    ++counters_.probes;
    const char* argv[] = {"EXISTS", key.data()};
    const size_t len[] = {6, key.size()};
    Reply r;
    VIRGA_RETURN_IF_ERROR(Command(2, argv, len, key, &r));
    if (r->type != REDIS_REPLY_INTEGER) return Unexpected(key, "EXISTS");
    return r->integer > 0;
  }
  Status Delete(std::string_view key) override {
    ++counters_.deletes;
    const char* argv[] = {"DEL", key.data()};
    const size_t len[] = {3, key.size()};
    Reply r;
    return Command(2, argv, len, key, &r);
  }
  Status DeletePrefix(std::string_view prefix) override {
    // Keys are '/'-separated [A-Za-z0-9._-] paths: no glob characters to escape.
    const std::string pattern = std::string(prefix) + "*";
    std::string cursor = "0";
    do {
      const char* argv[] = {"SCAN", cursor.c_str(), "MATCH", pattern.c_str(), "COUNT", "1000"};
      Reply r;
      VIRGA_RETURN_IF_ERROR(Command(6, argv, nullptr, prefix, &r));
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
          r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        return Unexpected(prefix, "SCAN");
      }
      cursor.assign(r->element[0]->str, r->element[0]->len);
      const redisReply* keys = r->element[1];
      for (size_t i = 0; i < keys->elements; ++i) {
        VIRGA_RETURN_IF_ERROR(Delete(std::string_view(keys->element[i]->str, keys->element[i]->len)));
      }
    } while (cursor != "0");
    return Status::OK();
  }
  std::string Describe() const override { return "redis " + Address(); }

 private:
  std::string Address() const { return host_ + ":" + std::to_string(port_); }
  Status Unexpected(std::string_view key, const char* cmd) const {
    return Status::Corruption("redis " + Address() + ": " + std::string(key) + ": unexpected reply to " +
                              cmd);
  }

  // One command; on a connection fault the context is dropped (reopened by the
  // next call) and the fault returned as Unavailable: callers retry or give up
  // by their own deadlines.
  Status Command(int argc, const char** argv, const size_t* len, std::string_view key, Reply* out) {
    if (ctx_ == nullptr) VIRGA_RETURN_IF_ERROR(Connect());
    out->reset(static_cast<redisReply*>(redisCommandArgv(ctx_, argc, argv, len)));
    if (*out == nullptr) {
      std::string why = ctx_->errstr;
      redisFree(ctx_);
      ctx_ = nullptr;
      return Status::Unavailable("redis " + Address() + ": " + std::string(key) + ": " + argv[0] +
                                 ": " + why);
    }
    if ((*out)->type == REDIS_REPLY_ERROR) {
      return Status::IOError("redis " + Address() + ": " + std::string(key) + ": " + argv[0] + ": " +
                             std::string((*out)->str, (*out)->len));
    }
    return Status::OK();
  }

  const std::string host_;
  const int port_;
  const std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
};

}  // namespace

std::unique_ptr<ChannelStore> MakeObjectChannel(std::shared_ptr<ObjectStore> store) {
  return std::make_unique<ObjectChannel>(std::move(store));
}

Status ParseRedisUri(std::string_view uri, std::string* host, int* port) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("redis URI '" + std::string(uri) + "': " + why +
                                   " (expected redis://host:port)");
  };
  constexpr std::string_view kScheme = "redis://";
  if (uri.substr(0, kScheme.size()) != kScheme) return bad("not a redis:// URI");
  std::string_view rest = uri.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("missing host or port");
  int p = 0;
  const std::string_view digits = rest.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
  if (ec != std::errc() || end != digits.data() + digits.size() || p < 1 || p > 65535) {
    return bad("port must be 1..65535");
  }
  *host = std::string(rest.substr(0, colon));
  *port = p;
  return Status::OK();
}

Result<std::unique_ptr<ChannelStore>> ConnectRedisChannel(std::string_view uri,
                                                          std::chrono::milliseconds timeout) {
  std::string host;
  int port = 0;
  VIRGA_RETURN_IF_ERROR(ParseRedisUri(uri, &host, &port));
  auto ch = std::make_unique<RedisChannel>(host, port, timeout);
  VIRGA_RETURN_IF_ERROR(ch->Connect());
  return std::unique_ptr<ChannelStore>(std::move(ch));
}

Result<std::unique_ptr<ChannelStore>> OpenChannel(std::string_view mode, std::string_view store_uri,
                                                  std::string_view redis_uri) {
  if (mode == "store") {
    VIRGA_ASSIGN_OR_RETURN(auto store, ObjectStore::Open(store_uri));
    return MakeObjectChannel(std::move(store));
  }
  if (mode == "redis") return ConnectRedisChannel(redis_uri, std::chrono::milliseconds(5000));
  return Status::InvalidArgument("channel '" + std::string(mode) + "': expected store or redis");
}

}  // namespace virga::channel
