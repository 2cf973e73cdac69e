// GenerateRatings: ratings from a planted biased low-rank model
// (include/virga/datagen.h), written as "user<TAB>item<TAB>rating" lines.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "virga/datagen.h"
#include "virga/text_writer.h"

namespace virga {
namespace {

struct Planted {
  std::vector<double> user_bias, item_bias;
  std::vector<double> p, q;  // users x rank, items x rank
};

Planted Plant(const RatingsGenOptions& o, std::mt19937_64& rng) {
  Planted m;
  std::normal_distribution<double> bu(0, 0.3), bi(0, 0.4);
  // Var <p, q> = rank * s^4 = 0.25.
  std::normal_distribution<double> f(0, std::pow(0.25 / o.rank, 0.25));
  for (uint32_t u = 0; u < o.users; ++u) m.user_bias.push_back(bu(rng));
  for (uint32_t i = 0; i < o.items; ++i) m.item_bias.push_back(bi(rng));
  for (uint64_t k = 0; k < uint64_t{o.users} * o.rank; ++k) m.p.push_back(f(rng));
  for (uint64_t k = 0; k < uint64_t{o.items} * o.rank; ++k) m.q.push_back(f(rng));
  return m;
}

Status Validate(const RatingsGenOptions& o) {
  if (o.users == 0 || o.items == 0) return Status::InvalidArgument("users and items must be >= 1");
  if (o.rank == 0 || o.rank > 1024) return Status::InvalidArgument("rank must be 1..1024");
  if (!(o.noise >= 0) || !std::isfinite(o.mean))
    return Status::InvalidArgument("noise must be >= 0 and mean finite");
  if (uint64_t{o.users} * o.rank > (uint64_t{1} << 28) ||
      uint64_t{o.items} * o.rank > (uint64_t{1} << 28))
    return Status::InvalidArgument("users x rank and items x rank must be at most 2^28");
  return Status::OK();
}

}  // namespace

Result<RatingsGenReport> GenerateRatings(const RatingsGenOptions& o) {
  VIRGA_RETURN_IF_ERROR(Validate(o));
  const auto start = std::chrono::steady_clock::now();
  std::mt19937_64 rng(o.seed);
  const Planted m = Plant(o, rng);
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<TextWriter> out, TextWriter::Open(o.out_path));
  std::uniform_int_distribution<uint32_t> user(0, o.users - 1), item(0, o.items - 1);
  std::normal_distribution<double> noise(0, o.noise);
  RatingsGenReport r;
  double noise_sq = 0, sum = 0, sum_sq = 0;
  std::string buf;
  char line[96];
  for (uint64_t n = 0; n < o.rows; ++n) {
    const uint32_t u = user(rng), i = item(rng);
    double y = o.mean + m.user_bias[u] + m.item_bias[i];
    for (uint32_t k = 0; k < o.rank; ++k) y += m.p[uint64_t{u} * o.rank + k] * m.q[uint64_t{i} * o.rank + k];
    const double e = o.noise > 0 ? noise(rng) : 0.0;
    const float rating = static_cast<float>(y + e);
    // The floor is measured against the rating as written (a float).
    const double written_noise = rating - y;
    noise_sq += written_noise * written_noise;
    sum += rating;
    sum_sq += static_cast<double>(rating) * rating;
    const int len = std::snprintf(line, sizeof line, "%u\t%u\t%.9g\n", u, i, rating);
    buf.append(line, static_cast<size_t>(len));
    if (buf.size() >= (1u << 16)) {
      VIRGA_RETURN_IF_ERROR(out->Write(buf));
      r.bytes += buf.size();
      buf.clear();
      if (o.on_progress) o.on_progress(n + 1, r.bytes);
    }
  }
  VIRGA_RETURN_IF_ERROR(out->Write(buf));
  r.bytes += buf.size();
  VIRGA_RETURN_IF_ERROR(out->Close());
  r.rows = o.rows;
  if (r.rows > 0) {
    const double n = static_cast<double>(r.rows);
    r.bayes_rmse = std::sqrt(noise_sq / n);
    r.label_stddev = std::sqrt(std::max(0.0, sum_sq / n - (sum / n) * (sum / n)));
  }
  r.expected_rmse = o.noise;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace virga
