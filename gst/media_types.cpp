#include "gst/media_types.h"

#include <stdexcept>

namespace la::gst {
namespace {

// Fixed caps with the expected media type, one structure.
const GstStructure* single_structure(const GstCaps* caps, const char* media_type, std::string* why) {
  if (!caps || gst_caps_get_size(caps) != 1 || !gst_caps_is_fixed(caps)) {
    *why = "caps are not fixed";
    return nullptr;
  }
  const GstStructure* s = gst_caps_get_structure(caps, 0);
  if (!gst_structure_has_name(s, media_type)) {
    *why = std::string("media type is ") + gst_structure_get_name(s) + ", expected " + media_type;
    return nullptr;
  }
  return s;
}

bool positive_int(const GstStructure* s, const char* field, int* out, std::string* why) {
  if (!gst_structure_get_int(s, field, out)) {
    *why = std::string("field ") + field + " is missing or not an int";
    return false;
  }
  if (*out <= 0) {
    *why = std::string("field ") + field + "=" + std::to_string(*out) + " is not positive";
    return false;
  }
  return true;
}

}  // namespace

const char* caps_dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    default: throw std::invalid_argument(std::string("no caps name for dtype ") + c10::toString(dtype));
  }
}

GstCaps* features_caps(const FeaturesShape& shape) {
  return gst_caps_new_simple(kFeaturesMediaType, "layers", G_TYPE_INT, shape.layers, "channels", G_TYPE_INT,
                             shape.channels, "frames", G_TYPE_INT, shape.frames, "dtype", G_TYPE_STRING, "float32",
                             nullptr);
}

GstCaps* latent_caps(const LatentShape& shape) {
  return gst_caps_new_simple(kLatentMediaType, "channels", G_TYPE_INT, shape.channels, "frames", G_TYPE_INT,
                             shape.frames, "latent-height", G_TYPE_INT, shape.height, "latent-width", G_TYPE_INT,
                             shape.width, "dtype", G_TYPE_STRING, caps_dtype_name(shape.dtype), nullptr);
}

GstCaps* offer_with_tensor_memory(GstCaps* plain, bool prefer_tensor_memory) {
  GstCaps* tensor = gst_caps_copy(plain);
  gst_caps_set_features(tensor, 0, gst_caps_features_new(kTensorMemoryFeature, nullptr));
  GstCaps* first = prefer_tensor_memory ? tensor : plain;
  GstCaps* second = prefer_tensor_memory ? plain : tensor;
  return gst_caps_merge(first, second);  // keeps the order; takes both
}

bool has_tensor_memory_feature(const GstCaps* caps) {
  if (!caps || gst_caps_get_size(caps) == 0) return false;
  GstCapsFeatures* f = gst_caps_get_features(caps, 0);
  return f && gst_caps_features_contains(f, kTensorMemoryFeature);
}

bool parse_features_caps(const GstCaps* caps, FeaturesShape* shape, std::string* why) {
  const GstStructure* s = single_structure(caps, kFeaturesMediaType, why);
  if (!s) return false;
  if (!positive_int(s, "layers", &shape->layers, why) || !positive_int(s, "channels", &shape->channels, why) ||
      !positive_int(s, "frames", &shape->frames, why))
    return false;
  const char* dtype = gst_structure_get_string(s, "dtype");
  if (!dtype || std::string(dtype) != "float32") {
    *why = std::string("field dtype is ") + (dtype ? dtype : "missing") + ", expected float32";
    return false;
  }
  return true;
}

bool parse_latent_caps(const GstCaps* caps, LatentShape* shape, std::string* why) {
  const GstStructure* s = single_structure(caps, kLatentMediaType, why);
  if (!s) return false;
  if (!positive_int(s, "channels", &shape->channels, why) || !positive_int(s, "frames", &shape->frames, why) ||
      !positive_int(s, "latent-height", &shape->height, why) || !positive_int(s, "latent-width", &shape->width, why))
    return false;
  const char* dtype = gst_structure_get_string(s, "dtype");
  const std::string d = dtype ? dtype : "";
  if (d == "float32") {
    shape->dtype = at::kFloat;
  } else if (d == "bfloat16") {
    shape->dtype = at::kBFloat16;
  } else {
    *why = "field dtype is " + (dtype ? d : std::string("missing")) + ", expected float32 or bfloat16";
    return false;
  }
  return true;
}

}  // namespace la::gst
