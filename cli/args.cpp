// Parsing of subcommand arguments; see args.h.
#include "cli/args.h"

#include <cstdio>
#include <cstdlib>

namespace ghostline::cli {

Expected<Args> Args::parse(const std::vector<std::string>& argv, const std::set<std::string>& valued,
                           const std::set<std::string>& flags) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a.substr(2);
      std::optional<std::string> inline_value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (valued.count(name)) {
        if (inline_value) {
          args.values_[name] = *inline_value;
        } else if (i + 1 < argv.size()) {
          args.values_[name] = argv[++i];
        } else {
          return make_error(ErrorCode::InvalidArgument, "option --" + name + " needs a value");
        }
      } else if (flags.count(name) && !inline_value) {
        args.flags_.insert(name);
      } else {
        return make_error(ErrorCode::InvalidArgument, "unknown option --" + name);
      }
    } else {
      args.positional_.push_back(a);
    }
  }
  return args;
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  auto v = get(name);
  return v ? *v : fallback;
}

Expected<int> Args::get_int(const std::string& name, int fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || n < INT32_MIN || n > INT32_MAX)
    return make_error(ErrorCode::InvalidArgument, "--" + name + " expects an integer, got '" + *v + "'");
  return static_cast<int>(n);
}

Expected<double> Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0') return make_error(ErrorCode::InvalidArgument, "--" + name + " expects a number, got '" + *v + "'");
  return d;
}

bool Args::has(const std::string& name) const { return flags_.count(name) > 0; }

int fail(const std::string& command, const Error& error) {
  std::fprintf(stderr, "ghostline %s: %s\n", command.c_str(), error.message.c_str());
  return error.code == ErrorCode::InvalidArgument ? 2 : 1;
}

}  // namespace ghostline::cli
