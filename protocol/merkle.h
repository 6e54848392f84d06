#pragma once
// The Merkle tree of a signed batch: RFC 9162 (Certificate Transparency 2.0) section
// 2.1 with SHA-256. Leaf hash = SHA-256(0x00 || leaf bytes); interior node =
// SHA-256(0x01 || left || right); a tree of n leaves splits at the largest power of
// two below n, so no leaf is duplicated and no two batches share a root by padding.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/rejection.h"

namespace gridtrust::protocol {

using Hash256 = std::array<std::uint8_t, 32>;

Hash256 merkle_leaf_hash(std::string_view leaf);
Hash256 merkle_node_hash(const Hash256& left, const Hash256& right);

// Root of the tree over the given leaf hashes (RFC 9162 MTH); empty input is refused
// by the callers, a batch has at least one entry.
Hash256 merkle_root(const std::vector<Hash256>& leaves);

// Inclusion path (RFC 9162 2.1.3.1) of leaf `index`, from the leaf's sibling upwards.
std::vector<Hash256> merkle_path(const std::vector<Hash256>& leaves, std::size_t index);
// The tree level by level, the leaves first and the root alone last: pairs hashed left
// to right, an odd last node carried up unchanged (the same tree as RFC 9162's split).
// A node's inclusion path is its sibling on each level that has one.
std::vector<std::vector<Hash256>> merkle_levels(const std::vector<Hash256>& leaves);

// RFC 9162 2.1.3.2: the root a path leads to; codes: batch.bad_path (index out of
// range, path too short or too long for the tree size).
Result<Hash256> merkle_root_from_path(const Hash256& leaf, std::size_t index, std::size_t size,
                                      const std::vector<Hash256>& path);

}  // namespace gridtrust::protocol
