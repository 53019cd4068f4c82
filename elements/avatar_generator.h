// liveavatargen's work without GStreamer: audio feature blocks in, latent
// blocks out, for one stream, with the prompt and the reference image
// replaceable between blocks.
//
//   AvatarGenerator gen(models, {384, 704}, {});
//   gen.set_prompt("A woman talking");       // umT5, now
//   gen.set_image(rgb);                      // resize/crop + VAE encode, now
//   at::Tensor latents = gen.next_block(features);  // [25,C,12] -> [16,3,h,w]
//
// With the DiT over several devices (GeneratorModels::dit_parts), blocks are
// generated several at a time: submit() queues one, take() returns the
// oldest, depth() blocks are in flight at most (next_block is submit + take,
// without overlap). With one device, submit() generates at once and depth()
// is 1.
//
// set_prompt/set_image do their encoding at once, on the calling thread; the
// session picks the result up at its next block. Not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>
#include <functional>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/models/umt5/encoder.h"
#include "engine/models/umt5/tokenizer.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "engine/parallel/dit_pipeline.h"
#include "engine/session/generation_session.h"
#include "engine/video/output_size.h"

namespace la::elements {

struct GeneratorModels {
  std::shared_ptr<const models::S2vDit> dit;
  std::shared_ptr<const models::WanVae> vae;  // encodes the reference image
  std::shared_ptr<const models::Umt5Encoder> t5;
  std::shared_ptr<const models::Umt5Tokenizer> tokenizer;
  // Offload: when `t5` is null, the encoder is loaded with this for each
  // prompt and released right after, so its 11 GB (bf16, 14B release) are not
  // held between prompt changes.
  std::function<std::shared_ptr<const models::Umt5Encoder>()> load_t5;
  // Several devices (DESIGN §6): one DiT part per pipeline stage and what
  // each runs; `dit` is then stage 0's part. Empty: `dit` alone.
  std::vector<std::shared_ptr<const models::S2vDit>> dit_parts;
  std::vector<parallel::StageAssignment> dit_stages;
};

class AvatarGenerator {
 public:
  // `output` in pixels, multiples of 16. Throws std::invalid_argument.
  // `handover`: how DiT stages on different GPUs pass tensors (several devices only).
  AvatarGenerator(GeneratorModels models, video::Size output, session::SessionOptions options,
                  parallel::GpuHandover handover = parallel::GpuHandover::kNccl);

  void set_prompt(const std::string& prompt);
  // rgb [h, w, 3] uint8, any size: resized and cropped to the output size.
  void set_image(const at::Tensor& rgb);

  // features [25, audio_dim, 12] float32 on any device -> latents [16, 3, h, w] on the DiT's device,
  // in the DiT's dtype. Throws std::invalid_argument / std::logic_error.
  at::Tensor next_block(const at::Tensor& features);
  void submit(const at::Tensor& features);
  // The oldest block submitted and not taken (waits for it); on the last
  // stage's device. Throws std::logic_error when there is none.
  at::Tensor take();
  // The oldest block if it is already generated, else an undefined tensor (does not wait).
  at::Tensor try_take();
  int64_t pending() const;
  int64_t depth() const { return pipeline_ ? pipeline_->depth() : 1; }
  // NCCL links between the DiT's GPUs (0 with one device, on the CPU, or all stages on one GPU).
  int64_t nccl_links() const { return pipeline_ ? pipeline_->nccl_links() : 0; }
  // A new stream: blocks in flight are dropped.
  void reset();
  int64_t blocks_done() const { return blocks_; }

 private:

  GeneratorModels models_;
  video::Size output_;
  std::unique_ptr<session::GenerationSession> session_;  // one device
  std::unique_ptr<parallel::DitPipeline> pipeline_;     // several
  std::deque<at::Tensor> ready_;                        // one device: generated, not taken
  int64_t blocks_ = 0;
};

}  // namespace la::elements
