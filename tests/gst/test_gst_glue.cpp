// The plugin's shared glue on its own: tensor <-> GstBuffer without copies,
// the model cache, the media-type caps, device selection, each stage's CUDA
// stream and the events between stages, the frame pool's fallback.
#include <gtest/gtest.h>

#include "gst/block_latency.h"

#include <ATen/ATen.h>
#include <atomic>
#include <cstring>
#include <thread>

#include <ATen/cuda/Sleep.h>
#include <c10/cuda/CUDAStream.h>
#include <gst/cuda/gstcudautils.h>

#include "engine/runtime/cuda_runtime_info.h"
#include "gst/cuda_context.h"
#include "gst/cuda_frame_pool.h"
#include "gst/cxx_unwinder.h"
#include "gst/device.h"
#include "gst/stage_device.h"
#include "gst/media_types.h"
#include "gst/model_cache.h"
#include "gst/pad_queries.h"
#include "gst/tensor_memory.h"
#include "gst/video_frame_copy.h"
#include "tests/gst/gst_test_util.h"

using namespace la;
using la::test::expect_contains;

TEST(TensorMemory, BufferHoldsTheTensorWithoutACopy) {
  test::ensure_gst();
  at::Tensor t = at::arange(24, at::kFloat).reshape({2, 3, 4});
  const void* data = t.data_ptr();
  GstBuffer* b = gst::buffer_new_from_tensor(t);
  t = at::Tensor();  // the buffer's reference keeps the storage alive
  GstMapInfo map;
  ASSERT_TRUE(gst_buffer_map(b, &map, GST_MAP_READ));
  EXPECT_EQ(map.data, data);
  EXPECT_EQ(map.size, 96u);
  EXPECT_EQ(reinterpret_cast<const float*>(map.data)[23], 23.0f);
  gst_buffer_unmap(b, &map);

  // Back to a tensor: the same storage, alive after the buffer is gone. The same storage
  // object, with the allocator's own deleter: on CUDA, record_stream on the view must reach the
  // caching allocator, which ignores memory whose deleter is not its own (a from_blob view's).
  at::Tensor back = gst::buffer_to_tensor(b, {3, 8}, at::kFloat);
  EXPECT_EQ(back.data_ptr(), data);
  const at::Tensor* held = gst::tensor_memory_peek(gst_buffer_peek_memory(b, 0));
  ASSERT_NE(held, nullptr);
  EXPECT_TRUE(back.storage().is_alias_of(held->storage()));
  EXPECT_EQ(back.storage().data_ptr().get_deleter(), held->storage().data_ptr().get_deleter());
  gst_buffer_unref(b);
  EXPECT_EQ(back[2][7].item<float>(), 23.0f);
}

TEST(TensorMemory, SubBuffersShareAndDeepCopiesCopy) {
  test::ensure_gst();
  const at::Tensor t = at::arange(16, at::kFloat);
  GstBuffer* b = gst::buffer_new_from_tensor(t);
  GstBuffer* part = gst_buffer_copy_region(b, GST_BUFFER_COPY_MEMORY, 8 * 4, 4 * 4);
  ASSERT_TRUE(gst::is_tensor_memory(gst_buffer_peek_memory(part, 0)));
  const at::Tensor p = gst::buffer_to_tensor(part, {4}, at::kFloat);
  EXPECT_EQ(p.data_ptr(), static_cast<float*>(t.data_ptr()) + 8);
  EXPECT_TRUE(at::equal(p, at::arange(8, 12, at::kFloat)));

  GstBuffer* deep = gst_buffer_copy_deep(part);
  const at::Tensor d = gst::buffer_to_tensor(deep, {4}, at::kFloat);
  EXPECT_NE(d.data_ptr(), p.data_ptr());
  EXPECT_TRUE(at::equal(d, p));
  gst_buffer_unref(deep);
  gst_buffer_unref(part);
  gst_buffer_unref(b);
}

