// Minimal UTF-8 decoding/encoding for prompt cleaning. Invalid bytes decode
// to U+FFFD, as Python's 'replace' error handler does.
#pragma once

#include <string>
#include <vector>

namespace la::text {

std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);
void utf8_append(std::string& out, char32_t cp);

}  // namespace la::text
