#include "store/revocation_signal.h"

#include <cerrno>
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
}  // namespace

Result<std::unique_ptr<RevocationSignal>> RevocationSignal::open(const std::string& database_path) {
  const std::string path = database_path + "-revocations";
  auto fail = [&](const char* what) {
    return reject("store.open_failed", "cannot " + std::string(what) + " " + path + ": " + std::strerror(errno));
  };
  // The database's own permissions: whoever may write the store may signal.
  mode_t mode = 0600;
  struct stat db {};
  if (::stat(database_path.c_str(), &db) == 0) mode = db.st_mode & 0666;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return fail("open");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    errno = EINVAL;
    return fail("use");
  }
  // Grown, never shrunk: a second opener's ftruncate to the same size keeps the counters.
  if (static_cast<std::size_t>(st.st_size) < kSize && ::ftruncate(fd, kSize) != 0) {
    ::close(fd);
    return fail("size");
  }
  void* map = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return fail("map");
  auto* words = static_cast<unsigned char*>(map);
  std::unique_ptr<RevocationSignal> s(
      new RevocationSignal(map, std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(words)),
                           std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(words + kEndedOffset))));
  s->settle();
  return s;
}

RevocationSignal::~RevocationSignal() { ::munmap(map_, kSize); }

std::int64_t RevocationSignal::epoch() const {
  const std::uint64_t e = ended_.load(std::memory_order_seq_cst);
  const std::uint64_t b = begun_.load(std::memory_order_seq_cst);
  if (b != e) return -1;
  return static_cast<std::int64_t>(b & 0x3fffffffffffffffULL);
}

void RevocationSignal::settle() { ended_.store(begun_.load(std::memory_order_seq_cst), std::memory_order_seq_cst); }

}  // namespace gridtrust::store
