// OptimizerConfig <-> JSON, one codec for every payload that carries an
// optimizer (a training worker's local steps, a channel worker's updates).
// Errors name the field: "optimizer.learning_rate: expected a number".
#pragma once

#include <nlohmann/json.hpp>

#include "virga/optimizer.h"
#include "virga/status.h"

namespace virga {

nlohmann::json OptimizerToJson(const OptimizerConfig& c);
// Fields absent from `j` keep *c's values; the result is validated.
Status OptimizerFromJson(const nlohmann::json& j, OptimizerConfig* c);

}  // namespace virga
