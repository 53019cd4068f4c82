#include "engine/text/prompt_cleaning.h"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <utility>

#include "engine/text/utf8.h"

namespace la::text {
namespace {

// The named references decoded (name without '&' and ';', code point).
const std::pair<const char*, char32_t> kNamed[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0},
    {"copy", 0xA9}, {"reg", 0xAE}, {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014},
    {"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D},
    {"laquo", 0xAB}, {"raquo", 0xBB}, {"euro", 0x20AC}, {"pound", 0xA3}, {"yen", 0xA5}, {"cent", 0xA2},
    {"deg", 0xB0}, {"times", 0xD7}, {"divide", 0xF7}, {"middot", 0xB7}, {"bull", 0x2022}, {"para", 0xB6},
    {"sect", 0xA7}, {"plusmn", 0xB1}, {"frac12", 0xBD}, {"frac14", 0xBC}, {"frac34", 0xBE},
    {"iexcl", 0xA1}, {"iquest", 0xBF}, {"shy", 0xAD}, {"eacute", 0xE9}, {"egrave", 0xE8},
    {"aacute", 0xE1}, {"agrave", 0xE0}, {"uuml", 0xFC}, {"ouml", 0xF6}, {"auml", 0xE4}, {"szlig", 0xDF},
    {"ccedil", 0xE7}, {"ntilde", 0xF1}, {"Eacute", 0xC9}, {"Uuml", 0xDC}, {"Ouml", 0xD6}, {"Auml", 0xC4},
};

// Python's html._invalid_charrefs for 0x80..0x9F (Windows-1252); 0 = none.
const char32_t kCp1252[32] = {0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
                              0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                              0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178};

bool is_python_space(char32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// The `regex` module's \s (Unicode White_Space), which the reference's
// re.sub(r'\s+', ...) uses (`import regex as re`): Python's str.isspace()
// without U+001C..U+001F, which only strip() removes.
bool is_regex_space(char32_t c) { return is_python_space(c) && !(c >= 0x1C && c <= 0x1F); }

// Code points Python's html.unescape drops when written as numeric references.
bool dropped_code_point(uint64_t v) {
  return (v >= 0x1 && v <= 0x8) || v == 0xB || (v >= 0xE && v <= 0x1F) || v == 0x7F ||
         (v >= 0xFDD0 && v <= 0xFDEF) || (v & 0xFFFE) == 0xFFFE;
}

// A numeric reference's value as Python decodes it; 0 means "nothing".
char32_t numeric_value(uint64_t v) {
  if (v >= 0x80 && v <= 0x9F) return kCp1252[v - 0x80];
  if (v == 0 || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) return 0xFFFD;
  if (v == 0x0D) return '\r';
  if (dropped_code_point(v)) return 0;
  return static_cast<char32_t>(v);
}

std::u32string strip(const std::u32string& s) {
  size_t a = 0, b = s.size();
  while (a < b && is_python_space(s[a])) ++a;
  while (b > a && is_python_space(s[b - 1])) --b;
  return s.substr(a, b - a);
}

}  // namespace

std::string html_unescape(const std::string& utf8) {
  if (utf8.find('&') == std::string::npos) return utf8;
  std::string out;
  size_t i = 0;
  while (i < utf8.size()) {
    if (utf8[i] != '&') {
      out.push_back(utf8[i++]);
      continue;
    }
    // Numeric: &#123; &#x7b; (the ';' is optional, as in Python).
    if (i + 2 < utf8.size() && utf8[i + 1] == '#') {
      const bool hex = utf8[i + 2] == 'x' || utf8[i + 2] == 'X';
      size_t j = i + (hex ? 3 : 2);
      uint64_t v = 0;
      size_t digits = 0;
      while (j < utf8.size() && (hex ? std::isxdigit(static_cast<unsigned char>(utf8[j]))
                                     : std::isdigit(static_cast<unsigned char>(utf8[j])))) {
        const char c = utf8[j++];
        if (v <= 0x10FFFF)  // beyond that the value only needs to stay invalid
          v = v * (hex ? 16 : 10) + static_cast<uint64_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c | 0x20) - 'a' + 10);
        ++digits;
      }
      if (digits > 0) {
        if (j < utf8.size() && utf8[j] == ';') ++j;
        if (const char32_t cp = numeric_value(v)) utf8_append(out, cp);
        i = j;
        continue;
      }
    }
    bool matched = false;
    for (const auto& [name, cp] : kNamed) {
      const size_t n = std::strlen(name);
      if (utf8.compare(i + 1, n, name) == 0 && i + 1 + n < utf8.size() && utf8[i + 1 + n] == ';') {
        utf8_append(out, cp);
        i += n + 2;
        matched = true;
        break;
      }
    }
    if (!matched) out.push_back(utf8[i++]);
  }
  return out;
}

std::string collapse_whitespace(const std::string& utf8) {
  const std::u32string s = utf8_decode(utf8);
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (!is_regex_space(s[i])) {
      out.push_back(s[i]);
      continue;
    }
    out.push_back(' ');
    while (i + 1 < s.size() && is_regex_space(s[i + 1])) ++i;
  }
  return utf8_encode(strip(out));
}

std::string clean_prompt(const std::string& utf8) {
  const std::string once = html_unescape(html_unescape(utf8));
  return collapse_whitespace(utf8_encode(strip(utf8_decode(once))));
}

}  // namespace la::text
