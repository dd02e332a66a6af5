// BlockManager: the one pool of KV blocks, with a free list and a reference count per block.
//
// A block is referenced by every holder that reads it: each sequence whose block table lists
// it, and the prefix cache while a tree node owns it. A block returns to the free list when its
// last reference is released. The model owns the storage; this class only hands out indices.
// Thread-safety: none (the engine thread owns it).
#pragma once

#include <optional>
#include <vector>

namespace ghostline::engine::runtime {

class BlockManager {
 public:
  explicit BlockManager(int n_blocks);

  int n_blocks() const { return static_cast<int>(refs_.size()); }
  int n_free() const { return static_cast<int>(free_.size()); }

  // A free block with one reference, or nullopt when the pool is exhausted.
  std::optional<int> allocate();
  void retain(int block);
  // Drops one reference; at zero the block is free again.
  void release(int block);
  int refs(int block) const { return refs_.at(block); }

 private:
  std::vector<int> refs_;
  std::vector<int> free_;  // a stack: the most recently freed block is reused first
};

}  // namespace ghostline::engine::runtime
