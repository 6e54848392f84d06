#include "store/revocation_signal.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gridtrust::store {

namespace {
constexpr std::size_t kSize = 4096;
constexpr std::size_t kEndedOffset = 64;  // its own cache line
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free, "counters shared between processes");

std::atomic_ref<std::uint64_t> at(std::uint64_t* p) { return std::atomic_ref<std::uint64_t>(*p); }

// Raises *p to at least v.
void raise_to(std::uint64_t* p, std::uint64_t v) {
  auto a = at(p);
  std::uint64_t cur = a.load(std::memory_order_seq_cst);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_seq_cst)) {
  }
}
}  // namespace

std::unique_ptr<RevocationSignal> RevocationSignal::open(const std::string& database_path) {
  std::unique_ptr<RevocationSignal> s(new RevocationSignal());
  // Next to the database's real path: a symlinked database has one signal.
  std::string base = database_path;
  if (char* real = ::realpath(database_path.c_str(), nullptr)) {
    base = real;
    std::free(real);
  }
  const std::string path = base + "-revocations";
  auto off = [&](const std::string& why) {
    s->off_ = reject("store.signal_unavailable", "revocation signal " + path + ": " + why);
    return std::move(s);
  };
  struct stat db {};
  if (::stat(base.c_str(), &db) != 0) return off(std::string("database: ") + std::strerror(errno));
  const mode_t mode = db.st_mode & 0666;  // the database's own permissions
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return off(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return off(std::strerror(errno));
  }
  // Whoever may write it can make verifiers trust a stale answer: it must be a plain
  // file of the database's owner (or ours), not linked elsewhere, and writable by no
  // one who cannot write the database.
  std::string wrong;
  if (!S_ISREG(st.st_mode)) wrong = "not a regular file";
  else if (st.st_nlink != 1) wrong = "has other links";
  else if (st.st_uid != db.st_uid && st.st_uid != ::geteuid()) wrong = "owned by another user";
  else if ((st.st_mode & 022) & ~(db.st_mode & 022)) wrong = "writable by more than the database";
  if (!wrong.empty()) {
    ::close(fd);
    return off(wrong);
  }
  if (st.st_uid == ::geteuid()) (void)::fchmod(fd, mode);  // the umask may have narrowed it
  // Grown, never shrunk: a second opener's ftruncate to the same size keeps the counters.
  if (static_cast<std::size_t>(st.st_size) < kSize && ::ftruncate(fd, kSize) != 0) {
    ::close(fd);
    return off(std::strerror(errno));
  }
  void* map = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return off(std::strerror(errno));
  auto* bytes = static_cast<unsigned char*>(map);
  s->map_ = map;
  s->begun_ = reinterpret_cast<std::uint64_t*>(bytes);
  s->ended_ = reinterpret_cast<std::uint64_t*>(bytes + kEndedOffset);
  s->settle();
  return s;
}

RevocationSignal::~RevocationSignal() {
  if (map_) ::munmap(map_, kSize);
}

void RevocationSignal::begin() {
  if (begun_) at(begun_).fetch_add(1, std::memory_order_seq_cst);
}
void RevocationSignal::end() {
  if (ended_) at(ended_).fetch_add(1, std::memory_order_seq_cst);
}

std::int64_t RevocationSignal::epoch() const {
  if (!begun_) return -1;
  const std::uint64_t e = at(ended_).load(std::memory_order_seq_cst);
  const std::uint64_t b = at(begun_).load(std::memory_order_seq_cst);
  if (b != e) return -1;
  return static_cast<std::int64_t>(b & 0x3fffffffffffffffULL);
}

void RevocationSignal::settle() {
  if (!begun_) return;
  const std::uint64_t b = at(begun_).load(std::memory_order_seq_cst);
  const std::uint64_t e = at(ended_).load(std::memory_order_seq_cst);
  const std::uint64_t m = b > e ? b : e;
  raise_to(begun_, m);
  raise_to(ended_, m);
}

}  // namespace gridtrust::store
