#include "daemon/reply.h"

namespace gridtrust::daemon {

Reply json_reply(const boost::json::value& body, int status) { return json_text_reply(boost::json::serialize(body), status); }

Reply json_text_reply(std::string text, int status) { return Reply{status, "application/json", std::move(text) + "\n"}; }

Reply error_reply(const Rejection& r) {
  boost::json::object error;
  error["code"] = r.code;
  error["message"] = r.message;
  Reply reply = json_reply(boost::json::object{{"error", std::move(error)}}, http_status_for(r.code));
  reply.error_code = r.code;
  return reply;
}

}  // namespace gridtrust::daemon