TEST(TensorMemory, NonContiguousTensorsAreMadeContiguous) {
  test::ensure_gst();
  const at::Tensor t = at::arange(6, at::kFloat).reshape({2, 3}).t();
  GstBuffer* b = gst::buffer_new_from_tensor(t);
  EXPECT_TRUE(at::equal(gst::buffer_to_tensor(b, {3, 2}, at::kFloat), t));
  gst_buffer_unref(b);
}

TEST(TensorMemory, SystemMemoryBufferIsViewedWhileTheTensorLives) {
  test::ensure_gst();
  const std::vector<float> v = {1, 2, 3, 4, 5, 6};
  GstBuffer* b = gst_buffer_new_memdup(v.data(), v.size() * 4);
  {
    const at::Tensor t = gst::buffer_to_tensor(b, {2, 3}, at::kFloat);
    EXPECT_EQ(GST_MINI_OBJECT_REFCOUNT_VALUE(b), 2) << "the tensor holds the buffer (and its mapping)";
    GstMapInfo map;
    ASSERT_TRUE(gst_buffer_map(b, &map, GST_MAP_READ));
    EXPECT_EQ(t.data_ptr(), map.data) << "zero-copy";
    gst_buffer_unmap(b, &map);
    EXPECT_EQ(t[1][2].item<float>(), 6.0f);
  }
  EXPECT_EQ(GST_MINI_OBJECT_REFCOUNT_VALUE(b), 1);
  gst_buffer_unref(b);
}

TEST(TensorMemory, MisalignedDataIsCopiedOnce) {
  test::ensure_gst();
  std::vector<uint8_t> bytes(4 * 4 + 1);
  const float values[4] = {1.5f, -2.0f, 3.25f, 4.0f};
  std::memcpy(bytes.data() + 1, values, sizeof values);
  GstBuffer* whole = gst_buffer_new_memdup(bytes.data(), bytes.size());
  GstBuffer* b = gst_buffer_copy_region(whole, GST_BUFFER_COPY_MEMORY, 1, 16);
  const at::Tensor t = gst::buffer_to_tensor(b, {4}, at::kFloat);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 4, 0u);
  EXPECT_TRUE(at::equal(t, at::tensor({1.5f, -2.0f, 3.25f, 4.0f})));
  EXPECT_EQ(GST_MINI_OBJECT_REFCOUNT_VALUE(b), 1) << "a copy does not hold the buffer";
  gst_buffer_unref(b);
  gst_buffer_unref(whole);
}

TEST(TensorMemory, SizeMismatchNamesBothSizes) {
  test::ensure_gst();
  GstBuffer* b = gst_buffer_new_allocate(nullptr, 100, nullptr);
  const auto e = test::error_of<std::invalid_argument>([&] { gst::buffer_to_tensor(b, {16, 3, 2, 2}, at::kBFloat16); });
  expect_contains(e, "buffer holds 100 bytes, the caps' block [16,3,2,2] BFloat16 needs 384");
  gst_buffer_unref(b);
}

TEST(TensorMemory, CannotBeAllocatedBySize) {
  test::ensure_gst();
  GstMemory* m = gst::tensor_memory_new(at::zeros({4}));
  EXPECT_TRUE(GST_OBJECT_FLAG_IS_SET(m->allocator, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC));
  gst_memory_unref(m);
}

namespace {

struct Model {
  int id;
};

}  // namespace

TEST(ModelCache, SharesWhileHeldAndReloadsAfterRelease) {
  std::atomic<int> loads{0};
  auto load = [&] {
    ++loads;
    return std::make_shared<const Model>(Model{loads.load()});
  };
  auto a = gst::shared_model<Model>("/models/x", c10::Device(c10::kCPU), at::kFloat, "", load);
  auto b = gst::shared_model<Model>("/models/./y/../x", c10::Device(c10::kCPU), at::kFloat, "", load);
  EXPECT_EQ(a.get(), b.get()) << "same canonical path, device, dtype";
  EXPECT_EQ(loads, 1);
  auto c = gst::shared_model<Model>("/models/x", c10::Device(c10::kCPU), at::kBFloat16, "", load);
  auto d = gst::shared_model<Model>("/models/x", c10::Device(c10::kCPU), at::kFloat, "lora=z", load);
  EXPECT_EQ(loads, 3) << "dtype and variant are part of the key";
  const size_t live = gst::ModelCache::instance().live_models();
  a.reset();
  b.reset();
  EXPECT_EQ(gst::ModelCache::instance().live_models(), live - 1);
  auto e = gst::shared_model<Model>("/models/x", c10::Device(c10::kCPU), at::kFloat, "", load);
  EXPECT_EQ(loads, 4) << "the last holder's release freed it";
}

