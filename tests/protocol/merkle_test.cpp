#include <catch2/catch.hpp>

#include "protocol/merkle.h"

using namespace gridtrust::protocol;

namespace {

// RFC 9162 MTH, written the way the RFC states it, as the reference.
Hash256 reference_root(const std::vector<Hash256>& d, std::size_t lo, std::size_t hi) {
  std::size_t n = hi - lo;
  if (n == 1) return d[lo];
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return merkle_node_hash(reference_root(d, lo, lo + k), reference_root(d, lo + k, hi));
}

std::vector<Hash256> leaves(std::size_t n) {
  std::vector<Hash256> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(merkle_leaf_hash("leaf " + std::to_string(i)));
  return out;
}

}  // namespace

TEST_CASE("leaf and node hashes are domain separated") {
  Hash256 a = merkle_leaf_hash("x");
  CHECK(a != merkle_leaf_hash("y"));
  // A node over (a, a) is not the leaf hash of the concatenation.
  std::string both(reinterpret_cast<const char*>(a.data()), a.size());
  both += both;
  CHECK(merkle_node_hash(a, a) != merkle_leaf_hash(both));
}

TEST_CASE("the iterative root and paths equal RFC 9162's recursive definition, and every path leads to the root") {
  for (std::size_t n : {1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 13u, 16u, 17u, 100u, 1000u}) {
    auto d = leaves(n);
    Hash256 root = merkle_root(d);
    CHECK(root == reference_root(d, 0, n));
    auto levels = merkle_levels(d);
    CHECK(levels.back() == std::vector<Hash256>{root});
    for (std::size_t i = 0; i < n; ++i) {
      auto path = merkle_path(d, i);
      auto r = merkle_root_from_path(d[i], i, n, path);
      REQUIRE(r.ok());
      CHECK(*r == root);
      // The same path: the leaf's ancestors' siblings, level by level.
      std::vector<Hash256> by_levels;
      for (std::size_t l = 0, j = i; l + 1 < levels.size(); ++l, j /= 2)
        if ((j ^ 1) < levels[l].size()) by_levels.push_back(levels[l][j ^ 1]);
      CHECK(by_levels == path);
    }
  }
}

TEST_CASE("a wrong index, size, leaf or path does not reach the root") {
  auto d = leaves(7);
  Hash256 root = merkle_root(d);
  auto path = merkle_path(d, 3);
  auto other_index = merkle_root_from_path(d[3], 2, 7, path);
  CHECK((!other_index.ok() || *other_index != root));
  auto wrong_leaf = merkle_root_from_path(d[4], 3, 7, path);
  CHECK((!wrong_leaf.ok() || *wrong_leaf != root));
  CHECK_FALSE(merkle_root_from_path(d[3], 7, 7, path).ok());  // index outside
  auto short_path = path;
  short_path.pop_back();
  auto s = merkle_root_from_path(d[3], 3, 7, short_path);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == "batch.bad_path");
  auto long_path = path;
  long_path.push_back(root);
  CHECK_FALSE(merkle_root_from_path(d[3], 3, 7, long_path).ok());
}
