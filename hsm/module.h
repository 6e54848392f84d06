#pragma once
// A PKCS#11 module loaded through p11-kit. Owns the function list; initialises and
// finalises it. Not copyable: a copy could finalise the module under the original.
#include <string>

#include <p11-kit/pkcs11.h>

#include "core/rejection.h"

namespace gridtrust::hsm {

class Module {
 public:
  static Result<Module> load(const std::string& path);

  Module(const Module&) = delete;  // a copy would release the module twice
  Module& operator=(const Module&) = delete;
  Module(Module&& o) noexcept;
  Module& operator=(Module&& o) noexcept;
  ~Module();

  CK_FUNCTION_LIST* fn() const { return fn_; }
  const std::string& path() const { return path_; }

  // Finalise and initialise again: the way to reconnect a p11-kit remote module or a
  // token that was removed and re-inserted.
  Status reinitialize();

 private:
  Module(CK_FUNCTION_LIST* fn, std::string path) : fn_(fn), path_(std::move(path)) {}
  CK_FUNCTION_LIST* fn_ = nullptr;
  std::string path_;
  bool initialized_ = false;
};

std::string rv_name(CK_RV rv);
Rejection rv_rejection(const char* what, CK_RV rv);

}  // namespace gridtrust::hsm
