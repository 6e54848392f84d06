#include "protocol/merkle.h"

#include <openssl/sha.h>

namespace gridtrust::protocol {

// The low-level SHA-256 calls: batches hash two small inputs per entry, and EVP's
// per-call algorithm lookup costs more than the hash itself at that size.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

Hash256 merkle_leaf_hash(std::string_view leaf) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  const unsigned char prefix = 0x00;
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, leaf.data(), leaf.size());
  Hash256 out;
  SHA256_Final(out.data(), &ctx);
  return out;
}

Hash256 merkle_node_hash(const Hash256& left, const Hash256& right) {
  // Not the one-shot SHA256(): OpenSSL 3.0 routes it through EVP_Q_digest, which
  // fetches the algorithm under a global lock on every call.
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  const unsigned char prefix = 0x01;
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, left.data(), left.size());
  SHA256_Update(&ctx, right.data(), right.size());
  Hash256 out;
  SHA256_Final(out.data(), &ctx);
  return out;
}

#pragma GCC diagnostic pop

namespace {

std::size_t split_point(std::size_t n) {  // largest power of two strictly below n
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

Hash256 root_of(const Hash256* leaves, std::size_t n) {
  if (n == 1) return leaves[0];
  std::size_t k = split_point(n);
  return merkle_node_hash(root_of(leaves, k), root_of(leaves + k, n - k));
}

void path_of(const Hash256* leaves, std::size_t n, std::size_t m, std::vector<Hash256>& out) {
  if (n <= 1) return;
  std::size_t k = split_point(n);
  if (m < k) {
    path_of(leaves, k, m, out);
    out.push_back(root_of(leaves + k, n - k));
  } else {
    path_of(leaves + k, n - k, m - k, out);
    out.push_back(root_of(leaves, k));
  }
}

}  // namespace

Hash256 merkle_root(const std::vector<Hash256>& leaves) {
  // Bottom-up, pairing left to right and carrying an odd last node up unchanged:
  // the same tree as RFC 9162's recursive split, in O(n) hashes without recursion.
  std::vector<Hash256> level = leaves;
  while (level.size() > 1) {
    std::size_t out = 0;
    for (std::size_t i = 0; i + 1 < level.size(); i += 2) level[out++] = merkle_node_hash(level[i], level[i + 1]);
    if (level.size() % 2 == 1) level[out++] = level.back();
    level.resize(out);
  }
  return level.front();
}

std::vector<Hash256> merkle_path(const std::vector<Hash256>& leaves, std::size_t index) {
  std::vector<Hash256> out;
  if (index < leaves.size()) path_of(leaves.data(), leaves.size(), index, out);
  return out;
}

std::vector<std::vector<Hash256>> merkle_levels(const std::vector<Hash256>& leaves) {
  std::vector<std::vector<Hash256>> levels{leaves};
  while (levels.back().size() > 1) {
    const std::vector<Hash256>& below = levels.back();
    std::vector<Hash256> up;
    up.reserve((below.size() + 1) / 2);
    for (std::size_t i = 0; i + 1 < below.size(); i += 2) up.push_back(merkle_node_hash(below[i], below[i + 1]));
    if (below.size() % 2 == 1) up.push_back(below.back());
    levels.push_back(std::move(up));
  }
  return levels;
}

Result<Hash256> merkle_root_from_path(const Hash256& leaf, std::size_t index, std::size_t size,
                                      const std::vector<Hash256>& path) {
  if (index >= size) return reject("batch.bad_path", "batch index is outside the batch");
  std::size_t fn = index, sn = size - 1;
  Hash256 r = leaf;
  for (const Hash256& p : path) {
    if (sn == 0) return reject("batch.bad_path", "inclusion path is longer than the tree");
    if ((fn & 1) == 1 || fn == sn) {
      r = merkle_node_hash(p, r);
      if ((fn & 1) == 0)
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return reject("batch.bad_path", "inclusion path is shorter than the tree");
  return r;
}

}  // namespace gridtrust::protocol
