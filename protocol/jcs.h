#pragma once
// RFC 8785 JSON Canonicalization Scheme.
//
// Members sorted by their names' UTF-16 code units, no insignificant white space,
// strings with the minimal JSON escapes, numbers as ECMAScript's Number.toString
// writes the IEEE 754 double they denote. Integers beyond 2^53 are canonicalised as
// the double they round to (as every JavaScript verifier will); the signer refuses
// them instead (see signed_command.h) so that no signed value is silently rounded.
#include <string>

#include <boost/json/value.hpp>

#include "core/rejection.h"

namespace gridtrust::protocol {

// Codes: jcs.bad_number (NaN or infinity cannot be represented).
Result<std::string> canonicalize(const boost::json::value& v);
void canonicalize_into(const boost::json::value& v, std::string& out);  // v known finite
// An object's JCS form without its top-level member `skip` (no copy of the object).
Result<std::string> canonicalize_without(const boost::json::object& o, std::string_view skip);
// The same, appended to `out`: hot paths reuse one buffer. On jcs.bad_number `out`
// holds a partial text.
Status canonicalize_without_into(const boost::json::object& o, std::string_view skip, std::string& out);
// The JCS form of one string / one finite number, appended: for texts built around
// canonical pieces without making a boost::json::value of each.
void append_canonical_string(std::string_view s, std::string& out);
void append_canonical_number(double x, std::string& out);

// ECMAScript Number::toString(x) for a finite double, as JCS requires.
std::string ecmascript_number(double x);

// True when every number in `v` is an integer of magnitude at most 2^53 or a double:
// the values a JavaScript verifier reads back exactly.
bool numbers_exact_in_javascript(const boost::json::value& v);

}  // namespace gridtrust::protocol
