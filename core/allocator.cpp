#include "core/allocator.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace gridtrust {

void tune_allocator() {
#if defined(__GLIBC__)
  // Set, even empty, GLIBC_TUNABLES is the operator's choice (glibc.malloc.* or the
  // defaults), and it is left alone.
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  constexpr int kMiB = 1 << 20;
  // glibc hands the free top of a heap back to the kernel once it passes 128 KiB. A
  // dispatch batch allocates and frees a few MiB (decisions, commands, the audit
  // text), so heaps shrank after every batch and the next one page-faulted the
  // memory back in. 64 MiB is far above a batch's few MiB, yet bounds what an arena
  // (one per thread, at most 8 per core) keeps free after a peak; 16 and 32 MiB
  // removed the same faults in dispatch_bench, with throughput within the noise.
  mallopt(M_TRIM_THRESHOLD, 64 * kMiB);
  // Grow a heap by this much more than asked, so a batch's growth is one step, not
  // one per allocation. Address space, not resident memory, until it is touched.
  mallopt(M_TOP_PAD, 16 * kMiB);
  // Setting either value above stops glibc from raising the mmap threshold from its
  // 128 KiB start as large blocks are freed, so every block past it would be a fresh
  // mmap, faulted in and unmapped on free. A batch's vectors and audit text are
  // hundreds of KiB. 32 MiB is as far as glibc's dynamic threshold would rise by
  // itself on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
  mallopt(M_MMAP_THRESHOLD, 32 * kMiB);
#endif
}

}  // namespace gridtrust
