// Safetensors parsing: 8-byte little-endian header length, a JSON header of
// {name: {dtype, shape, data_offsets}}, then the data. Every offset is checked against the file
// size, so a truncated file is reported with the tensor it cuts into.
#include "engine/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ghostline::engine::model {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    default: return "other";
  }
}
int dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I64: return 8;
    default: return 1;
  }
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

class MappedFile {
 public:
  ~MappedFile() {
    if (data_ && size_) munmap(const_cast<uint8_t*>(data_), size_);
  }
  static Expected<std::unique_ptr<MappedFile>> open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return Error(ErrorCode::NotFound, path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st;
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      return Error(ErrorCode::Io, path + ": cannot stat");
    }
    auto f = std::make_unique<MappedFile>();
    f->size_ = static_cast<size_t>(st.st_size);
    if (f->size_ > 0) {
      void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return Error(ErrorCode::Io, path + ": mmap failed (" + std::strerror(errno) + ")");
      }
      f->data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    return f;
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

TensorStore::~TensorStore() = default;

Expected<void> TensorStore::add_file(const std::string& path) {
  auto mf = MappedFile::open(path);
  if (!mf) return mf.error();
  const uint8_t* base = (*mf)->data();
  const size_t size = (*mf)->size();
  if (size < 8) return Error(ErrorCode::InvalidArgument, path + ": truncated safetensors file (" + std::to_string(size) + " bytes, no header)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | base[i];
  if (hlen > size - 8) return Error(ErrorCode::InvalidArgument, path + ": truncated safetensors file (header of " + std::to_string(hlen) + " bytes does not fit)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(base + 8), reinterpret_cast<const char*>(base + 8 + hlen));
  } catch (const std::exception& e) {
    return Error(ErrorCode::InvalidArgument, path + ": malformed safetensors header (" + e.what() + ")");
  }
  if (!header.is_object()) return Error(ErrorCode::InvalidArgument, path + ": malformed safetensors header (not an object)");
  const uint8_t* data0 = base + 8 + hlen;
  const size_t data_size = size - 8 - hlen;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& v = it.value();
    TensorRef t;
    t.name = it.key();
    t.file = path;
    try {
      std::string dt = v.at("dtype").get<std::string>();
      t.dtype = dt == "F32" ? DType::F32 : dt == "F16" ? DType::F16 : dt == "BF16" ? DType::BF16
              : dt == "I32" ? DType::I32 : dt == "I64" ? DType::I64 : DType::Other;
      t.shape = v.at("shape").get<std::vector<int64_t>>();
      auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
      if (off.size() != 2 || off[1] < off[0])
        return Error(ErrorCode::InvalidArgument, path + ": tensor '" + t.name + "' has bad data_offsets");
      if (off[1] > data_size)
        return Error(ErrorCode::InvalidArgument, path + ": truncated file: tensor '" + t.name + "' needs bytes up to " +
                                                     std::to_string(off[1]) + " of the data section, which has " + std::to_string(data_size));
      t.data = data0 + off[0];
      t.nbytes = static_cast<int64_t>(off[1] - off[0]);
    } catch (const std::exception& e) {
      return Error(ErrorCode::InvalidArgument, path + ": tensor '" + t.name + "' has a malformed header entry (" + e.what() + ")");
    }
    for (auto d : t.shape)
      if (d < 0) return Error(ErrorCode::InvalidArgument, path + ": tensor '" + t.name + "' has a negative dimension");
    if (t.dtype != DType::Other && t.numel() * dtype_size(t.dtype) != t.nbytes)
      return Error(ErrorCode::InvalidArgument, path + ": tensor '" + t.name + "' of shape " + shape_string(t.shape) + " " +
                                                   dtype_name(t.dtype) + " has " + std::to_string(t.nbytes) + " bytes of data");
    tensors_[t.name] = std::move(t);
  }
  files_.push_back(std::move(*mf));
  return ok();
}

Expected<std::unique_ptr<TensorStore>> TensorStore::open_file(const std::string& path) {
  auto s = std::unique_ptr<TensorStore>(new TensorStore());
  if (auto r = s->add_file(path); !r) return r.error();
  return s;
}

Expected<std::unique_ptr<TensorStore>> TensorStore::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  auto s = std::unique_ptr<TensorStore>(new TensorStore());
  std::vector<std::string> files;
  const std::string index = dir + "/model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    std::ifstream in(index);
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ss.str());
    } catch (const std::exception& e) {
      return Error(ErrorCode::InvalidArgument, index + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      return Error(ErrorCode::InvalidArgument, index + ": missing 'weight_map'");
    std::set<std::string> names;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it)
      if (it.value().is_string()) names.insert(it.value().get<std::string>());
    for (const auto& n : names) {
      if (n.find('/') != std::string::npos || n.find("..") != std::string::npos)
        return Error(ErrorCode::InvalidArgument, index + ": shard name '" + n + "' is not a plain file name");
      files.push_back(dir + "/" + n);
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (e.path().extension() == ".safetensors" && name.rfind("reference", 0) != 0) files.push_back(e.path().string());
    }
    if (ec) return Error(ErrorCode::NotFound, dir + ": cannot list the model directory (" + ec.message() + ")");
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) return Error(ErrorCode::NotFound, dir + ": no *.safetensors weights found");
  for (const auto& f : files)
    if (auto r = s->add_file(f); !r) return r.error();
  return s;
}

const TensorRef* TensorStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace ghostline::engine::model
