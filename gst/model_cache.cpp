#include "gst/model_cache.h"

#include <filesystem>
#include <iterator>
#include <tuple>

namespace la::gst {

bool ModelKey::operator<(const ModelKey& o) const {
  return std::tie(type, path, device, dtype, variant) < std::tie(o.type, o.path, o.device, o.dtype, o.variant);
}

// One per key: its own mutex serialises loads of that model only.
struct ModelCache::Entry {
  std::mutex load_lock;
  std::weak_ptr<const void> model;
};

ModelCache& ModelCache::instance() {
  static ModelCache* cache = new ModelCache;  // never destroyed: elements may outlive static destructors
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
  if (auto model = entry->model.lock()) return model;
  std::shared_ptr<const void> model = loader();
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
