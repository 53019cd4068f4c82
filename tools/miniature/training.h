// The two training stages of the miniature, both through the engine's own
// forward code with autograd recording (DESIGN §9):
//
// - the VAE on the face video: encode -> decode reconstruction, weighted
//   towards the mouth, with a pull of the normalised latents towards unit
//   variance (the scale the DiT's noise assumes);
// - the DiT with flow matching the way liveavatargen samples: a sequence of
//   blocks of 3 latent frames from one clip, all at the noise level of one of
//   the 4 sampler steps, each block run by S2vDit::forward against the KV
//   ring of that step (so it attends to the earlier blocks at the same noise
//   level) and the sink prefilled from the reference image, the sink
//   refreshed after the first clip of 4 blocks as the session does; the loss
//   is the velocity's squared error.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>
#include <vector>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "engine/session/conditioning.h"
#include "tools/miniature/corpus.h"

namespace la::miniature {

struct TrainingRun {
  int steps = 1000;
  double lr = 1e-3;
  int64_t size = 128;  // video width = height
  uint64_t seed = 7;
};

// `params`: the tensors the model was built from (requires_grad set).
// Returns the mean loss of the last 50 steps.
double train_vae(const models::WanVae& vae, const std::vector<at::Tensor>& params,
                 const std::vector<TrainingClip>& clips, const TrainingRun& run);

struct DitInputs {
  at::Tensor prompt_states;          // umT5 states of the prompt [tokens, text_dim]
  session::ReferenceLatents reference;  // of the neutral face
  int64_t blocks_per_sequence = 5;   // one more than the KV window: trains the ring's wrap and the refresh
};

double train_dit(const models::S2vDit& dit, const std::vector<at::Tensor>& params,
                 const std::vector<TrainingClip>& clips, const DitInputs& inputs, const TrainingRun& run);

}  // namespace la::miniature
