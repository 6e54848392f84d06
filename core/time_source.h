#pragma once
// Where "now" comes from. gridtrustd reads one TimeSource everywhere a decision
// depends on the date (the scheduler, the CA's validity periods, OCSP thisUpdate, the
// signer checks of signed commands), so that a simulated year is one consistent year.
//
// (`gridtrust::Clock` in core/time.h is the std::chrono clock type; this is the
// injectable source of the current time.)
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "core/rejection.h"
#include "core/time.h"

namespace gridtrust {

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual TimePoint now() const = 0;
  // True for anything but the system clock (logged loudly by the daemon).
  virtual bool simulated() const { return true; }
};

// The system clock.
class SystemTimeSource final : public TimeSource {
 public:
  TimePoint now() const override { return now_seconds(); }
  bool simulated() const override { return false; }
};

// Set and advanced by in-process tests.
class ManualTimeSource final : public TimeSource {
 public:
  explicit ManualTimeSource(TimePoint start) : unix_(to_unix(start)) {}
  TimePoint now() const override { return from_unix(unix_.load()); }
  void set(TimePoint t) { unix_.store(to_unix(t)); }
  void advance(std::chrono::seconds d) { unix_.fetch_add(d.count()); }

 private:
  std::atomic<std::int64_t> unix_;
};

// A file holding a Unix time in decimal, written by a test that steers a real
// gridtrustd through a simulated year. Read on every call; time never runs backwards
// (a smaller or unreadable value keeps the last one read).
class FileTimeSource final : public TimeSource {
 public:
  // Fails with scheduler.clock_file_unreadable when the file has no time in it now.
  static Result<std::shared_ptr<FileTimeSource>> open(std::string path);
  TimePoint now() const override;

 private:
  explicit FileTimeSource(std::string path, std::int64_t first) : path_(std::move(path)), last_(first) {}
  std::string path_;
  mutable std::atomic<std::int64_t> last_;
};

// Reads the first integer of a file; nullopt-like rejection when there is none.
Result<std::int64_t> read_unix_time_file(const std::string& path);

// A TimeSource as the std::function the CA configuration takes.
inline std::function<TimePoint()> now_function(std::shared_ptr<const TimeSource> source) {
  return [source = std::move(source)] { return source->now(); };
}

}  // namespace gridtrust
