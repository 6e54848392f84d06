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

  // Whether callers must make one call at a time into this module. True for
  // p11-kit-client.so: it multiplexes all threads over one socket, and when the server
  // dies mid-call a thread that read another thread's reply header waits for a wake-up
  // that never comes (p11-kit 0.24 rpc_socket_read), hanging every caller for good.
  // One call in flight costs nothing there: the server answers a connection's calls in
  // order anyway.
  bool serialize_calls() const { return serialize_calls_; }

  // Finalise and initialise again: the way to reconnect a p11-kit remote module or a
  // token that was removed and re-inserted.
  Status reinitialize();

 private:
  void release() noexcept;  // finalise and unload; safe to call twice
  Module(CK_FUNCTION_LIST* fn, std::string path);
  CK_FUNCTION_LIST* fn_ = nullptr;
  std::string path_;
  bool initialized_ = false;
  bool serialize_calls_ = false;
};

// Keeps a PKCS#11 call from ending the process with SIGPIPE. A module that talks to
// its token over a socket (p11-kit-client.so to `p11-kit server`) write()s to a dead
// connection when the server went away while we were idle; the kernel then raises
// SIGPIPE, whose default action kills the whole daemon before the module can return
// CKR_DEVICE_ERROR. While a guard lives, SIGPIPE is blocked in the calling thread; one
// raised meanwhile is consumed before it is unblocked, so the module just sees EPIPE.
// Process-wide signal dispositions are left alone. Guards nest; an application that
// blocks SIGPIPE itself keeps its pending signals.
class SigpipeGuard {
 public:
  SigpipeGuard();
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  bool unblock_ = false;  // this guard blocked SIGPIPE and must restore it
};

std::string rv_name(CK_RV rv);
Rejection rv_rejection(const char* what, CK_RV rv);

}  // namespace gridtrust::hsm
