// The elements as users run them: in a gst-launch-1.0 process of its own, where GStreamer loads
// the plugin (and with it LibTorch and the CUDA runtime) with dlopen, not linked into the test.
// On a GPU machine the demo's line (liveavatarbin cuda-device-id=0) crashed with SIGSEGV in
// gst-launch-1.0 while every in-process GPU test passed (H200, 2026-11-29): the GPU cases split
// that line into its parts (features alone, generator and decoder alone, the whole bin) so one
// run says which part crashes. The CPU case runs everywhere and proves the harness.
#include <gtest/gtest.h>

#include <glib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "engine/runtime/cuda_runtime_info.h"
#include "gst/cxx_unwinder.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"
#include "tests/gst/gst_test_util.h"

using namespace la;

namespace {

struct Launch {
  int exit_code = -1;  // the process's exit status; 128 + N after signal N; 124 after the time limit
  std::string output;  // stdout and stderr
};

// `command` run by sh, its stdout and stderr together.
Launch run_command(const std::string& command) {
  Launch r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) {
    r.output = "popen failed: " + command;
    return r;
  }
  char chunk[4096];
  size_t n = 0;
  while ((n = fread(chunk, 1, sizeof chunk, pipe)) > 0) r.output.append(chunk, n);
  const int status = pclose(pipe);
  // sh reports a child killed by signal N as 128 + N; timeout too (124 for its own limit).
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// gst-launch-1.0 (LA_GST_LAUNCH, set by the build) with `description`, under `timeout`, with
// --no-fault so that a crash ends the process instead of waiting for a debugger.
// `with_openmp_threads`: without the suite's OMP_NUM_THREADS=1, i.e. with OpenMP's own thread
// pool, as the demo's line ran when it crashed (the CPU case keeps one thread: CI runs test
// programs side by side). `environment`: more NAME=VALUE words for the process.
Launch gst_launch(const std::string& description, bool with_openmp_threads = false,
                  const std::string& environment = "", int limit_s = 240) {
  const char* tool = std::getenv("LA_GST_LAUNCH");
  Launch r;
  if (!tool) {
    r.output = "LA_GST_LAUNCH is not set (the build sets it)";
    return r;
  }
  return run_command(std::string("env ") + (with_openmp_threads ? "-u OMP_NUM_THREADS " : "") + environment +
                     " timeout -k 10 " + std::to_string(limit_s) + " " + tool + " --no-fault " + description);
}

std::string tail(const std::string& s, size_t chars = 3000) {
  return s.size() <= chars ? s : "..." + s.substr(s.size() - chars);
}

std::string picture() {
  static test::TempDir* dir = new test::TempDir;
  static const std::string path = test::write_test_png(dir->file("face.png"), 96, 96, "ball");
  return path;
}

std::string lora() {
  return (test::tiny_checkpoint_dir().parent_path() / "LiveAvatar" / "liveavatar.safetensors").string();
}

// 1.2 s of ticks: three blocks.
constexpr const char* kSource = "audiotestsrc num-buffers=12 samplesperbuffer=1600 wave=ticks";

std::string bin(const std::string& device) {
  return "liveavatarbin checkpoint-dir=" + test::tiny_checkpoint_dir().string() + " lora=" + lora() +
         " image=" + picture() + " size=64*64 " + device;
}

std::string features(const std::string& device) {
  return "audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! laaudiofeat model-dir=" +
         (test::tiny_checkpoint_dir() / "wav2vec2-large-xlsr-53-english").string() + " " + device;
}

std::string generator_and_decoder(const std::string& device) {
  const std::string dir = test::tiny_checkpoint_dir().string();
  return "liveavatargen checkpoint-dir=" + dir + " lora=" + lora() + " image=" + picture() + " size=64*64 " +
         device + " ! queue ! lavaedecode checkpoint-dir=" + dir + " " + device;
}

void expect_runs_to_eos(const std::string& description, bool with_openmp_threads = false,
                        const std::string& environment = "") {
  const Launch r = gst_launch(description, with_openmp_threads, environment);
  EXPECT_EQ(r.exit_code, 0) << "gst-launch-1.0 " << description << "\n" << tail(r.output);
  EXPECT_NE(r.output.find("Got EOS from element"), std::string::npos) << tail(r.output);
}

bool have_gpu() { return runtime::query_cuda_runtime().device_count > 0; }

// The word of `text` after the first `label`, or empty.
std::string word_after(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  if (at == std::string::npos) return {};
  const size_t begin = at + label.size();
  return text.substr(begin, text.find_first_of(" \t\r\n", begin) - begin);
}

// Whether `program` links libunwind (ldd lists every library it loads at start).
bool links_libunwind(const std::string& program) {
  return run_command("ldd " + program).output.find("libunwind.so") != std::string::npos;
}

// gst/cxx_unwinder.h: the way around a libunwind that comes before libgcc_s.
std::string preload_libgcc_s() { return "LD_PRELOAD=" + gst::libgcc_s_path(); }

}  // namespace

