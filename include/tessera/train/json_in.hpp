// tessera/train/json_in.hpp — reading JSON that came from outside (a manifest, a safetensors header).
//
// `json_in` is a view of one value inside a parsed document that knows where it is: the document's name
// ("checkpoint ck/step_00000008/manifest.json") and the key path to the value ("tensors.wte.slices[3]
// .start"). Every accessor checks the type — and for numbers the range — before it reads, so a damaged
// file is never indexed blindly and never reaches nlohmann's own exceptions; the usage_error it throws
// names the document, the path and the offending value:
//
//   checkpoint ck/step_00000008/manifest.json: data.shuffle is "yes", expected true or false
//   checkpoint ck/step_00000008/manifest.json: plan.zero is missing
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/core/error.hpp"

namespace tessera {

class json_in {
 public:
  /// The document `doc` (a value that outlives this view), named `name` in errors; `root` names the
  /// document's top level in key paths ("header" → "header.wte.shape"), or nothing.
  json_in(const nlohmann::json& doc, std::string name, std::string root = {})
      : j_(&doc), name_(std::move(name)), path_(std::move(root)) {}

  const nlohmann::json& raw() const { return *j_; }
  /// "plan.mesh.dp"; "(the top level)" for the document itself.
  std::string path() const { return path_.empty() ? std::string("(the top level)") : path_; }
  const std::string& document() const { return name_; }

  /// Throws usage_error "DOCUMENT: PATH what".
  [[noreturn]] void fail(std::string_view what) const { throw usage_error(cat(name_, ": ", path(), " ", what)); }

  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  /// Member `key` of this object. @pre this is an object (else an error), key present (else "is missing").
  json_in at(std::string_view key) const {
    expect_object();
    const auto it = j_->find(key);
    if (it == j_->end()) child_path_error(key, "is missing");
    return child(*it, join(key));
  }
  /// Whether this object has member `key`. @pre this is an object (else an error).
  bool has(std::string_view key) const {
    expect_object();
    return j_->contains(key);
  }
  /// The number of elements of this array. @pre this is an array (else an error).
  std::size_t size() const {
    if (!j_->is_array()) fail(cat("is ", shown(), ", expected an array"));
    return j_->size();
  }
  /// Element i of this array. @pre this is an array with more than i elements (else an error).
  json_in at(std::size_t i) const {
    const std::size_t n = size();
    if (i >= n) fail(cat("has ", n, " elements, element ", i, " was expected"));
    return child((*j_)[i], cat(path_, "[", i, "]"));
  }
  /// Calls f(key, value) for every member of this object, in the document's order. @pre an object.
  template <class F>
  void members(F&& f) const {
    expect_object();
    for (auto it = j_->begin(); it != j_->end(); ++it) f(it.key(), child(*it, join(it.key())));
  }

  std::string text() const {
    if (!j_->is_string()) fail(cat("is ", shown(), ", expected a string"));
    return j_->get<std::string>();
  }
  bool boolean() const {
    if (!j_->is_boolean()) fail(cat("is ", shown(), ", expected true or false"));
    return j_->get<bool>();
  }
  /// An integer in [lo, hi] (a JSON number without fraction or exponent that fits).
  std::int64_t integer(std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t hi = std::numeric_limits<std::int64_t>::max()) const {
    if (j_->is_number_unsigned()) {
      const auto u = j_->get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(hi)) return static_cast<std::int64_t>(u);
    } else if (j_->is_number_integer()) {
      const auto s = j_->get<std::int64_t>();
      if (s >= lo && s <= hi) return s;
    } else {
      fail(cat("is ", shown(), ", expected an integer"));
    }
    fail(cat("is ", shown(), ", expected an integer in [", lo, ", ", hi, "]"));
  }
  /// An unsigned integer ≤ hi.
  std::uint64_t unsigned_integer(std::uint64_t hi = std::numeric_limits<std::uint64_t>::max()) const {
    if (j_->is_number_unsigned() && j_->get<std::uint64_t>() <= hi) return j_->get<std::uint64_t>();
    if (j_->is_number_integer() && !j_->is_number_unsigned() && j_->get<std::int64_t>() >= 0 &&
        static_cast<std::uint64_t>(j_->get<std::int64_t>()) <= hi)
      return static_cast<std::uint64_t>(j_->get<std::int64_t>());
    fail(cat("is ", shown(), ", expected an integer in [0, ", hi, "]"));
  }
  /// An array of exactly `n` integers in [lo, hi] (any length when n is `any_length`).
  static constexpr std::size_t any_length = static_cast<std::size_t>(-1);
  std::vector<std::int64_t> integers(std::size_t n, std::int64_t lo, std::int64_t hi) const {
    const std::size_t got = size();
    if (n != any_length && got != n) fail(cat("is ", shown(), ", expected ", n, " integers"));
    std::vector<std::int64_t> out;
    out.reserve(got);
    for (std::size_t i = 0; i < got; ++i) out.push_back(at(i).integer(lo, hi));
    return out;
  }

  /// The value as the error messages show it: its JSON text, cut to 60 characters.
  std::string shown() const {
    std::string s = j_->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
  }

 private:
  json_in child(const nlohmann::json& v, std::string path) const {
    json_in c(v, name_);
    c.path_ = std::move(path);
    return c;
  }
  std::string join(std::string_view key) const { return path_.empty() ? std::string(key) : cat(path_, ".", key); }
  void expect_object() const {
    if (!j_->is_object()) fail(cat("is ", shown(), ", expected an object"));
  }
  [[noreturn]] void child_path_error(std::string_view key, std::string_view what) const {
    throw usage_error(cat(name_, ": ", join(key), " ", what));
  }

  const nlohmann::json* j_;
  std::string name_;
  std::string path_;
};

/// Parses `text` as JSON, or throws usage_error "NAME is damaged: not valid JSON (where)".
inline nlohmann::json parse_json(const std::string& text, std::string_view name) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw usage_error(cat(name, " is damaged: not valid JSON (", e.what(), ")"));
  }
}

}  // namespace tessera
