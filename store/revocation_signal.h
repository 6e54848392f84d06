#pragma once
// Tells every process working on one store that a certificate's status is changing,
// so that a verifier may keep a "not revoked" answer in memory between revocations
// instead of reading the database for every signed command.
//
// Two counters in a small file next to the database (<db>-revocations), mapped
// shared: a revoker increments `begun` before its transaction commits and `ended`
// after it (also when it fails). A reader may cache a clean answer only while the
// counters are equal, keyed by their value; any revocation in flight or finished since
// moves one of them. A revoker that died between the two leaves them unequal: readers
// then stop caching (slower, never wrong) until the next open settles them, which is
// safe at any moment (a revocation still in flight moves `ended` again when it ends).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/rejection.h"

namespace gridtrust::store {

class RevocationSignal {
 public:
  // Codes: store.open_failed.
  static Result<std::unique_ptr<RevocationSignal>> open(const std::string& database_path);
  ~RevocationSignal();
  RevocationSignal(const RevocationSignal&) = delete;
  RevocationSignal& operator=(const RevocationSignal&) = delete;

  void begin() { begun_.fetch_add(1, std::memory_order_seq_cst); }
  void end() { ended_.fetch_add(1, std::memory_order_seq_cst); }
  // The value a clean answer may be cached under, or -1 while a revocation is in
  // flight (or its revoker died): then nothing may be cached.
  std::int64_t epoch() const;
  // ended := begun (at open).
  void settle();

 private:
  RevocationSignal(void* map, std::atomic_ref<std::uint64_t> begun, std::atomic_ref<std::uint64_t> ended)
      : map_(map), begun_(begun), ended_(ended) {}
  void* map_;
  std::atomic_ref<std::uint64_t> begun_, ended_;
};

}  // namespace gridtrust::store
