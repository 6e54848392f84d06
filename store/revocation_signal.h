#pragma once
// Tells every process working on one store that a certificate's status is changing,
// so that a verifier may keep a "not revoked" answer in memory between revocations
// instead of reading the database for every signed command.
//
// Two counters in a small file next to the database (<db>-revocations, next to the
// database's real path), mapped shared: a revoker increments `begun` before its
// transaction commits and `ended` after it (also when it fails). A reader may cache a
// clean answer only while the counters are equal, keyed by their value. Both only ever
// grow, so once a revocation has ended after a cached read of V (its commit may have
// come after that read), `ended` is above V for good and V never comes back.
// A revoker that died between the two leaves them unequal: readers then stop caching
// (slower, never wrong) until the next open settles them by raising both to the
// larger, which is safe at any moment for the same reason.
//
// Without a usable file (not writable, owned by someone else, linked elsewhere) the
// signal is off: epoch() is always -1 (nothing cached) and revoking is refused, since
// the revocation could not be announced to the other processes.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/rejection.h"

namespace gridtrust::store {

class RevocationSignal {
 public:
  // Never fails: see off().
  static std::unique_ptr<RevocationSignal> open(const std::string& database_path);
  ~RevocationSignal();
  RevocationSignal(const RevocationSignal&) = delete;
  RevocationSignal& operator=(const RevocationSignal&) = delete;

  // Why the signal is off (store.signal_unavailable), or nothing.
  const std::optional<Rejection>& off() const { return off_; }
  void begin();
  void end();
  // The value a clean answer may be cached under, or -1 while a revocation is in
  // flight (or its revoker died, or the signal is off): then nothing may be cached.
  std::int64_t epoch() const;
  // Raises both counters to the larger (at open).
  void settle();

 private:
  RevocationSignal() = default;
  void* map_ = nullptr;
  std::uint64_t* begun_ = nullptr;
  std::uint64_t* ended_ = nullptr;
  std::optional<Rejection> off_;
};

}  // namespace gridtrust::store
