#pragma once
// A benchmark stops at the first thing that goes wrong: a figure measured past a
// failure means nothing.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/rejection.h"

namespace gridtrust::bench {

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r.ok()) die(what + ": " + r.error().code + ": " + r.error().message);
  return std::move(r).value();
}

}  // namespace gridtrust::bench
