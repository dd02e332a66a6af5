// Safetensors weights, memory-mapped: one model.safetensors or shards listed by
// model.safetensors.index.json. Tensors are views into the mapping; nothing is copied.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/expected.h"

namespace ghostline::engine::model {

enum class DType { F32, F16, BF16, I32, I64, Other };
const char* dtype_name(DType t);
int dtype_size(DType t);

struct TensorRef {
  std::string name;
  DType dtype = DType::Other;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside a mapped file
  int64_t nbytes = 0;
  std::string file;               // for messages
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

std::string shape_string(const std::vector<int64_t>& shape);

class MappedFile;

// Every tensor of a model directory (or of one file), by name.
class TensorStore {
 public:
  // Opens DIR/model.safetensors.index.json + shards, else every DIR/*.safetensors that is not
  // a reference file. Fails with a message naming the file for a missing, truncated or
  // malformed file.
  static Expected<std::unique_ptr<TensorStore>> open_dir(const std::string& dir);
  static Expected<std::unique_ptr<TensorStore>> open_file(const std::string& path);
  ~TensorStore();

  const TensorRef* find(const std::string& name) const;
  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }

 private:
  Expected<void> add_file(const std::string& path);
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorRef> tensors_;
};

}  // namespace ghostline::engine::model
