#pragma once
#include <string>

#include "core/rejection.h"
#include "pki/profile.h"

namespace gridtrust::pki {

// Loads and validates profiles; a rejection (config.invalid) names file, line, field.
Result<ProfileSet> load_profiles(const std::string& path);

}  // namespace gridtrust::pki
