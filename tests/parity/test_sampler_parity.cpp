// parity-sampler: the schedule against sampler_io, and every recorded Euler
// step of dit_io (x_next from x and the recorded DiT output) replayed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/io/json_config.h"
#include "engine/io/safetensors_file.h"
#include "engine/sampler/flow_match.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

TEST(SamplerParity, ScheduleMatchesBitForBit) {
  const std::string file = test::parity_file("sampler_io.safetensors");
  const auto io = io::SafetensorsFile(file).tensors();
  const auto cfg = test::fixture_config(file);
  const auto s = sampler::flow_match_schedule(static_cast<int>(cfg.get_int("steps")), cfg.get_double("shift"),
                                              static_cast<int>(cfg.get_int("num_train_timesteps")));
  const at::Tensor timesteps = at::tensor(s.timesteps), sigmas = at::tensor(s.sigmas);
  EXPECT_TRUE(at::equal(timesteps, io.at("sampler.timesteps"))) << timesteps;
  EXPECT_TRUE(at::equal(sigmas, io.at("sampler.sigmas"))) << sigmas;
  EXPECT_FLOAT_EQ(s.timesteps[1], 857.6923217773438f);
}

TEST(SamplerParity, RecordedEulerStepsReplay) {
  const std::string file = test::parity_file("dit_io.safetensors");
  const io::SafetensorsFile f(file);
  const auto io = f.tensors();
  const auto recorded = nlohmann::json::parse(f.metadata().at("sampler"));
  const auto sched = sampler::flow_match_schedule(static_cast<int>(recorded.at("timesteps").size()));
  EXPECT_EQ(recorded.at("sigmas").get<std::vector<float>>(), sched.sigmas);
  // "steps": [{clip, block, step, call, sigma, sigma_next, t}, ...] in run order.
  std::map<std::string, at::Tensor> x_by_block;
  int replayed = 0;
  for (const auto& e : nlohmann::json::parse(f.metadata().at("steps"))) {
    const int step = e.at("step"), call = e.at("call");
    const std::string p = "denoise.clip" + std::to_string(e.at("clip").get<int>()) + ".block" +
                          std::to_string(e.at("block").get<int>());
    EXPECT_EQ(e.at("sigma").get<float>(), sched.sigmas[step]);
    EXPECT_EQ(e.at("sigma_next").get<float>(), sched.sigmas[step + 1]);
    EXPECT_EQ(e.at("t").get<float>(), sched.timesteps[step]);
    if (step == 0) x_by_block[p] = io.at(p + ".x_init");
    char name[16];
    std::snprintf(name, sizeof name, "call%02d", call);
    const at::Tensor velocity = io.at(std::string(name) + ".out")[0];
    at::Tensor& x = x_by_block[p];
    x = sampler::euler_step(x, velocity, sched.sigmas[step], sched.sigmas[step + 1]);
    const std::string out = p + ".step" + std::to_string(step) + ".x_next";
    EXPECT_TRUE(test::close_abs(x, io.at(out), 0.0, out));
    ++replayed;
  }
  EXPECT_GE(replayed, 16);
}

namespace {

// float32 -> bfloat16 -> float32 with round-to-nearest-even, written out on the
// bits (independent of ATen's conversion): bf16 keeps the top 16 bits.
float round_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}

}  // namespace

TEST(Sampler, Bf16ProductRoundsBeforeTheFloat32Sum) {
  // The reference's step with a bf16 velocity: (sigma_next - sigma) is a 0-dim
  // fp32 tensor, so v * dt is a bf16 tensor (rounded), then added to the fp32
  // sample and stored back as bf16 (reference/pipeline.md C.4). The samples are
  // close to -v*dt, where the sum is small and bf16's spacing is much finer
  // than the product's rounding error: there the two orders give different
  // bf16 results, so only the right order passes.
  const auto s = sampler::flow_match_schedule(4);
  const float dt = s.sigmas[1] - s.sigmas[0];  // -0.1423077
  std::vector<float> xs, vs;
  for (int i = 0; i < 64; ++i) {
    const float v = round_to_bf16(1.0f + 0.0078125f * i);           // exact in bf16
    xs.push_back(round_to_bf16(-v * dt * (1.0f + 0.001f * (i % 7))));  // near -v*dt, exact in bf16
    vs.push_back(v);
  }
  const at::Tensor x = at::tensor(xs).to(at::kBFloat16);
  const at::Tensor v = at::tensor(vs).to(at::kBFloat16);
  const at::Tensor got = sampler::euler_step(x, v, s.sigmas[0], s.sigmas[1]);
  ASSERT_EQ(got.scalar_type(), at::kBFloat16);
  const at::Tensor got_f = got.to(at::kFloat).contiguous();
  int orders_differ = 0;
  for (int i = 0; i < 64; ++i) {
    const float product_first = round_to_bf16(xs[i] + round_to_bf16(vs[i] * dt));
    const float fp32_sum = round_to_bf16(xs[i] + vs[i] * dt);
    orders_differ += product_first != fp32_sum;
    EXPECT_EQ(got_f[i].item<float>(), product_first) << "element " << i << ": x " << xs[i] << ", v " << vs[i]
                                                      << " (fp32-sum order would give " << fp32_sum << ")";
  }
  // The inputs must tell the two orders apart, or this test could not fail.
  EXPECT_GE(orders_differ, 32) << "inputs where the rounding order does not matter";
}

TEST(Sampler, StepsOutsideTheScheduleAreRefused) {
  EXPECT_THROW(sampler::flow_match_schedule(0), std::invalid_argument);
  EXPECT_THROW(sampler::flow_match_schedule(1001), std::invalid_argument);
  const auto one = sampler::flow_match_schedule(1);
  EXPECT_EQ(one.timesteps, std::vector<float>{1000.0f});
  EXPECT_EQ(one.sigmas.back(), 0.0f);
}