TEST(ModelCache, ConcurrentRequestsLoadOnce) {
  std::atomic<int> loads{0};
  std::vector<std::shared_ptr<const Model>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      got[i] = gst::shared_model<Model>("/models/concurrent", c10::Device(c10::kCPU), at::kFloat, "", [&] {
        ++loads;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return std::make_shared<const Model>(Model{1});
      });
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(loads, 1);
  for (const auto& g : got) EXPECT_EQ(g.get(), got[0].get());
}

TEST(ModelCache, AFailedLoadIsRetried) {
  int calls = 0;
  auto failing = [&]() -> std::shared_ptr<const Model> {
    ++calls;
    throw std::runtime_error("file /models/broken: truncated");
  };
  EXPECT_THROW(gst::shared_model<Model>("/models/broken", c10::Device(c10::kCPU), at::kFloat, "", failing),
               std::runtime_error);
  auto ok = gst::shared_model<Model>("/models/broken", c10::Device(c10::kCPU), at::kFloat, "",
                                     [] { return std::make_shared<const Model>(Model{2}); });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ok->id, 2);
}

TEST(MediaTypes, CapsRoundTripAndFieldErrors) {
  test::ensure_gst();
  gst::LatentShape l{16, 3, 48, 88, at::kBFloat16};
  GstCaps* caps = gst::latent_caps(l);
  gst::LatentShape back;
  std::string why;
  ASSERT_TRUE(gst::parse_latent_caps(caps, &back, &why)) << why;
  EXPECT_TRUE(back == l);
  GstCaps* tmpl = gst_caps_from_string(LA_LATENT_CAPS_TEMPLATE);
  EXPECT_TRUE(gst_caps_is_subset(caps, tmpl)) << "our caps fit our own template";
  gst_caps_unref(tmpl);
  gst_caps_unref(caps);

  gst::FeaturesShape f{25, 1024, 12};
  caps = gst::features_caps(f);
  gst::FeaturesShape fb;
  ASSERT_TRUE(gst::parse_features_caps(caps, &fb, &why)) << why;
  EXPECT_TRUE(fb == f);
  tmpl = gst_caps_from_string(LA_FEATURES_CAPS_TEMPLATE);
  EXPECT_TRUE(gst_caps_is_subset(caps, tmpl));
  gst_caps_unref(tmpl);
  gst_caps_unref(caps);

  caps = gst_caps_from_string("application/x-liveavatar-features, layers=25, frames=12, dtype=float32");
  EXPECT_FALSE(gst::parse_features_caps(caps, &fb, &why));
  EXPECT_EQ(why, "field channels is missing or not an int");
  gst_caps_unref(caps);
  caps = gst_caps_from_string("application/x-liveavatar-latent, channels=16, frames=3, latent-height=0, "
                              "latent-width=4, dtype=float32");
  EXPECT_FALSE(gst::parse_latent_caps(caps, &back, &why));
  EXPECT_EQ(why, "field latent-height=0 is not positive");
  gst_caps_unref(caps);
  caps = gst_caps_from_string("video/x-raw");
  EXPECT_FALSE(gst::parse_latent_caps(caps, &back, &why));
  EXPECT_EQ(why, "media type is video/x-raw, expected application/x-liveavatar-latent");
  gst_caps_unref(caps);
}

