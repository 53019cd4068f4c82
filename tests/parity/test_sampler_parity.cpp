// parity-sampler: the schedule against sampler_io, and every recorded Euler
// step of dit_io (x_next from x and the recorded DiT output) replayed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

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

TEST(Sampler, Bf16ProductRoundsBeforeTheFloat32Sum) {
  // 1 + (-0.14230769) * 1.00390625(bf16): the product is rounded to bf16 first.
  const at::Tensor x = at::ones({1});
  const at::Tensor v = at::full({1}, 1.00390625, at::kBFloat16);
  const auto s = sampler::flow_match_schedule(4);
  const at::Tensor got = sampler::euler_step(x, v, s.sigmas[0], s.sigmas[1]);
  EXPECT_EQ(got.scalar_type(), at::kBFloat16);
  const float dt = s.sigmas[1] - s.sigmas[0];
  const at::Tensor prod = (v * dt);  // bf16
  EXPECT_EQ(prod.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(got, (x + prod.to(at::kFloat)).to(at::kBFloat16)));
}

TEST(Sampler, StepsOutsideTheScheduleAreRefused) {
  EXPECT_THROW(sampler::flow_match_schedule(0), std::invalid_argument);
  EXPECT_THROW(sampler::flow_match_schedule(1001), std::invalid_argument);
  const auto one = sampler::flow_match_schedule(1);
  EXPECT_EQ(one.timesteps, std::vector<float>{1000.0f});
  EXPECT_EQ(one.sigmas.back(), 0.0f);
}
