#include <gtest/gtest.h>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"

using la::io::CheckpointError;
using la::io::JsonConfig;

TEST(JsonConfig, TypedGettersAndDefaults) {
  const auto c = JsonConfig::parse(R"({"dim": 64, "eps": 1e-6, "qk": true, "name": "s2v",
      "layers": [0, 2], "flags": [true, false], "sub": {"x": 3}})", "config.json");
  EXPECT_EQ(c.get_int("dim"), 64);
  EXPECT_DOUBLE_EQ(c.get_double("eps"), 1e-6);
  EXPECT_DOUBLE_EQ(c.get_double("dim"), 64.0);
  EXPECT_TRUE(c.get_bool("qk"));
  EXPECT_EQ(c.get_string("name"), "s2v");
  EXPECT_EQ(c.get_int_list("layers"), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(c.get_bool_list("flags"), (std::vector<bool>{true, false}));
  EXPECT_EQ(c.get_int("missing", 7), 7);
  EXPECT_EQ(c.get_object("sub").get_int("x"), 3);
  EXPECT_EQ(c.keys().front(), "dim");
}

TEST(JsonConfig, ErrorsNameFileAndKey) {
  const auto c = JsonConfig::parse(R"({"dim": "64", "sub": {"x": 1.5}})", "config.json");
  try {
    c.get_int("dim");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_STREQ(e.what(), "file config.json: key 'dim' is not an integer (found \"64\")");
  }
  try {
    c.get_object("sub").get_int("x");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("key 'sub.x' is not an integer"), std::string::npos);
  }
  EXPECT_THROW(c.get_int("absent"), CheckpointError);
  EXPECT_THROW(c.get_int("dim", 3), CheckpointError) << "a present key of the wrong type is not defaulted";
  EXPECT_THROW(JsonConfig::parse("[1]", "x.json"), CheckpointError);
  EXPECT_THROW(JsonConfig::parse("{\"a\":", "x.json"), CheckpointError);
  EXPECT_THROW(JsonConfig::load("/nonexistent/config.json"), CheckpointError);
}
