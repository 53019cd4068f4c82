#include "gst/model_cache.h"

#include <cxxabi.h>
#include <gst/gst.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <tuple>

GST_DEBUG_CATEGORY_STATIC(la_model_cache_debug);
#define GST_CAT_DEFAULT la_model_cache_debug

namespace la::gst {
namespace {

// "la::models::WanVae" for typeid's mangled name.
std::string readable_type(const std::string& mangled) {
  int status = 0;
  char* name = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : mangled;
  std::free(name);
  return out;
}

}  // namespace

bool ModelKey::operator<(const ModelKey& o) const {
  return std::tie(type, path, device, dtype, variant) < std::tie(o.type, o.path, o.device, o.dtype, o.variant);
}

// One per key: its own mutex serialises loads of that model only.
struct ModelCache::Entry {
  std::mutex load_lock;
  std::weak_ptr<const void> model;
};

ModelCache& ModelCache::instance() {
  static ModelCache* cache = [] {
    GST_DEBUG_CATEGORY_INIT(la_model_cache_debug, "lamodelcache", 0,
                            "LiveAvatar model cache: each load, and each model shared");
    return new ModelCache;  // never destroyed: elements may outlive static destructors
  }();
  return *cache;
}

std::shared_ptr<const void> ModelCache::get_or_load(ModelKey key, const Loader& loader) {
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(key.path, ec), ec);
  if (!ec) key.path = canonical.string();

  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> g(lock_);
    // Drop the entries of freed models nobody is loading, so the map does not
    // grow with every path ever asked for.
    for (auto it = entries_.begin(); it != entries_.end();)
      it = it->second->model.expired() && it->second.use_count() == 1 ? entries_.erase(it) : std::next(it);
    auto& slot = entries_[key];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  std::lock_guard<std::mutex> g(entry->load_lock);
  // Only spelled out when the log shows it.
  const std::string what = gst_debug_category_get_threshold(la_model_cache_debug) >= GST_LEVEL_INFO
                               ? readable_type(key.type) + " " + key.path + " on " + key.device + " (" + key.dtype +
                                     (key.variant.empty() ? "" : ", " + key.variant) + ")"
                               : std::string();
  if (auto model = entry->model.lock()) {
    GST_INFO("sharing the loaded %s", what.c_str());
    return model;
  }
  GST_INFO("loading %s", what.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<const void> model = loader();
  GST_INFO("loaded %s in %.2f s", what.c_str(),
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  entry->model = model;
  return model;
}

size_t ModelCache::live_models() {
  std::lock_guard<std::mutex> g(lock_);
  size_t n = 0;
  for (const auto& [key, entry] : entries_) n += entry->model.expired() ? 0 : 1;
  return n;
}

}  // namespace la::gst
