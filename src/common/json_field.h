// One JSON field of a codec's object, checked before it is read: the codecs
// of the payloads (src/worker/optimizer_json.cc, src/channel/payload_json.cc)
// read their fields through it, each naming the field its own way.
#pragma once

#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "virga/status.h"

namespace virga {

// Reads obj[name] into *out when present (missing is an error only when
// `required`): a string into std::string, an unsigned integer that fits an
// integral T, any number into a floating-point T. Problems are reported as
// error(name, problem), which gives the codec's message.
template <typename T, typename Error>
Status ReadJsonField(const nlohmann::json& obj, const char* name, T* out, bool required,
                     Error error) {
  auto it = obj.find(name);
  if (it == obj.end()) return required ? error(name, "missing") : Status::OK();
  try {
    if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) return error(name, "expected a string");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_unsigned()) return error(name, "expected an unsigned integer");
      if (it->get<uint64_t>() > std::numeric_limits<T>::max()) return error(name, "out of range");
    } else {
      if (!it->is_number()) return error(name, "expected a number");
    }
    *out = it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    return error(name, e.what());
  }
  return Status::OK();
}

}  // namespace virga
