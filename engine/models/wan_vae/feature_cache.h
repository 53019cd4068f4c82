// The causal feature cache of the Wan 2.1 VAE (the reference's feat_map /
// feat_idx): one slot per cached conv, visited in forward order on every
// chunk, each holding the last (up to) two input frames of that conv.
#pragma once

#include <ATen/core/Tensor.h>
#include <vector>

namespace la::models::wan_vae {

class FeatureCache {
 public:
  // Every encoder/decoder call on a chunk starts again at the first slot.
  void begin_chunk() { next_ = 0; }
  // The slot of the next cached conv in forward order (created on first use).
  size_t take() {
    if (next_ == slots_.size()) {
      slots_.emplace_back();
      first_chunk_marker_.push_back(false);
    }
    return next_++;
  }
  at::Tensor& slot(size_t i) { return slots_[i]; }
  // upsample3d's 'Rep' sentinel: the first chunk skipped its time conv.
  bool marked(size_t i) const { return first_chunk_marker_[i]; }
  void set_marked(size_t i, bool v) { first_chunk_marker_[i] = v; }
  void clear() {
    slots_.clear();
    first_chunk_marker_.clear();
    next_ = 0;
  }
  bool empty() const { return slots_.empty(); }

 private:
  std::vector<at::Tensor> slots_;
  std::vector<bool> first_chunk_marker_;
  size_t next_ = 0;
};

}  // namespace la::models::wan_vae