TEST(GstLaunch, LiveAvatarBinOnTheCpu) {
  expect_runs_to_eos(std::string(kSource) + " ! " + bin("") + " ! videoconvert ! fakesink");
}

// gst/cxx_unwinder.h: the plugin names at load the library that unwinds C++ exceptions in its
// process. In gst-launch-1.0 that is libunwind wherever libgstreamer links it (Debian 12), and
// preloading libgcc_s.so.1, the way around it that the GPU warning and docs/troubleshooting.md
// give, makes it libgcc_s.
TEST(GstLaunch, NamesItsCxxUnwinderAndPreloadingLibgccChangesIt) {
  const std::string libgcc = gst::libgcc_s_path();  // this test program has it loaded
  ASSERT_EQ(libgcc.front(), '/') << libgcc;
  // Any element loads the plugin; laaudiofeat without model-dir then fails at NULL->READY.
  const std::string line = "fakesrc num-buffers=1 ! laaudiofeat ! fakesink";
  const std::string said = "C++ exceptions in this process are unwound by ";
  const Launch plain = gst_launch(line, false, "GST_DEBUG=liveavatar:4");
  const std::string unwinder = word_after(plain.output, said);
  ASSERT_FALSE(unwinder.empty()) << tail(plain.output);
  const char* tool = std::getenv("LA_GST_LAUNCH");
  ASSERT_NE(tool, nullptr);
  if (links_libunwind(tool))
    EXPECT_NE(unwinder.find("libunwind"), std::string::npos) << unwinder;
  else
    EXPECT_NE(unwinder.find("libgcc_s"), std::string::npos) << unwinder;
  EXPECT_EQ(gst::cxx_unwinder_hazard(unwinder).has_value(), unwinder.find("libunwind") != std::string::npos);

  const Launch preloaded = gst_launch(line, false, "GST_DEBUG=liveavatar:4 " + preload_libgcc_s());
  EXPECT_EQ(word_after(preloaded.output, said), libgcc) << tail(preloaded.output);
}

TEST(GstLaunch, FeaturesOnTheGpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  expect_runs_to_eos(std::string(kSource) + " ! " + features("cuda-device-id=0") + " ! fakesink", true);
}

TEST(GstLaunch, GeneratorAndDecoderOnTheGpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  expect_runs_to_eos(std::string(kSource) + " ! " + features("") + " ! " +
                     generator_and_decoder("cuda-device-id=0") + " ! videoconvert ! fakesink",
                     true);
}

TEST(GstLaunch, LiveAvatarBinOnTheGpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  expect_runs_to_eos(std::string(kSource) + " ! " + bin("cuda-device-id=0") + " ! videoconvert ! fakesink", true);
}

// The decisive case for the crash above: the same line with libgcc_s as the process's unwinder.
// If only this one passes, the crash is gst/cxx_unwinder.h's.
TEST(GstLaunch, LiveAvatarBinOnTheGpuWithLibgccUnwinder) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  expect_runs_to_eos(std::string(kSource) + " ! " + bin("cuda-device-id=0") + " ! videoconvert ! fakesink", true,
                     preload_libgcc_s());
}
