// Which library unwinds C++ exceptions in the process the plugin runs in, and
// the warning a GPU stage gives when that is not libgcc_s.
//
// Debian's libgstreamer-1.0 links libunwind.so.8 (for GST_DEBUG backtraces),
// which also defines the _Unwind_* functions of the C++ ABI. In a C program
// such as gst-launch-1.0, libgstreamer comes before libstdc++ and libgcc_s
// (which arrive with this plugin, loaded later with dlopen), so libstdc++'s
// __cxa_throw binds _Unwind_RaiseException to libunwind. glibc's own
// cleanups (pthread_once, i.e. std::call_once) resume unwinding with
// libgcc_s's _Unwind_Resume, which cannot continue an exception libunwind
// raised: the process aborts. Checked on the CPU: an exception that leaves
// std::call_once is caught with libgcc_s and aborts with libunwind preloaded
// (docs/troubleshooting.md, "A crash in gst-launch-1.0 on the GPU"). The CPU
// path of our elements throws no exception through such a frame (CI runs it
// in gst-launch-1.0); LibTorch's CUDA code, cuDNN and cuBLAS use
// std::call_once and exceptions, and a GPU run of the demo's line crashed in
// gst-launch-1.0 while the same work passed in the test programs, where
// libgcc_s comes first. Preloading libgcc_s.so.1 makes it the unwinder.
#pragma once

#include <optional>
#include <string>

namespace la::gst {

// The file that defines the _Unwind_RaiseException a lookup from this plugin
// binds to (the global scope first, then the plugin's own libraries: the
// order in which libstdc++'s __cxa_throw found it). Empty if none was found.
std::string cxx_unwinder_library();

// The path of libgcc_s.so.1 in this process (loaded with libstdc++), or the
// bare soname if it cannot be found.
std::string libgcc_s_path();

// The warning for a process whose unwinder is `library`: what it is, why it
// matters and the command-line prefix that avoids it. std::nullopt when
// `library` is libgcc_s (or empty: nothing to say).
std::optional<std::string> cxx_unwinder_hazard(const std::string& library);

}  // namespace la::gst
