// A figure the docs quote, recorded in the test's gtest XML report as
// <property name="figure:KEY" value="..."/> (meson writes BUILD/<test>.xml);
// scripts/check-doc-figures.py (meson test doc-figures) compares it with the
// number marked <!-- figure KEY test=<test> --> in README.md and docs/*.md.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace la::test {

// gtest 1.12's RecordProperty takes a string or an int: a double goes as text.
inline void record_doc_figure(const std::string& key, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  ::testing::Test::RecordProperty("figure:" + key, text);
}

}  // namespace la::test
