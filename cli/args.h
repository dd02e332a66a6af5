// A small command-line reader shared by the subcommands: `--name value`, `--name=value`,
// boolean `--flag`, and positional arguments, with one clear error line for anything unknown.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/expected.h"

namespace ghostline::cli {

class Args {
 public:
  // `valued` names options that take a value, `flags` those that do not.
  static Expected<Args> parse(const std::vector<std::string>& argv, const std::set<std::string>& valued,
                              const std::set<std::string>& flags);

  std::optional<std::string> get(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  Expected<int> get_int(const std::string& name, int fallback) const;
  Expected<double> get_double(const std::string& name, double fallback) const;
  bool has(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

// Prints "ghostline <command>: <message>" on stderr and returns the exit code 2 (bad usage)
// or 1 (any other failure).
int fail(const std::string& command, const Error& error);

}  // namespace ghostline::cli
