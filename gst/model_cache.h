// Process-wide cache of loaded models: each model (type, file, device, dtype
// and any variant such as a LoRA) is loaded once and shared by every element
// instance that asks for it while any of them holds it; the last holder's
// release frees it (the cache keeps only weak references).
//
//   auto vae = la::gst::shared_model<la::models::WanVae>(path, device, dtype, "", [&] {
//     return la::models::WanVae::load(path, device, dtype);
//   });
//
// Two threads asking for the same model at once load it once (the second
// waits); different models load in parallel. A loader that throws leaves no
// entry, so the next request tries again. Thread-safe.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>

namespace la::gst {

struct ModelKey {
  std::string type;     // C++ type of the model (shared_model fills it)
  std::string path;     // made absolute and canonical by the cache
  std::string device;   // "cpu", "cuda:0"
  std::string dtype;    // "Float", "BFloat16"
  std::string variant;  // anything else that changes the loaded weights (LoRA file, fp8)
  bool operator<(const ModelKey& o) const;
};

class ModelCache {
 public:
  using Loader = std::function<std::shared_ptr<const void>()>;
  static ModelCache& instance();

  // The cached model of `key`, or loader()'s result, cached. Exceptions from
  // the loader propagate.
  std::shared_ptr<const void> get_or_load(ModelKey key, const Loader& loader);
  // Models alive now (for tests and logs).
  size_t live_models();

 private:
  struct Entry;  // per key: a weak reference and the mutex that serialises its load
  ModelCache() = default;
  std::mutex lock_;  // guards entries_ (never held while loading)
  std::map<ModelKey, std::shared_ptr<Entry>> entries_;
};

template <class T, class Load>
std::shared_ptr<const T> shared_model(const std::string& path, c10::Device device, at::ScalarType dtype,
                                      const std::string& variant, Load&& load) {
  ModelKey key{typeid(T).name(), path, device.str(), c10::toString(dtype), variant};
  // The key's type name guarantees the stored pointer is a T.
  return std::static_pointer_cast<const T>(ModelCache::instance().get_or_load(
      std::move(key), [&]() -> std::shared_ptr<const void> { return std::shared_ptr<const T>(load()); }));
}

}  // namespace la::gst
