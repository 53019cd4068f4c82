// The reference's prompt cleaning before umT5 tokenisation
// (wan_2_2/modules/tokenizers.py, clean='whitespace'):
//   html.unescape twice, strip, collapse every run of Unicode whitespace to
//   one space, strip.
// Not reproduced: ftfy.fix_text, which also changes valid UTF-8 prompts (it
// straightens curly quotes, composes to NFC, unescapes HTML once more when
// there is no '<', repairs mojibake; docs/text-and-audio.md). Named
// character references are decoded for the entities listed in
// prompt_cleaning.cpp (the common ones) when written with their ';'; other
// names, and the legacy forms without ';' ("&amp"), are left as written, where
// Python knows all 2231 HTML5 names.
#pragma once

#include <string>

namespace la::text {

// Python's html.unescape: numeric references (with its replacements for
// invalid code points and the Windows-1252 range) and named ones.
std::string html_unescape(const std::string& utf8);

// regex.sub(r'\s+', ' ', s).strip() as the reference writes it (`import regex
// as re`): runs of Unicode White_Space become one space, and strip() also
// removes U+001C..U+001F at the ends, which \s does not match.
std::string collapse_whitespace(const std::string& utf8);

std::string clean_prompt(const std::string& utf8);

}  // namespace la::text
