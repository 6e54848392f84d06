// The driver of a fuzz target where libFuzzer is not linked (GCC; fuzz/README.md):
//
//   <target> CORPUS_DIR [MUTATIONS [SEED]]
//
// Runs every file of CORPUS_DIR (sorted by name), then MUTATIONS inputs made from them
// by a fixed-seed mutator (bit flips, bytes from a list of troublesome values, inserted
// and deleted ranges, JSON tokens, numbers swapped for others, splices of two seeds). The same arguments give the
// same inputs, so a failure reproduces; the target aborts on a broken invariant.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

const char* const kTokens[] = {"\"",    "\\",    "\\u0000", "\\ud800", "{}",     "[]",      ",",      ":",
                               "null",  "true",  "false",   "-0",      "1e309",  "-1e309",  "1e-400", "0.1",
                               "1e21",  "9007199254740993",  "18446744073709551616", "-9223372036854775809",
                               "NaN",   "\xc3\x28", "\xf4\x90\x80\x80", "\"customData\"", "\"vendorId\"",
                               "\"setpoint\"", "\"evseId\"", "\"operationMode\"", "\"limit\"", "\"dischargeLimit\"",
                               "\"duration\"", "\"startPeriod\"", "\"chargingSchedule\"", "\"Idle\"",
                               "\"ExternalSetpoint\"", "\"CentralSetpoint\"", "\"W\"", "\"A\"", "\"sites\"",
                               "\"stations\"", "\"evses\"", "\"sessions\"", "- ", ": ", "\n  ", "&a ", "*a", "!!binary ",
                               "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "{\"a\":", "\"\":\"\"", "\t", " "};

std::string mutate(std::string s, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n == 0 ? std::size_t{0} : static_cast<std::size_t>(rng() % n); };
  const int rounds = 1 + static_cast<int>(rng() % 6);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 10) {
      case 0:  // flip a bit
        if (!s.empty()) {
          const std::size_t at = pick(s.size());
          s[at] = static_cast<char>(s[at] ^ (1u << (rng() % 8)));
        }
        break;
      case 1: {  // a troublesome byte
        static const unsigned char kBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '"', '\\', '{', '}', '[', ']', '0', '9', '-', '.', 'e'};
        if (!s.empty()) {
          const std::size_t at = pick(s.size());
          s[at] = static_cast<char>(kBytes[pick(sizeof kBytes)]);
        }
        break;
      }
      case 2: {  // random bytes in
        std::string ins(1 + pick(8), '\0');
        for (auto& c : ins) c = static_cast<char>(rng());
        const std::size_t to = pick(s.size() + 1);
        s.insert(to, ins);
        break;
      }
      case 3:  // a range out
        if (!s.empty()) {
          const std::size_t at = pick(s.size());
          s.erase(at, 1 + pick(std::min<std::size_t>(32, s.size() - at)));
        }
        break;
      case 4:  // a range again
        if (!s.empty()) {
          const std::size_t at = pick(s.size());
          const std::size_t n = 1 + pick(std::min<std::size_t>(32, s.size() - at));
          const std::string range = s.substr(at, n);
          const std::size_t to = pick(s.size() + 1);
          s.insert(to, range);
        }
        break;
      case 5:  // a JSON/YAML token
      case 6:
      {
        const std::size_t to = pick(s.size() + 1);
        s.insert(to, kTokens[pick(std::size(kTokens))]);
        break;
      }
      case 7:
      case 8: {  // a number replaced by another (the JSON stays well-formed more often)
        static const char* const kNumbers[] = {"0",      "-0",     "1",        "-1",         "0.0004",     "1e-9",
                                               "0.5",    "7000.0005", "11000", "-11000",     "45000",      "-20000.0006",
                                               "86400",  "604800", "1e15",     "-1e15",      "1e308",      "9007199254740993"};
        auto digit = [&](std::size_t i) { return i < s.size() && std::strchr("-0123456789.eE+", s[i]) && s[i] != '\0'; };
        std::size_t at = pick(s.size() + 1);
        while (at < s.size() && !digit(at)) ++at;
        if (at >= s.size()) break;
        std::size_t end = at;
        while (digit(end)) ++end;
        while (at > 0 && digit(at - 1)) --at;
        s.replace(at, end - at, kNumbers[pick(std::size(kNumbers))]);
        break;
      }
      default: {  // a splice: this seed's head, another's tail
        const std::string& other = seeds[pick(seeds.size())];
        const std::size_t head = pick(s.size() + 1);
        const std::size_t tail = pick(other.size() + 1);
        s = s.substr(0, head) + other.substr(tail);
        break;
      }
    }
  }
  return s;
}

void run(const std::string& input) {
  gridtrust::fuzz::set_current_input(input);
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS [SEED]]\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const long mutations = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 2000;
  const unsigned long long seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  if (ec || files.empty()) {
    std::fprintf(stderr, "%s: no seed files in %s\n", argv[0], dir.c_str());
    return 2;
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> seeds;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  for (const auto& s : seeds) run(s);
  std::mt19937_64 rng(seed);
  for (long i = 0; i < mutations; ++i) run(mutate(seeds[rng() % seeds.size()], seeds, rng));
  std::printf("%s: %zu seeds and %ld mutations (seed %llu), every invariant held\n", argv[0], seeds.size(), mutations,
              seed);
  return 0;
}
