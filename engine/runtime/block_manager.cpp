// BlockManager: free list and reference counts over the KV pool's block indices.
#include "engine/runtime/block_manager.h"

#include <cassert>
#include <stdexcept>

namespace ghostline::engine::runtime {

BlockManager::BlockManager(int n_blocks) : refs_(n_blocks > 0 ? n_blocks : 0, 0) {
  free_.reserve(refs_.size());
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::optional<int> BlockManager::allocate() {
  if (free_.empty()) return std::nullopt;
  int b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  return b;
}

void BlockManager::retain(int block) {
  assert(refs_.at(block) > 0);
  ++refs_.at(block);
}

void BlockManager::release(int block) {
  int& r = refs_.at(block);
  if (r <= 0) throw std::logic_error("BlockManager::release of a free block");
  if (--r == 0) free_.push_back(block);
}

}  // namespace ghostline::engine::runtime
