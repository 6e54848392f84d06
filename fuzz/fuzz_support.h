#pragma once
// Shared by the fuzz targets (fuzz/README.md): how a target says an invariant broke,
// and what a well-formed error code looks like.
//
// Each target is one LLVMFuzzerTestOneInput. Built with clang and -DGRIDTRUST_FUZZ=ON it
// links libFuzzer; otherwise (GCC, the normal build) it links replay_main.cpp, which
// runs the seed corpus and a fixed number of deterministic mutations of it, so the
// invariants are checked by ctest on every build (and under ASan/UBSan in CI).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gridtrust::fuzz {

// Prints what broke and aborts (libFuzzer and ctest both report the abort).
[[noreturn]] void fail(const std::string& what, std::string_view input = {});

// "area.what" or deeper, lower case, digits and underscores (docs/error-codes.md).
bool well_formed_code(const std::string& code);

// The input being run (fail() prints it).
void set_current_input(std::string_view input);

}  // namespace gridtrust::fuzz

#define FUZZ_CHECK(cond, what)                                                                         \
  do {                                                                                                 \
    if (!(cond)) ::gridtrust::fuzz::fail(std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " + \
                                         #cond + ": " + std::string(what));                            \
  } while (0)
