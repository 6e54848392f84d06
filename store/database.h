#pragma once
// Thin RAII over sqlite3: one owner per connection and per statement.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <sqlite3.h>

#include "core/encoding.h"
#include "core/rejection.h"

namespace gridtrust::store {

class Statement {
 public:
  Statement(sqlite3* db, const char* sql);
  Statement(const Statement&) = delete;  // a copy would finalize twice
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, const std::string& v);
  Statement& bind(int i, const Bytes& v);
  Statement& bind_null(int i);
  Statement& bind_real(int i, double v);  // not an overload of bind: an int argument would be ambiguous
  template <typename T>
  Statement& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // SQLITE_ROW -> true, SQLITE_DONE -> false; anything else throws StoreError.
  bool step();
  void reset();

  std::int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  Bytes blob(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// SQLite failures inside the store are turned into `store.*` rejections at the
// store boundary; inside it they travel as this exception.
struct StoreError : std::runtime_error {
  int rc;
  StoreError(int rc, const std::string& what) : std::runtime_error(what), rc(rc) {}
};

// A statement from Database::prepared(), reset when the guard goes out of scope so a
// cached statement never holds a read open across a COMMIT.
class PreparedStatement {
 public:
  explicit PreparedStatement(Statement& s) : s_(s) {}
  PreparedStatement(const PreparedStatement&) = delete;
  PreparedStatement& operator=(const PreparedStatement&) = delete;
  ~PreparedStatement() { s_.reset(); }
  Statement* operator->() { return &s_; }
  Statement& operator*() { return s_; }

 private:
  Statement& s_;
};

class Database {
 public:
  static Result<Database> open(const std::string& path);
  Database(const Database&) = delete;  // a copy would close the connection twice
  Database& operator=(const Database&) = delete;
  Database(Database&& o) noexcept : db_(o.db_), cache_(std::move(o.cache_)) { o.db_ = nullptr; }
  Database& operator=(Database&& o) noexcept;
  ~Database();

  void exec(const char* sql);
  sqlite3* handle() const { return db_; }
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  int changes() const { return sqlite3_changes(db_); }
  // Hot-path statements are prepared once per connection; `sql` must be a literal.
  PreparedStatement prepared(const char* sql);

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
  std::map<const char*, std::unique_ptr<Statement>> cache_;
};

Status apply_migrations(Database& db);
int schema_version();

}  // namespace gridtrust::store
