// Measured GPU memory bandwidth (GB/s): read-only, and copy counting bytes read plus written.
#pragma once

#include <cstdint>

namespace ghostline::bench {

struct Bandwidth {
  double read_gbs = 0, copy_gbs = 0;
};
// Over buffers of `bytes` (the median of 6 timed passes after one warm-up); zeros if it fails.
Bandwidth measure_bandwidth(int64_t bytes);

}  // namespace ghostline::bench
