#pragma once
// For tests only (uses Catch's REQUIRE).
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

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace gridtrust::test