TEST(MediaTypes, TensorMemoryIsOfferedFirstOnlyOnTheGpu) {
  test::ensure_gst();
  const gst::LatentShape l{16, 3, 4, 4, at::kFloat};
  for (bool gpu : {false, true}) {
    GstCaps* offer = gst::offer_with_tensor_memory(gst::latent_caps(l), gpu);
    ASSERT_EQ(gst_caps_get_size(offer), 2u);
    GstCaps* first = gst_caps_copy_nth(offer, 0);
    EXPECT_EQ(gst::has_tensor_memory_feature(first), gpu);
    GstCaps* tmpl = gst_caps_from_string(LA_LATENT_CAPS_TEMPLATE);
    EXPECT_TRUE(gst_caps_is_subset(offer, tmpl)) << "both variants fit the template";
    gst_caps_unref(tmpl);
    gst_caps_unref(first);

    // A peer that takes only the other variant gets it; a peer that takes none, nothing.
    GstPad* src = gst_pad_new("src", GST_PAD_SRC);
    GstPad* sink = gst_pad_new("sink", GST_PAD_SINK);
    GstCaps* only = gst_caps_copy_nth(offer, 1);
    gst_pad_use_fixed_caps(sink);
    gst_pad_set_query_function(sink, [](GstPad* pad, GstObject*, GstQuery* q) -> gboolean {
      if (GST_QUERY_TYPE(q) != GST_QUERY_CAPS) return FALSE;
      auto* caps = static_cast<GstCaps*>(g_object_get_data(G_OBJECT(pad), "only"));
      return gst::answer_caps_query(q, gst_caps_ref(caps));
    });
    g_object_set_data_full(G_OBJECT(sink), "only", gst_caps_ref(only), reinterpret_cast<GDestroyNotify>(gst_caps_unref));
    ASSERT_EQ(gst_pad_link(src, sink), GST_PAD_LINK_OK);
    GstCaps* picked = gst::pick_caps_with_peer(src, gst_caps_ref(offer));
    ASSERT_TRUE(picked);
    EXPECT_TRUE(gst_caps_is_equal(picked, only));
    EXPECT_EQ(gst::has_tensor_memory_feature(picked), !gpu);
    gst_caps_unref(picked);
    GstCaps* other = gst_caps_from_string("application/x-liveavatar-latent, channels=16, frames=3, latent-height=8, "
                                          "latent-width=8, dtype=float32");
    EXPECT_EQ(gst::pick_caps_with_peer(src, other), nullptr) << "another size is not taken";
    gst_caps_unref(only);
    gst_caps_unref(offer);
    gst_object_unref(src);
    gst_object_unref(sink);
  }
}

TEST(VideoFrameCopy, PackedFramesLandInPaddedPlanes) {
  test::ensure_gst();
  const int w = 24, h = 10;
  for (const char* name : {"RGBA", "RGB", "I420", "NV12"}) {
    const auto format = video::pixel_format_from_name(name);
    const at::Tensor packed = (at::arange(video::frame_bytes(format, w, h), at::kLong) % 251).to(at::kByte);
    // Rows padded and 64-byte aligned, as GstCudaMemory's pitched planes are.
    GstVideoInfo padded;
    gst_video_info_set_format(&padded, gst_video_format_from_string(name), w, h);
    GstVideoAlignment align;
    gst_video_alignment_reset(&align);
    align.padding_right = 8;
    align.padding_bottom = 2;
    for (unsigned& a : align.stride_align) a = 63;
    ASSERT_TRUE(gst_video_info_align(&padded, &align));
    ASSERT_GT(GST_VIDEO_INFO_PLANE_STRIDE(&padded, 0), w * (format == video::PixelFormat::kRGBA ? 4 : 1));
    GstBuffer* buffer = gst_buffer_new_and_alloc(GST_VIDEO_INFO_SIZE(&padded));
    gst_buffer_memset(buffer, 0, 0xEE, GST_VIDEO_INFO_SIZE(&padded));
    GstVideoFrame frame;
    ASSERT_TRUE(gst_video_frame_map(&frame, &padded, buffer, GST_MAP_READWRITE));
    gst::copy_packed_frame(packed, format, &frame);

    // Read back through GStreamer's own copy into a tightly packed frame.
    GstVideoInfo tight;
    gst_video_info_set_format(&tight, gst_video_format_from_string(name), w, h);
    ASSERT_EQ(GST_VIDEO_INFO_SIZE(&tight), static_cast<gsize>(packed.numel()));
    GstBuffer* out = gst_buffer_new_and_alloc(GST_VIDEO_INFO_SIZE(&tight));
    GstVideoFrame tight_frame;
    ASSERT_TRUE(gst_video_frame_map(&tight_frame, &tight, out, GST_MAP_WRITE));
    ASSERT_TRUE(gst_video_frame_copy(&tight_frame, &frame));
    gst_video_frame_unmap(&tight_frame);
    const std::string other = std::string(name) == "NV12" ? "I420" : "NV12";
    EXPECT_THROW(gst::copy_packed_frame(packed, video::pixel_format_from_name(other), &frame), std::invalid_argument);
    gst_video_frame_unmap(&frame);
    GstMapInfo map;
    ASSERT_TRUE(gst_buffer_map(out, &map, GST_MAP_READ));
    EXPECT_EQ(std::memcmp(map.data, packed.data_ptr(), map.size), 0) << name;
    gst_buffer_unmap(out, &map);
    gst_buffer_unref(out);
    gst_buffer_unref(buffer);
  }
}

