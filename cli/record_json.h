#pragma once
// The JSON view of a certificate record, shared by `gridtrust ... --json` and the
// daemon's API so both speak the same field names.
#include <boost/json.hpp>

#include "store/records.h"

namespace gridtrust::app {

boost::json::object record_json(const store::CertificateRecord& r);

}  // namespace gridtrust::app
