#pragma once
// What a handler answers: status, content type and body. The session turns it into
// an HTTP response on whatever transport the request came in on.
#include <string>

#include <boost/json.hpp>

#include "core/rejection.h"

namespace gridtrust::daemon {

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string error_code;  // the rejection's code when this is an error reply (for audit and metrics)
};

Reply json_reply(const boost::json::value& body, int status = 200);
// The same for a body already serialised (`text` is one JSON value).
Reply json_text_reply(std::string text, int status = 200);
// {"error":{"code":...,"message":...}} with the status from http_status_for(code).
Reply error_reply(const Rejection& r);

}  // namespace gridtrust::daemon
