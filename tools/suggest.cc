#include "tools/suggest.h"

#include <algorithm>

namespace virga::cli {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string ClosestName(const std::string& typed, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& n : names) {
    const size_t d = EditDistance(typed, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  if (best_d == 0 || best_d > 2 || 2 * best_d >= typed.size()) return "";
  return best;
}

namespace {

// The deepest subcommand chosen on the command line ("virga train").
const CLI::App* Chosen(const CLI::App* app, std::string* path, std::vector<std::string>* names) {
  for (const CLI::App* sub : app->get_subcommands()) {
    *path += " " + sub->get_name();
    names->push_back(sub->get_name());
    return Chosen(sub, path, names);
  }
  return app;
}

}  // namespace

std::string SuggestFixes(const CLI::App& app, const std::vector<std::string>& args) {
  std::string path = "virga";
  (void)app.get_name();
  std::vector<std::string> chosen;
  const CLI::App* cmd = Chosen(&app, &path, &chosen);
  std::vector<std::string> flags, subs;
  for (const CLI::Option* o : cmd->get_options()) {
    for (const std::string& l : o->get_lnames()) flags.push_back("--" + l);
  }
  for (const CLI::App* s : cmd->get_subcommands({})) subs.push_back(s->get_name());
  std::string out;
  size_t skip = 0;  // the command names themselves, in order
  for (const std::string& arg : args) {
    if (skip < chosen.size() && arg == chosen[skip]) {
      ++skip;
      continue;
    }
    if (arg.rfind("--", 0) == 0) {
      const std::string name = arg.substr(0, arg.find('='));
      if (std::find(flags.begin(), flags.end(), name) != flags.end()) continue;
      const std::string fix = ClosestName(name, flags);
      out += path + ": unknown flag " + name + (fix.empty() ? "" : "; did you mean " + fix + "?") + "\n";
    } else if (!subs.empty() && arg.rfind('-', 0) != 0 &&
               std::find(subs.begin(), subs.end(), arg) == subs.end()) {
      const std::string fix = ClosestName(arg, subs);
      // The rest of the line belongs to the command meant: nothing more to say.
      return path + ": unknown command " + arg + (fix.empty() ? "" : "; did you mean " + fix + "?") + "\n";
    }
  }
  return out;
}

}  // namespace virga::cli
