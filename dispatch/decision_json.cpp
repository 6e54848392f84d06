// Decision::append_json: the audit text of a decision written straight into a string.
// A batch of 1,000 setpoints is audited as one entry; building a boost::json object
// per decision only to serialise it and throw it away cost as much as deciding them.
//
// The text must stay byte for byte what json::serialize(to_json()) gives (the audit
// chain hashes it, tests/dispatch/decision_json_test.cpp compares the two): the
// members in to_json()'s order, and every string and number written by boost's own
// serializer, so escapes and number forms cannot drift from it. Only the punctuation
// is ours.
#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <type_traits>

#include <boost/json.hpp>

#include "dispatch/engine.h"

namespace gridtrust::dispatch {

namespace json = boost::json;

namespace {

class JsonText {
 public:
  explicit JsonText(std::string& out) : out_(out) {}

  void open() { out_ += '{'; }
  void close() { out_ += '}'; }
  // `name` is a literal that needs no escape.
  void key(std::string_view name) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += name;
    out_ += "\":";
  }
  void string(std::string_view s) {
    // Printable ASCII without '"' or '\\' (station ids, codes, fingerprints: nearly
    // every string here) is written as it is by the serializer too.
    if (std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; })) {
      out_ += '"';
      out_ += s;
      out_ += '"';
      return;
    }
    sr_.reset(s);
    drain();
  }
  // Integers in decimal, as the serializer writes them.
  template <class Integer>
  void number(Integer x) requires std::is_integral_v<Integer> {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, x).ptr;
    out_.append(digits, end);
  }
  void number(double x) {
    const json::value v(x);
    sr_.reset(&v);
    drain();
  }
  void range(double lo, double hi) {
    out_ += '[';
    const std::size_t first = out_.size();
    number(lo);
    out_ += ',';
    if (std::bit_cast<std::uint64_t>(lo) == std::bit_cast<std::uint64_t>(hi)) {
      out_.append(out_, first, out_.size() - 1 - first);  // a point: the same text again
    } else {
      number(hi);
    }
    out_ += ']';
  }

 private:
  void drain() {
    char chunk[128];
    while (!sr_.done()) out_.append(sr_.read(chunk, sizeof chunk));
  }

  std::string& out_;
  json::serializer sr_;
  bool first_ = true;
};

}  // namespace

void Decision::append_json(std::string& out) const {
  JsonText t(out);
  t.open();
  t.key("outcome");
  t.string(to_string(outcome));
  t.key("reason");
  t.string(reason);
  t.key("at");
  t.number(at);
  if (!detail.empty()) {
    t.key("detail");
    t.string(detail);
  }
  if (!station.empty()) {
    t.key("station");
    t.string(station);
  }
  if (evse) {
    t.key("evse");
    t.number(static_cast<std::int64_t>(evse));
  }
  if (!ev.empty()) {
    t.key("ev");
    t.string(ev);
  }
  if (!signer.empty()) {
    t.key("signer");
    t.string(signer);
  }
  if (!caller.empty()) {
    t.key("caller");
    t.string(caller);
  }
  if (seq) {
    t.key("seq");
    t.number(seq);
  }
  if (mode) {
    t.key("mode");
    t.string(to_string(*mode));
    t.key("requested_w");
    t.range(requested_lo_w, requested_hi_w);
    t.key("envelope_w");
    t.range(envelope_min_w, envelope_max_w);
    if (outcome != Outcome::Rejected) {
      t.key("applied_w");
      t.range(applied_lo_w, applied_hi_w);
    }
  }
  t.close();
}

}  // namespace gridtrust::dispatch
