#include "core/time_source.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace gridtrust {

Result<std::int64_t> read_unix_time_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return reject("scheduler.clock_file_unreadable", "cannot read clock file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t start = i;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  // A writer truncates then writes: an empty read is a race, not a time.
  if (i == start || i - start > 12)
    return reject("scheduler.clock_file_unreadable", "clock file " + path + " holds no Unix time");
  return static_cast<std::int64_t>(std::stoll(text.substr(start, i - start)));
}

Result<std::shared_ptr<FileTimeSource>> FileTimeSource::open(std::string path) {
  GT_TRY_ASSIGN(std::int64_t first, read_unix_time_file(path));
  return std::shared_ptr<FileTimeSource>(new FileTimeSource(std::move(path), first));
}

TimePoint FileTimeSource::now() const {
  auto t = read_unix_time_file(path_);
  if (t.ok()) {
    std::int64_t seen = last_.load();
    while (t.value() > seen && !last_.compare_exchange_weak(seen, t.value())) {
    }
  }
  return from_unix(last_.load());
}

}  // namespace gridtrust