TEST(Device, MinusOneIsTheCpuAndMissingGpusAreNamed) {
  EXPECT_TRUE(gst::resolve_device(-1).is_cpu());
  EXPECT_EQ(gst::model_dtype(c10::Device(c10::kCPU)), at::kFloat);
  EXPECT_EQ(gst::model_dtype(c10::Device(c10::kCUDA, 0)), at::kBFloat16);
  const int n = runtime::query_cuda_runtime().device_count;
  const auto e = test::error_of<std::runtime_error>([&] { gst::resolve_device(n); });
  expect_contains(e, "cuda-device-id=" + std::to_string(n) + " but");
  if (n > 0) {
    EXPECT_TRUE(gst::resolve_device(n - 1).is_cuda());
  }
}

namespace {

bool has_cuda() { return runtime::query_cuda_runtime().device_count > 0; }

// The text of the first ERROR on `element`'s bus (its own bus, no pipeline).
std::string first_error(GstBus* bus) {
  GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  if (!m) return "";
  GError* err = nullptr;
  gst_message_parse_error(m, &err, nullptr);
  std::string text = err ? err->message : "";
  if (err) g_error_free(err);
  gst_message_unref(m);
  return text;
}

}  // namespace

// The per-stage chores of the three elements (gst/stage_device.h): the CPU
// has no stream and the scope changes nothing; a missing device is an error
// posted by the element that names the property.
TEST(StageDevice, CpuHasNoStreamAndMissingDevicesArePosted) {
  test::ensure_gst();
  GstElement* element = gst_element_factory_make("identity", nullptr);
  ASSERT_TRUE(element);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(element, bus);
  gst::StageDevice stage;
  ASSERT_TRUE(stage.open(element, -1));
  EXPECT_TRUE(stage.device().is_cpu());
  EXPECT_FALSE(stage.stream().has_value());
  EXPECT_EQ(stage.dtype(), at::kFloat);
  { const gst::StageScope scope(stage); }  // nothing to enter on the CPU
  stage.loaded();
  EXPECT_EQ(first_error(bus), "");

  const int n = runtime::query_cuda_runtime().device_count;
  EXPECT_FALSE(stage.open(element, n));
  expect_contains(first_error(bus), "cuda-device-id=" + std::to_string(n) + " but");
  EXPECT_TRUE(stage.device().is_cpu()) << "a failed open leaves the CPU";
  EXPECT_FALSE(stage.stream().has_value());
  gst_element_set_bus(element, nullptr);
  gst_object_unref(bus);
  gst_object_unref(element);
}

