#include "engine/models/wan_vae/weights.h"

#include <ATen/ATen.h>

#include "engine/io/checkpoint_error.h"
#include "engine/io/weight_store.h"

namespace la::models::wan_vae {
namespace {

// The reference's 16 latent channel statistics (vae2_1.py:629-639); they are
// not in the checkpoint.
constexpr float kMean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
                             0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f};
constexpr float kStd[16] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                            3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};

class Loader {
 public:
  Loader(io::WeightStore& store, at::Device device, at::ScalarType dtype)
      : store_(store), device_(device), dtype_(dtype) {}

  bool has(const std::string& key) const { return store_.contains(key); }
  at::Tensor tensor(const std::string& key) {
    return store_.get_unchecked(key).to(device_, dtype_);
  }
  nn::Conv conv(const std::string& prefix) { return {tensor(prefix + ".weight"), tensor(prefix + ".bias")}; }

  Residual residual(const std::string& p) {
    Residual r{tensor(p + ".residual.0.gamma"), conv(p + ".residual.2"), tensor(p + ".residual.3.gamma"),
               conv(p + ".residual.6"), {}};
    if (has(p + ".shortcut.weight")) r.shortcut = conv(p + ".shortcut");
    return r;
  }

  Attention attention(const std::string& p) {
    return {tensor(p + ".norm.gamma"), conv(p + ".to_qkv"), conv(p + ".proj")};
  }

  Coder coder(const std::string& name, bool encoder) {
    Coder c;
    c.middle_before_layers = !encoder;
    c.conv_in = conv(name + ".conv1");
    const std::string list = name + (encoder ? ".downsamples." : ".upsamples.");
    for (int i = 0; has(list + std::to_string(i) + ".residual.0.gamma") ||
                    has(list + std::to_string(i) + ".resample.1.weight");
         ++i) {
      const std::string p = list + std::to_string(i);
      Layer layer;
      if (has(p + ".resample.1.weight")) {
        layer.is_resample = true;
        const bool temporal = has(p + ".time_conv.weight");
        layer.resample.mode = encoder ? (temporal ? ResampleMode::kDownsample3d : ResampleMode::kDownsample2d)
                                      : (temporal ? ResampleMode::kUpsample3d : ResampleMode::kUpsample2d);
        layer.resample.conv = conv(p + ".resample.1");
        if (temporal) layer.resample.time_conv = conv(p + ".time_conv");
      } else {
        layer.residual = residual(p);
      }
      c.layers.push_back(std::move(layer));
    }
    c.middle_first = residual(name + ".middle.0");
    c.middle_attention = attention(name + ".middle.1");
    c.middle_last = residual(name + ".middle.2");
    c.head_gamma = tensor(name + ".head.0.gamma");
    c.head_conv = conv(name + ".head.2");
    return c;
  }

 private:
  io::WeightStore& store_;
  at::Device device_;
  at::ScalarType dtype_;
};

}  // namespace

Weights load_weights(io::WeightStore& store, const WanVaeConfig& config, at::Device device,
                     at::ScalarType dtype) {
  // The layout is the single statement of which keys exist with which shapes:
  // check all of it first, so a bad file fails naming the first wrong tensor.
  for (const auto& spec : wan_vae_tensor_specs(config)) store.get(spec.name, spec.shape);
  const auto unused = store.unused_keys();
  if (!unused.empty())
    throw io::CheckpointError(store.file_of(unused.front()), unused.front(),
                              "is not part of a Wan 2.1 VAE (" + std::to_string(unused.size()) +
                                  " unexpected tensors)");
  if (config.z_dim != 16)
    throw io::CheckpointError(store.file_of("conv2.weight"), "conv2.weight",
                              "gives z_dim " + std::to_string(config.z_dim) +
                                  "; the latent statistics exist for z_dim 16 only");

  Loader l(store, device, dtype);
  Weights w;
  w.config = config;
  w.encoder = l.coder("encoder", true);
  w.decoder = l.coder("decoder", false);
  w.quant_conv = l.conv("conv1");
  w.post_quant_conv = l.conv("conv2");
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  w.mean = at::from_blob(const_cast<float*>(kMean), {16}, opts).to(device, dtype);
  // 1/std computed in the model dtype, as the reference does (bf16 on GPU).
  w.inv_std = at::reciprocal(at::from_blob(const_cast<float*>(kStd), {16}, opts).to(device, dtype));
  return w;
}

}  // namespace la::models::wan_vae
