#include "engine/models/wan_vae/blocks.h"

#include <ATen/ATen.h>

#include "engine/nn/attention.h"
#include "engine/nn/channel_rms_norm.h"

namespace la::models::wan_vae {
namespace {

constexpr int64_t kCacheFrames = 2;

at::Tensor last_frames(const at::Tensor& x, int64_t n) {
  return x.slice(2, std::max<int64_t>(0, x.size(2) - n)).clone();
}

// RMS norm then SiLU, in fp32 as under the reference's autocast.
at::Tensor norm_silu(const at::Tensor& x, const at::Tensor& gamma) {
  return at::silu(nn::channel_rms_norm(x, gamma));
}

at::Tensor to_frames(const at::Tensor& x) {  // [B,C,T,H,W] -> [B*T,C,H,W]
  return x.permute({0, 2, 1, 3, 4}).reshape({x.size(0) * x.size(2), x.size(1), x.size(3), x.size(4)});
}

at::Tensor from_frames(const at::Tensor& f, int64_t b) {  // [B*T,C,H,W] -> [B,C,T,H,W]
  return f.reshape({b, f.size(0) / b, f.size(1), f.size(2), f.size(3)}).permute({0, 2, 1, 3, 4});
}

at::Tensor upsample3d_time(const at::Tensor& x, const nn::Conv& time_conv, FeatureCache& cache) {
  const size_t idx = cache.take();
  at::Tensor& slot = cache.slot(idx);
  if (!slot.defined() && !cache.marked(idx)) {
    cache.set_marked(idx, true);  // first chunk: one frame stays one frame
    return x;
  }
  at::Tensor cache_x = last_frames(x, kCacheFrames);
  if (cache_x.size(2) < kCacheFrames) {
    // After the first chunk the history is a zero frame, later the previous frame.
    cache_x = at::cat({cache.marked(idx) ? at::zeros_like(cache_x) : slot.slice(2, slot.size(2) - 1), cache_x}, 2);
  }
  at::Tensor y = cache.marked(idx) ? nn::causal_conv3d(x, time_conv, {1, 0, 0})
                                   : nn::causal_conv3d(x, time_conv, {1, 0, 0}, {1, 1, 1}, slot);
  slot = cache_x;
  cache.set_marked(idx, false);
  // 2C channels -> two C groups interleaved in time: frame 2i from [0:C], 2i+1 from [C:2C].
  const auto b = y.size(0), c = y.size(1) / 2, t = y.size(2), h = y.size(3), w = y.size(4);
  y = y.reshape({b, 2, c, t, h, w});
  return at::stack({y.select(1, 0), y.select(1, 1)}, 3).reshape({b, c, 2 * t, h, w});
}

at::Tensor downsample3d_time(const at::Tensor& x, const nn::Conv& time_conv, FeatureCache& cache) {
  const size_t idx = cache.take();
  at::Tensor& slot = cache.slot(idx);
  if (!slot.defined()) {
    slot = x.clone();  // first chunk: kept whole, no temporal step
    return x;
  }
  at::Tensor cache_x = last_frames(x, 1);
  at::Tensor y = nn::causal_conv3d(at::cat({slot.slice(2, slot.size(2) - 1), x}, 2), time_conv, {0, 0, 0},
                                   {2, 1, 1});
  slot = cache_x;
  return y;
}

}  // namespace

at::Tensor cached_conv3x3x3(const at::Tensor& x, const nn::Conv& conv, FeatureCache& cache) {
  const size_t idx = cache.take();
  at::Tensor& slot = cache.slot(idx);
  at::Tensor cache_x = last_frames(x, kCacheFrames);
  if (cache_x.size(2) < kCacheFrames && slot.defined())
    cache_x = at::cat({slot.slice(2, slot.size(2) - 1), cache_x}, 2);
  at::Tensor y = nn::causal_conv3d(x, conv, {1, 1, 1}, {1, 1, 1}, slot);
  slot = cache_x;
  return y;
}

at::Tensor residual_forward(const at::Tensor& x, const Residual& r, FeatureCache& cache) {
  const at::Tensor h = r.shortcut.weight.defined() ? nn::causal_conv3d(x, r.shortcut, {0, 0, 0}) : x;
  at::Tensor y = cached_conv3x3x3(norm_silu(x, r.norm1_gamma), r.conv1, cache);
  y = cached_conv3x3x3(norm_silu(y, r.norm2_gamma), r.conv2, cache);
  return y + h;
}

at::Tensor attention_forward(const at::Tensor& x, const Attention& a) {
  const auto b = x.size(0), c = x.size(1), h = x.size(3), w = x.size(4);
  const at::Tensor dtype_ref = a.to_qkv.weight;
  at::Tensor f = nn::channel_rms_norm(to_frames(x), a.norm_gamma).to(dtype_ref.scalar_type());
  at::Tensor qkv = at::conv2d(f, a.to_qkv.weight, a.to_qkv.bias);
  // Single head over the h*w positions of each frame.
  qkv = qkv.reshape({f.size(0), 1, 3 * c, h * w}).permute({0, 1, 3, 2}).contiguous();
  auto parts = qkv.chunk(3, -1);
  at::Tensor o = nn::attention(parts[0], parts[1], parts[2]);
  o = o.squeeze(1).permute({0, 2, 1}).reshape({f.size(0), c, h, w});
  o = at::conv2d(o, a.proj.weight, a.proj.bias);
  return from_frames(o, b) + x;
}

at::Tensor resample_forward(const at::Tensor& x, const Resample& r, FeatureCache& cache) {
  const auto b = x.size(0);
  switch (r.mode) {
    case ResampleMode::kUpsample3d:
    case ResampleMode::kUpsample2d: {
      at::Tensor y = r.mode == ResampleMode::kUpsample3d ? upsample3d_time(x, r.time_conv, cache) : x;
      at::Tensor f = to_frames(y);
      // nearest-exact x2, evaluated in fp32 and cast back (the reference's Upsample)
      f = at::_upsample_nearest_exact2d(f.to(at::kFloat), {f.size(2) * 2, f.size(3) * 2}).to(f.scalar_type());
      return from_frames(at::conv2d(f, r.conv.weight, r.conv.bias, {1, 1}, {1, 1}), b);
    }
    case ResampleMode::kDownsample2d:
    case ResampleMode::kDownsample3d: {
      at::Tensor f = at::constant_pad_nd(to_frames(x), {0, 1, 0, 1});  // right and bottom
      at::Tensor y = from_frames(at::conv2d(f, r.conv.weight, r.conv.bias, {2, 2}), b);
      return r.mode == ResampleMode::kDownsample3d ? downsample3d_time(y, r.time_conv, cache) : y;
    }
  }
  return x;
}

at::Tensor coder_forward(const at::Tensor& x, const Coder& c, FeatureCache& cache) {
  cache.begin_chunk();
  at::Tensor y = cached_conv3x3x3(x, c.conv_in, cache);
  auto middle = [&] {
    y = residual_forward(y, c.middle_first, cache);
    y = attention_forward(y, c.middle_attention);
    y = residual_forward(y, c.middle_last, cache);
  };
  // The encoder runs its stages before the middle blocks, the decoder after.
  if (c.middle_before_layers) middle();
  for (const auto& layer : c.layers)
    y = layer.is_resample ? resample_forward(y, layer.resample, cache) : residual_forward(y, layer.residual, cache);
  if (!c.middle_before_layers) middle();
  return cached_conv3x3x3(norm_silu(y, c.head_gamma), c.head_conv, cache);
}

}  // namespace la::models::wan_vae
