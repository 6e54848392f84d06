#include "hsm/module.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include <p11-kit/p11-kit.h>

namespace gridtrust::hsm {

namespace {
sigset_t sigpipe_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  return set;
}
}  // namespace

SigpipeGuard::SigpipeGuard() {
  sigset_t pipe = sigpipe_set(), old;
  if (pthread_sigmask(SIG_BLOCK, &pipe, &old) == 0) unblock_ = !sigismember(&old, SIGPIPE);
}

SigpipeGuard::~SigpipeGuard() {
  if (!unblock_) return;  // an outer guard or the application blocks it
  int saved_errno = errno;
  sigset_t pipe = sigpipe_set(), pending;
  if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
    const timespec now{0, 0};
    while (sigtimedwait(&pipe, nullptr, &now) == -1 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_UNBLOCK, &pipe, nullptr);
  errno = saved_errno;
}

Module::Module(CK_FUNCTION_LIST* fn, std::string path) : fn_(fn), path_(std::move(path)) {
  serialize_calls_ =
      std::filesystem::path(path_).filename().string().rfind("p11-kit-client", 0) == 0;
}

Result<Module> Module::load(const std::string& path) {
  SigpipeGuard no_sigpipe;
  CK_FUNCTION_LIST* fn = p11_kit_module_load(path.c_str(), 0);
  if (!fn) {
    const char* msg = p11_kit_message();
    return reject("hsm.module_load_failed",
                  "cannot load PKCS#11 module " + path + (msg ? std::string(": ") + msg : ""));
  }
  Module m(fn, path);
  CK_RV rv = p11_kit_module_initialize(fn);
  if (rv != CKR_OK) return rv_rejection("C_Initialize", rv);
  m.initialized_ = true;
  return m;
}

Module::Module(Module&& o) noexcept
    : fn_(o.fn_), path_(std::move(o.path_)), initialized_(o.initialized_),
      serialize_calls_(o.serialize_calls_) {
  o.fn_ = nullptr;
  o.initialized_ = false;
}

Module& Module::operator=(Module&& o) noexcept {
  if (this != &o) {
    release();
    fn_ = o.fn_;
    path_ = std::move(o.path_);
    initialized_ = o.initialized_;
    serialize_calls_ = o.serialize_calls_;
    o.fn_ = nullptr;
    o.initialized_ = false;
  }
  return *this;
}

Module::~Module() { release(); }

void Module::release() noexcept {
  if (fn_) {
    SigpipeGuard no_sigpipe;
    if (initialized_) p11_kit_module_finalize(fn_);
    p11_kit_module_release(fn_);
    fn_ = nullptr;
    initialized_ = false;
  }
}

Status Module::reinitialize() {
  SigpipeGuard no_sigpipe;
  if (initialized_) p11_kit_module_finalize(fn_);
  initialized_ = false;
  CK_RV rv = p11_kit_module_initialize(fn_);
  if (rv != CKR_OK) return rv_rejection("C_Initialize", rv);
  initialized_ = true;
  return Ok{};
}

std::string rv_name(CK_RV rv) {
  switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
    case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
    case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
    case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_NOT_RECOGNIZED: return "CKR_TOKEN_NOT_RECOGNIZED";
    case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
    case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
    case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_SLOT_ID_INVALID: return "CKR_SLOT_ID_INVALID";
    case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_DOMAIN_PARAMS_INVALID: return "CKR_DOMAIN_PARAMS_INVALID";
    case CKR_CURVE_NOT_SUPPORTED: return "CKR_CURVE_NOT_SUPPORTED";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "CKR_0x%lx", static_cast<unsigned long>(rv));
      return buf;
    }
  }
}

Rejection rv_rejection(const char* what, CK_RV rv) {
  return reject("hsm.error", std::string(what) + " failed: " + rv_name(rv));
}

}  // namespace gridtrust::hsm
