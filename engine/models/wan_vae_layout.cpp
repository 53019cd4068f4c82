#include "engine/models/wan_vae_layout.h"

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"

namespace la::models {
namespace {

using Specs = std::vector<TensorSpec>;
// CausalConv3d / Conv2d: "<p>.weight" [out,in,k...] and "<p>.bias".
void conv(Specs& s, const std::string& p, int64_t out, int64_t in, std::vector<int64_t> kernel) {
  std::vector<int64_t> shape = {out, in};
  shape.insert(shape.end(), kernel.begin(), kernel.end());
  add_linear(s, p, shape);
}

void rms_gamma(Specs& s, const std::string& p, int64_t c, int spatial_dims) {
  std::vector<int64_t> shape = {c};
  shape.insert(shape.end(), spatial_dims, 1);
  s.push_back({p + ".gamma", shape, Init::kNormScale});
}

// ResidualBlock: residual.{0 norm, 2 conv, 3 norm, 6 conv} and a 1x1x1 shortcut when in != out.
void residual(Specs& s, const std::string& p, int64_t in, int64_t out) {
  rms_gamma(s, p + ".residual.0", in, 3);
  conv(s, p + ".residual.2", out, in, {3, 3, 3});
  rms_gamma(s, p + ".residual.3", out, 3);
  conv(s, p + ".residual.6", out, out, {3, 3, 3});
  if (in != out) conv(s, p + ".shortcut", out, in, {1, 1, 1});
}

void attention(Specs& s, const std::string& p, int64_t c) {
  rms_gamma(s, p + ".norm", c, 2);
  conv(s, p + ".to_qkv", 3 * c, c, {1, 1});
  conv(s, p + ".proj", c, c, {1, 1});
}

void middle(Specs& s, const std::string& p, int64_t c) {
  residual(s, p + ".middle.0", c, c);
  attention(s, p + ".middle.1", c);
  residual(s, p + ".middle.2", c, c);
}

void encoder(Specs& s, const WanVaeConfig& c) {
  std::vector<int64_t> dims = {c.dim};
  for (auto m : c.dim_mult) dims.push_back(c.dim * m);
  conv(s, "encoder.conv1", dims[0], 3, {3, 3, 3});
  int idx = 0;
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    int64_t in = dims[i];
    const int64_t out = dims[i + 1];
    for (int64_t r = 0; r < c.num_res_blocks; ++r, in = out)
      residual(s, "encoder.downsamples." + std::to_string(idx++), in, out);
    if (i + 1 < c.dim_mult.size()) {
      const std::string p = "encoder.downsamples." + std::to_string(idx++);
      conv(s, p + ".resample.1", out, out, {3, 3});
      if (c.temporal_downsample.at(i)) conv(s, p + ".time_conv", out, out, {3, 1, 1});
    }
  }
  middle(s, "encoder", dims.back());
  rms_gamma(s, "encoder.head.0", dims.back(), 3);
  conv(s, "encoder.head.2", 2 * c.z_dim, dims.back(), {3, 3, 3});
}

void decoder(Specs& s, const WanVaeConfig& c) {
  // dims = dim * [mult[-1], mult[-1], ..., mult[0]]
  std::vector<int64_t> dims = {c.dim * c.dim_mult.back()};
  for (auto it = c.dim_mult.rbegin(); it != c.dim_mult.rend(); ++it) dims.push_back(c.dim * *it);
  conv(s, "decoder.conv1", dims[0], c.z_dim, {3, 3, 3});
  middle(s, "decoder", dims[0]);
  int idx = 0;
  const size_t stages = dims.size() - 1;
  for (size_t i = 0; i < stages; ++i) {
    // The stage after an upsample receives half the channels (Resample halves them).
    int64_t in = (i >= 1 && i <= 3) ? dims[i] / 2 : dims[i];
    const int64_t out = dims[i + 1];
    for (int64_t r = 0; r <= c.num_res_blocks; ++r, in = out)
      residual(s, "decoder.upsamples." + std::to_string(idx++), in, out);
    if (i + 1 < c.dim_mult.size()) {
      const std::string p = "decoder.upsamples." + std::to_string(idx++);
      conv(s, p + ".resample.1", out / 2, out, {3, 3});
      // temporal upsample list is the reverse of the downsample list
      if (c.temporal_downsample.at(c.temporal_downsample.size() - 1 - i))
        conv(s, p + ".time_conv", 2 * out, out, {3, 1, 1});
    }
  }
  rms_gamma(s, "decoder.head.0", dims.back(), 3);
  conv(s, "decoder.head.2", 3, dims.back(), {3, 3, 3});
}

}  // namespace

WanVaeConfig WanVaeConfig::from_json(const io::JsonConfig& j) {
  WanVaeConfig c;
  c.dim = j.get_int("dim", c.dim);
  c.z_dim = j.get_int("z_dim", c.z_dim);
  if (j.has("dim_mult")) c.dim_mult = j.get_int_list("dim_mult");
  c.num_res_blocks = j.get_int("num_res_blocks", c.num_res_blocks);
  if (j.has("temperal_downsample")) {
    c.temporal_downsample.clear();
    for (const auto& v : j.get_bool_list("temperal_downsample")) c.temporal_downsample.push_back(v);
  }
  if (c.dim_mult.size() != 4 || c.temporal_downsample.size() != c.dim_mult.size() - 1)
    throw io::CheckpointError(j.path(), "VAE config needs 4 dim_mult entries and 3 temperal_downsample entries");
  return c;
}

std::vector<TensorSpec> wan_vae_tensor_specs(const WanVaeConfig& cfg) {
  Specs s;
  encoder(s, cfg);
  conv(s, "conv1", 2 * cfg.z_dim, 2 * cfg.z_dim, {1, 1, 1});
  conv(s, "conv2", cfg.z_dim, cfg.z_dim, {1, 1, 1});
  decoder(s, cfg);
  return s;
}

}  // namespace la::models
