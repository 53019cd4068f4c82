// The synthetic talking face of the miniature (DESIGN §9): a drawn head whose
// mouth opening follows the loudness of the speech at 25 fps, with a small
// head bob that follows its slower envelope, and the measurement that reads
// the mouth opening back from pixels. The trainer draws its corpus with this
// code; the lip-sync tool and test measure the model's output with it, so
// the face geometry lives in one place.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>
#include <vector>

namespace la::miniature {

constexpr int64_t kSampleRate = 16000;
constexpr int64_t kFps = 25;
constexpr int64_t kSamplesPerFrame = kSampleRate / kFps;  // 640

// Loudness of each 40 ms video frame of 16 kHz speech, in [0, 1]: the RMS in
// dBFS mapped linearly from -50 dB (0) to -20 dB (1), then smoothed with a
// symmetric [1 2 1]/4 filter (no delay). `frames` frames; audio past the end
// counts as silence.
std::vector<float> loudness_envelope(const float* samples, int64_t count, int64_t frames);

// What one frame shows.
struct FacePose {
  float mouth_open = 0;  // 0 closed .. 1 wide open
  float head_dy = 0;     // pixels at 128 px (scaled with the size), negative = up
};

// The poses of a clip from its loudness envelope: the mouth is the envelope,
// the head rises with its 7-frame symmetric average (up to 3 px at 128 px).
std::vector<FacePose> poses_from_envelope(const std::vector<float>& envelope);

// One frame, [3, size, size] float32 in [-1, 1] (size a multiple of 16).
at::Tensor draw_face(const FacePose& pose, int64_t size);
// A clip, [3, T, size, size].
at::Tensor draw_video(const std::vector<FacePose>& poses, int64_t size);

// The mouth opening of an RGB frame (uint8 [size, size, 3]) in pixels at
// 128 px: dark rows in a band of columns around the mouth's centre, averaged
// over the band. Reads only pixels, never the pose that drew them.
double measure_mouth_opening(const at::Tensor& rgb_frame);

// Mouth against loudness: Pearson correlation at each lag of the mouth
// series behind (+) or ahead (-) of the envelope within ±max_lag frames; the
// best lag, refined to a fraction of a frame by a parabola through the peak,
// is the A/V offset (positive: the mouth moves after the sound).
struct LipSync {
  double correlation = 0;      // at lag 0
  double peak_correlation = 0; // at the best whole-frame lag
  int peak_lag_frames = 0;
  double offset_ms = 0;
  int64_t frames = 0;
};
LipSync measure_lip_sync(const std::vector<double>& mouth, const std::vector<float>& envelope, int max_lag = 6);

}  // namespace la::miniature
