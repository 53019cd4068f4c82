// A device given on a tool's command line, as LibTorch spells it.
#pragma once

#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include <string>

#include "tools/common/args.h"

namespace la::tools {

// "cpu", "cuda" or "cuda:N" -> the device; anything else (LibTorch's parser would throw
// c10::Error with a stack trace, and accepts "cpu:5") is a UsageError naming `flag`.
inline c10::Device device_arg(const std::string& flag, const std::string& text) {
  try {
    const c10::Device d(text);
    if (d.is_cpu() && d.has_index()) throw UsageError(flag + " must be cpu or cuda:N, got '" + text + "'");
    if (d.is_cpu() || d.is_cuda()) return d;
  } catch (const c10::Error&) {
  }
  throw UsageError(flag + " must be cpu or cuda:N, got '" + text + "'");
}

}  // namespace la::tools
