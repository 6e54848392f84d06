#include "tests/support/sql_connection.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

namespace gridtrust::test {

SqlConnection::SqlConnection(const std::string& path) {
  REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
  sqlite3_busy_timeout(db_, 5000);
}

SqlConnection::~SqlConnection() { sqlite3_close(db_); }

void SqlConnection::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  INFO(sql << ": " << (err ? err : ""));
  sqlite3_free(err);
  REQUIRE(rc == SQLITE_OK);
}

int SqlConnection::changes() const { return sqlite3_changes(db_); }

std::int64_t SqlConnection::scalar(const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  INFO(sql << ": " << sqlite3_errmsg(db_));
  REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  const int rc = sqlite3_step(st);
  const std::int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  REQUIRE(rc == SQLITE_ROW);
  return v;
}

}  // namespace gridtrust::test
