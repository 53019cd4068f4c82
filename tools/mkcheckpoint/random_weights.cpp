#include "tools/mkcheckpoint/random_weights.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <cmath>

namespace la::tools {
namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

at::Tensor random_tensor(const models::TensorSpec& spec, uint64_t seed, at::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 0x9E3779B97F4A7C15ull ^ fnv1a(spec.name));
  at::Tensor t = at::randn(spec.shape, gen, at::TensorOptions().dtype(at::kFloat));
  switch (spec.init) {
    case models::Init::kMatrix: {
      int64_t fan_in = 1;
      for (size_t i = 1; i < spec.shape.size(); ++i) fan_in *= spec.shape[i];
      t.mul_(1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1))));
      break;
    }
    case models::Init::kNormScale: t.mul_(0.02).add_(1.0); break;
    case models::Init::kSmall: t.mul_(0.02); break;
    case models::Init::kEmbedding: break;
    case models::Init::kPositive: t.abs_().add_(0.5); break;
  }
  return t.to(dtype);
}

}  // namespace la::tools