// gst/cxx_unwinder.h. A C++ test program links libstdc++ and libgcc_s before libgstreamer (and
// its libunwind), so libgcc_s unwinds its exceptions and a GPU stage has nothing to warn about;
// any other unwinder gets the warning with the preload that replaces it.
TEST(CxxUnwinder, TestProgramsUseLibgccAndOtherUnwindersAreWarnedAbout) {
  const std::string unwinder = gst::cxx_unwinder_library();
  EXPECT_NE(unwinder.find("/libgcc_s.so.1"), std::string::npos) << unwinder;
  EXPECT_FALSE(gst::cxx_unwinder_hazard(unwinder).has_value());
  EXPECT_FALSE(gst::cxx_unwinder_hazard("").has_value());
  EXPECT_EQ(gst::libgcc_s_path(), unwinder);

  const std::optional<std::string> hazard = gst::cxx_unwinder_hazard("/usr/lib/x86_64-linux-gnu/libunwind.so.8");
  ASSERT_TRUE(hazard.has_value());
  expect_contains(*hazard, "unwound by /usr/lib/x86_64-linux-gnu/libunwind.so.8");
  expect_contains(*hazard, "pthread_once");
  expect_contains(*hazard, "LD_PRELOAD=" + unwinder);
  // A program with libgcc's unwinder linked in (static libgcc_eh, exported) has the same one.
  EXPECT_FALSE(gst::cxx_unwinder_hazard("/proc/self/exe").has_value());
}

// On a GPU each stage runs on its own non-default stream from LibTorch's
// pool, current only inside its scope (and only on that thread).
TEST(StageDevice, EachStageHasItsOwnStreamOnTheGpu) {
  if (!has_cuda()) GTEST_SKIP() << "no CUDA device";
  test::ensure_gst();
  GstElement* element = gst_element_factory_make("identity", nullptr);
  gst::StageDevice a, b, c;
  ASSERT_TRUE(a.open(element, 0));
  ASSERT_TRUE(b.open(element, 0));
  ASSERT_TRUE(c.open(element, 0));
  ASSERT_TRUE(a.stream() && b.stream() && c.stream());
  EXPECT_EQ(a.dtype(), at::kBFloat16);
  const c10::Stream before = c10::cuda::getCurrentCUDAStream(0);
  EXPECT_NE(*a.stream(), before);
  EXPECT_NE(*a.stream(), *b.stream());
  EXPECT_NE(*b.stream(), *c.stream());
  EXPECT_NE(*a.stream(), *c.stream());
  {
    const gst::StageScope scope(a);
    EXPECT_EQ(c10::Stream(c10::cuda::getCurrentCUDAStream(0)), *a.stream());
    std::thread([&] { EXPECT_EQ(c10::Stream(c10::cuda::getCurrentCUDAStream(0)), before) << "per thread"; }).join();
  }
  EXPECT_EQ(c10::Stream(c10::cuda::getCurrentCUDAStream(0)), before);
  gst_object_unref(element);
}

// Tensor memories of CPU tensors carry no event (nothing to wait for).
TEST(TensorMemory, CpuTensorsCarryNoEvent) {
  GstBuffer* buffer = gst::buffer_new_from_tensor(at::ones({4, 4}));
  EXPECT_EQ(gst::tensor_memory_ready_event(gst_buffer_peek_memory(buffer, 0)), nullptr);
  GstBuffer* sub = gst_buffer_copy_region(buffer, GST_BUFFER_COPY_MEMORY, 16, 32);
  EXPECT_EQ(gst::tensor_memory_ready_event(gst_buffer_peek_memory(sub, 0)), nullptr);
  gst_buffer_unref(sub);
  gst_buffer_unref(buffer);
}

