#pragma once
// For tests only (uses Catch's REQUIRE).
#include <cstdint>
#include <string>

struct sqlite3;

namespace gridtrust::test {

// A second connection to a store's SQLite file, as another process would hold one:
// for tests that change the store behind its owner's back (a trigger that makes its
// writes fail, a row another engine moved). Each statement must succeed (REQUIRE).
class SqlConnection {
 public:
  explicit SqlConnection(const std::string& path);
  ~SqlConnection();
  SqlConnection(const SqlConnection&) = delete;
  SqlConnection& operator=(const SqlConnection&) = delete;
  void exec(const std::string& sql);
  int changes() const;  // rows the last statement changed
  std::int64_t scalar(const std::string& sql);  // the first column of the first row (a count)

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace gridtrust::test
