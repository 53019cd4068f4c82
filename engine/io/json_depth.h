// nlohmann::json parses recursively: a header of a million '[' would blow the
// stack. Untrusted JSON is first checked with this flat scan.
#pragma once

#include <cstddef>
#include <string_view>

namespace la::io {

// True if no array/object nests deeper than `max_depth` (brackets inside
// strings are ignored). Malformed text is left to the real parser.
bool json_depth_within(std::string_view text, size_t max_depth);

}  // namespace la::io