// The hand-over between stages on a GPU: the producer's stream is busy
// (a sleep kernel, then the write) when the buffer is made; the consumer's
// stream, through buffer_to_tensor alone, must see the written values. Without
// the event the consumer's clone runs during the sleep and reads zeros.
TEST(TensorMemory, ConsumerStreamWaitsForTheProducersEvent) {
  if (!has_cuda()) GTEST_SKIP() << "no CUDA device";
  test::ensure_gst();
  GstElement* element = gst_element_factory_make("identity", nullptr);
  gst::StageDevice producer, consumer;
  ASSERT_TRUE(producer.open(element, 0));
  ASSERT_TRUE(consumer.open(element, 0));
  for (int round = 0; round < 3; ++round) {
    GstBuffer* buffer = nullptr;
    {
      const gst::StageScope on(producer);
      at::Tensor t = at::zeros({1 << 20}, at::TensorOptions().device(at::kCUDA, 0));
      at::cuda::sleep(1LL << 30);  // ~0.5 s at 2 GHz
      t.fill_(1.0f + static_cast<float>(round));
      buffer = gst::buffer_new_from_tensor(t);
      ASSERT_NE(gst::tensor_memory_ready_event(gst_buffer_peek_memory(buffer, 0)), nullptr);
      EXPECT_FALSE(gst::tensor_memory_ready_event(gst_buffer_peek_memory(buffer, 0))->query())
          << "the producer's stream is still sleeping";
    }
    at::Tensor seen;
    {
      const gst::StageScope on(consumer);
      const at::Tensor view = gst::buffer_to_tensor(buffer, {1 << 20}, at::kFloat);
      seen = view.clone();  // on the consumer's stream
      c10::cuda::getCurrentCUDAStream(0).synchronize();  // the consumer's stream only
    }
    gst_buffer_unref(buffer);
    EXPECT_EQ(seen.min().item<float>(), 1.0f + static_cast<float>(round)) << "round " << round;
    EXPECT_EQ(seen.max().item<float>(), 1.0f + static_cast<float>(round)) << "round " << round;
  }
  gst_object_unref(element);
}

namespace {

GstCaps* rgba_caps() {
  return gst_caps_from_string("video/x-raw,format=RGBA,width=16,height=16,framerate=25/1");
}

}  // namespace

// lavaedecode's renegotiation onto downstream's pool while its buffers are
// still downstream: gst_buffer_pool_set_config refuses (outstanding buffers),
// and the frames come from our own pool instead of failing.
TEST(CudaFramePool, FallsBackToOwnPoolWhenDownstreamsRefuses) {
  test::ensure_gst();
  GstCaps* caps = rgba_caps();
  const guint size = 16 * 16 * 4;
  GstBufferPool* downstream = gst_buffer_pool_new();
  ASSERT_TRUE(gst::configure_and_activate(downstream, caps, size, 2, 0));
  GstBuffer* out_there = nullptr;
  ASSERT_EQ(gst_buffer_pool_acquire_buffer(downstream, &out_there, nullptr), GST_FLOW_OK);
  // The old frame pool lets go (deactivates); one of its buffers is still downstream.
  ASSERT_TRUE(gst_buffer_pool_set_active(downstream, FALSE));
  EXPECT_FALSE(gst::configure_and_activate(downstream, caps, size, 24, 0)) << "set_config with a buffer out";

  int made = 0;
  GstBufferPool* own_made = nullptr;
  auto make_own = [&] {
    ++made;
    own_made = gst_buffer_pool_new();
    return own_made;
  };
  bool used_downstream = true;
  GstBufferPool* pool = gst::activate_pool_or_own(GST_BUFFER_POOL(gst_object_ref(downstream)), make_own, caps, size,
                                                  24, 0, &used_downstream);
  ASSERT_NE(pool, nullptr);
  EXPECT_FALSE(used_downstream);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(pool, own_made);
  EXPECT_TRUE(gst_buffer_pool_is_active(pool));
  GstBuffer* b = nullptr;
  EXPECT_EQ(gst_buffer_pool_acquire_buffer(pool, &b, nullptr), GST_FLOW_OK);
  gst_buffer_unref(b);
  gst_buffer_pool_set_active(pool, FALSE);
  gst_object_unref(pool);

  // Once the buffer came back, downstream's pool is taken again.
  gst_buffer_unref(out_there);
  made = 0;
  pool = gst::activate_pool_or_own(GST_BUFFER_POOL(gst_object_ref(downstream)), make_own, caps, size, 24, 0,
                                   &used_downstream);
  EXPECT_EQ(pool, downstream);
  EXPECT_TRUE(used_downstream);
  EXPECT_EQ(made, 0);
  gst_buffer_pool_set_active(pool, FALSE);
  gst_object_unref(pool);

  // Neither works: null, nothing leaked.
  GstBufferPool* active = gst_buffer_pool_new();
  ASSERT_TRUE(gst::configure_and_activate(active, caps, size, 2, 0));
  pool = gst::activate_pool_or_own(nullptr, [&] { return GST_BUFFER_POOL(gst_object_ref(active)); }, caps, size, 24,
                                   0, &used_downstream);
  EXPECT_EQ(pool, nullptr) << "an active pool cannot be configured";
  gst_buffer_pool_set_active(active, FALSE);
  gst_object_unref(active);
  gst_object_unref(downstream);
  gst_caps_unref(caps);
}

