#include "gst/cxx_unwinder.h"

#include <dlfcn.h>

#include <filesystem>

namespace la::gst {

namespace {

// The file that defines `address`, or empty.
std::string file_of(void* address) {
  Dl_info info{};
  if (!address || !dladdr(address, &info) || !info.dli_fname) return {};
  return info.dli_fname;
}

}  // namespace

std::string cxx_unwinder_library() {
  // RTLD_DEFAULT searches the caller's lookup scope: the global scope, then the
  // libraries this plugin was loaded with (glibc, dlsym.c) — the scope
  // libstdc++ resolved its own reference in.
  return file_of(dlsym(RTLD_DEFAULT, "_Unwind_RaiseException"));
}

std::string libgcc_s_path() {
  void* handle = dlopen("libgcc_s.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return "libgcc_s.so.1";
  std::string path = file_of(dlsym(handle, "_Unwind_Resume"));
  dlclose(handle);  // only the reference RTLD_NOLOAD took
  return path.empty() ? "libgcc_s.so.1" : path;
}

std::optional<std::string> cxx_unwinder_hazard(const std::string& library) {
  if (library.empty()) return std::nullopt;
  const std::string name = std::filesystem::path(library).filename().string();
  if (name.rfind("libgcc_s.", 0) == 0) return std::nullopt;
  // A program linked with libgcc's unwinder itself (static libgcc_eh, exported): the same
  // implementation as libgcc_s, which glibc's cleanups use.
  std::error_code ec;
  if (std::filesystem::equivalent(library, "/proc/self/exe", ec)) return std::nullopt;
  return "C++ exceptions in this process are unwound by " + library +
         " (found before libgcc_s.so.1: in C programs such as gst-launch-1.0, GStreamer's libunwind), and an "
         "exception that crosses glibc's pthread_once (std::call_once, used in LibTorch's CUDA code, cuDNN and "
         "cuBLAS) aborts the process under it. If this process crashes on the GPU, start it with LD_PRELOAD=" +
         libgcc_s_path() + " (docs/troubleshooting.md)";
}

}  // namespace la::gst
