#include <cstring>
#include <vector>

#include "hsm/token.h"

namespace gridtrust::hsm {
namespace {

std::string trimmed_label(const CK_UTF8CHAR* l) {
  std::string s(reinterpret_cast<const char*>(l), 32);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

CK_UTF8CHAR_PTR utf8(const SecureString& s) {
  return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(s.reveal().data()));
}

}  // namespace

Status init_token(const std::string& module_path, const std::string& label,
                  const SecureString& so_pin, const SecureString& user_pin) {
  if (label.empty() || label.size() > 32)
    return reject("hsm.bad_label", "token label must be 1..32 characters");
  GT_TRY_ASSIGN(Module m, Module::load(module_path));
  auto* fn = m.fn();
  auto slots = [&](std::vector<CK_SLOT_ID>* out) {
    CK_ULONG n = 0;
    CK_RV rv = fn->C_GetSlotList(CK_TRUE, nullptr, &n);
    if (rv != CKR_OK) return rv;
    out->resize(n);
    rv = fn->C_GetSlotList(CK_TRUE, out->data(), &n);
    out->resize(n);
    return rv;
  };
  std::vector<CK_SLOT_ID> list;
  CK_RV rv = slots(&list);
  if (rv != CKR_OK) return rv_rejection("C_GetSlotList", rv);
  std::optional<CK_SLOT_ID> free_slot;
  for (auto s : list) {
    CK_TOKEN_INFO info;
    if (fn->C_GetTokenInfo(s, &info) != CKR_OK) continue;
    if (info.flags & CKF_TOKEN_INITIALIZED) {
      if (trimmed_label(info.label) == label)
        return reject("hsm.token_exists", "a token labelled '" + label + "' already exists");
    } else if (!free_slot) {
      free_slot = s;
    }
  }
  if (!free_slot) return reject("hsm.no_free_slot", "no uninitialised slot to create a token in");
  CK_UTF8CHAR padded[32];
  std::memset(padded, ' ', sizeof padded);
  std::memcpy(padded, label.data(), label.size());
  rv = fn->C_InitToken(*free_slot, utf8(so_pin), so_pin.reveal().size(), padded);
  if (rv != CKR_OK) return rv_rejection("C_InitToken", rv);
  // SoftHSM2 moves the new token to a fresh slot id: find it again by label.
  GT_TRY(m.reinitialize());
  if ((rv = slots(&list)) != CKR_OK) return rv_rejection("C_GetSlotList", rv);
  std::optional<CK_SLOT_ID> slot;
  for (auto s : list) {
    CK_TOKEN_INFO info;
    if (fn->C_GetTokenInfo(s, &info) == CKR_OK && trimmed_label(info.label) == label) slot = s;
  }
  if (!slot) return reject("hsm.token_not_found", "new token '" + label + "' did not appear");
  CK_SESSION_HANDLE sess;
  if ((rv = fn->C_OpenSession(*slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &sess)) != CKR_OK)
    return rv_rejection("C_OpenSession", rv);
  rv = fn->C_Login(sess, CKU_SO, utf8(so_pin), so_pin.reveal().size());
  if (rv == CKR_OK) rv = fn->C_InitPIN(sess, utf8(user_pin), user_pin.reveal().size());
  fn->C_Logout(sess);
  fn->C_CloseSession(sess);
  if (rv != CKR_OK) return rv_rejection("C_InitPIN", rv);
  return Ok{};
}

}  // namespace gridtrust::hsm