// gst.cuda.context queries are answered for a configured device only: never
// for -1 or another context type; on a GPU with the wrapped primary context
// (the one lavaedecode's frames live in), made on demand.
TEST(CudaContext, ContextQueriesAnsweredOnDemandForTheConfiguredDevice) {
  test::ensure_gst();
  GstElement* element = gst_element_factory_make("identity", nullptr);
  GstQuery* q = gst_query_new_context(GST_CUDA_CONTEXT_TYPE);
  EXPECT_FALSE(gst::answer_cuda_context_query(element, q, -1));
  const int n = runtime::query_cuda_runtime().device_count;
  EXPECT_FALSE(gst::answer_cuda_context_query(element, q, n)) << "a device the runtime does not report";
  if (n > 0) {
    // On a device that exists, so that only the context type can be the reason.
    GstQuery* other = gst_query_new_context("gst.gl.GLDisplay");
    EXPECT_FALSE(gst::answer_cuda_context_query(element, other, 0));
    gst_query_unref(other);
    ASSERT_TRUE(gst::answer_cuda_context_query(element, q, 0));
    GstContext* context = nullptr;
    gst_query_parse_context(q, &context);
    ASSERT_TRUE(context);
    GstCudaContext* answered = nullptr;
    ASSERT_TRUE(gst_structure_get(gst_context_get_structure(context), GST_CUDA_CONTEXT_TYPE, GST_TYPE_CUDA_CONTEXT,
                                  &answered, nullptr));
    GstCudaContext* ours = gst::primary_cuda_context(0);
    EXPECT_EQ(answered, ours) << "the process's one wrapper of the primary context";
    gst_object_unref(ours);
    gst_object_unref(answered);
  }
  gst_query_unref(q);
  gst_object_unref(element);
}

// The latency policy of gst/block_latency.h: nothing before a measurement,
// the first (warm-up) block ignored, then the largest time rounded up to
// 10 ms, growing only (a shrinking latency makes a syncing sink's frames late).
TEST(BlockLatency, NothingBeforeMeasuredThenGrowsOnlyPastTheWarmUp) {
  la::gst::BlockLatency lat(50 * GST_MSECOND);
  constexpr GstClockTime kBlock = 480 * GST_MSECOND;
  EXPECT_EQ(lat.latency(), 50 * GST_MSECOND);
  EXPECT_FALSE(lat.record(2.0, kBlock)) << "the warm-up block is not a measurement";
  EXPECT_EQ(lat.latency(), 50 * GST_MSECOND);
  EXPECT_TRUE(lat.record(0.101, kBlock)) << "the first measurement grows it";
  EXPECT_EQ(lat.latency(), 50 * GST_MSECOND + 110 * GST_MSECOND) << "rounded up to 10 ms";
  EXPECT_FALSE(lat.record(0.05, kBlock)) << "a faster block does not shrink it";
  EXPECT_EQ(lat.latency(), 160 * GST_MSECOND);
  EXPECT_FALSE(lat.record(0.105, kBlock)) << "within the same 10 ms";
  EXPECT_TRUE(lat.record(0.2, kBlock));
  EXPECT_EQ(lat.latency(), 250 * GST_MSECOND);
  lat.restart();  // a new stream: measurements forgotten, the latency kept
  EXPECT_EQ(lat.latency(), 250 * GST_MSECOND);
  EXPECT_FALSE(lat.record(5.0, kBlock)) << "the new stream's warm-up";
}
