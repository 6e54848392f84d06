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

}  // namespace gridtrust::test
