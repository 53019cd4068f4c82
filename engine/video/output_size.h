// The output size rule of the reference (causal_s2v_pipeline.py
// get_size_less_than_area): from the reference image's H x W and an area such
// as "720*400", the largest H' x W' of the image's aspect ratio whose sides are
// multiples of 64 and whose product fits the area. "720*400" gives 384x704 for
// a 16:9 image and 704x384 for 9:16.
#pragma once

#include <cstdint>
#include <string>

namespace la::video {

struct Size {
  int64_t height, width;
};

// "W*H" (or "WxH") -> W*H. Throws std::invalid_argument for anything else.
int64_t parse_area(const std::string& size);

// The reference's search: 100 scales from sqrt(area/(H*W)) down, each side
// rounded up to a multiple of 64, the first that fits; its fallback otherwise.
Size output_size_for_area(int64_t image_height, int64_t image_width, int64_t area);

}  // namespace la::video
