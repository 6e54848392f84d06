#pragma once

namespace gridtrust {

// Keeps glibc malloc from handing memory back to the kernel after every dispatch
// batch and fetching it again for the next one (values and reasons in allocator.cpp).
// Does nothing when GLIBC_TUNABLES is set: the operator chose the allocator's
// settings. Call once, first thing in main, before any thread starts.
void tune_allocator();

}  // namespace gridtrust
