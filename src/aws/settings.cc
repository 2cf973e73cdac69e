#include "aws/settings.h"

#include <cstdlib>

#include "aws/ini.h"

namespace virga::aws {
namespace {

std::optional<std::string> Get(const EnvLookup& env, const char* name) {
  std::optional<std::string> v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

// One of the two shared files, parsed if present.
struct SharedFile {
  std::string path;  // "" when neither its variable nor $HOME names one
  bool present = false;
  IniFile ini;

  // For messages: "/root/.aws/config", "/root/.aws/config (absent)".
  std::string Describe(std::string_view fallback) const {
    if (path.empty()) return std::string(fallback) + " ($HOME is not set)";
    return present ? path : path + " (absent)";
  }
};

Result<SharedFile> LoadShared(const EnvLookup& env, const char* variable,
                              std::string_view home_relative) {
  const std::optional<std::string> home = Get(env, "HOME");
  SharedFile file;
  if (std::optional<std::string> set = Get(env, variable)) {
    file.path = *set;
    if (home && (file.path == "~" || file.path.starts_with("~/"))) {
      file.path = *home + file.path.substr(1);
    }
  } else if (home) {
    file.path = *home + "/" + std::string(home_relative);
  }
  if (file.path.empty()) return file;
  Result<IniFile> ini = ReadIniFile(file.path);
  if (ini.ok()) {
    file.present = true;
    file.ini = std::move(ini).value();
  } else if (!ini.status().IsNotFound()) {
    return ini.status();
  }
  return file;
}

// The config file's section of `profile`: "[profile NAME]", or "[default]" for default.
const IniFile::Section* ConfigSection(const IniFile& config, const std::string& profile) {
  if (const IniFile::Section* s = config.Find("profile " + profile)) return s;
  return profile == "default" ? config.Find("default") : nullptr;
}

std::optional<std::string> Setting(const IniFile::Section* section, std::string_view name) {
  if (section == nullptr) return std::nullopt;
  auto it = section->find(name);
  if (it == section->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// Credentials from one source of key id + secret (+ token): none, both, or an
// error naming the half that is missing. `names`: the source's names of the key
// id and the secret, for that message.
Result<std::optional<Credentials>> Pick(std::optional<std::string> key_id,
                                        std::optional<std::string> secret,
                                        std::optional<std::string> token,
                                        const std::string (&names)[2], std::string_view where) {
  if (!key_id && !secret) return std::optional<Credentials>();
  if (!key_id || !secret) {
    return Status::InvalidArgument(std::string(where) + ": " + names[key_id ? 0 : 1] +
                                   " is set but " + names[key_id ? 1 : 0] + " is not");
  }
  return std::optional<Credentials>(Credentials{*key_id, *secret, token.value_or("")});
}

Result<std::optional<Credentials>> FromSection(const IniFile::Section* section,
                                               std::string_view where) {
  static const std::string kNames[2] = {"aws_access_key_id", "aws_secret_access_key"};
  return Pick(Setting(section, kNames[0]), Setting(section, kNames[1]),
              Setting(section, "aws_session_token"), kNames, where);
}

struct Sources {
  std::string profile;
  SharedFile credentials;
  SharedFile config;
  const IniFile::Section* credentials_section = nullptr;
  const IniFile::Section* config_section = nullptr;
};

Status ResolveCredentials(const EnvLookup& env, const Sources& src, Settings* out) {
  static const std::string kEnv[2] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"};
  const std::string in_profile = "profile " + src.profile + " in ";
  const std::string credentials_where = in_profile + src.credentials.path;
  const std::string config_where = in_profile + src.config.path;
  const std::pair<Result<std::optional<Credentials>>, std::string> chain[] = {
      {Pick(Get(env, kEnv[0].c_str()), Get(env, kEnv[1].c_str()), Get(env, "AWS_SESSION_TOKEN"),
            kEnv, "environment"),
       "environment"},
      {FromSection(src.credentials_section, credentials_where), credentials_where},
      {FromSection(src.config_section, config_where), config_where},
  };
  for (const auto& [found, where] : chain) {
    if (!found.ok()) return found.status();
    if (found->has_value()) {
      out->credentials = **found;
      out->credentials_source = where;
      return Status::OK();
    }
  }
  return Status::Unauthenticated(
      "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and profile " +
      src.profile + " has no aws_access_key_id and aws_secret_access_key in " +
      src.credentials.Describe("~/.aws/credentials") + " or " +
      src.config.Describe("~/.aws/config") + " (AWS_PROFILE picks the profile)");
}

std::string ResolveRegion(const EnvLookup& env, const Sources& src) {
  if (std::optional<std::string> r = Get(env, "AWS_REGION")) return *r;
  if (std::optional<std::string> r = Get(env, "AWS_DEFAULT_REGION")) return *r;
  if (std::optional<std::string> r = Setting(src.config_section, "region")) return *r;
  return "us-east-1";
}

// "AWS_ENDPOINT_URL_S3" for "s3".
std::string ServiceEndpointVariable(std::string_view service) {
  std::string name = "AWS_ENDPOINT_URL_";
  for (char c : service) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    name += (c == '-' || c == ' ') ? '_' : c;
  }
  return name;
}

Status ResolveEndpoint(std::string_view service, const EnvLookup& env, const Sources& src,
                       Settings* out) {
  const std::string service_variable = ServiceEndpointVariable(service);
  std::optional<std::string> url;
  std::string where;
  if ((url = Get(env, service_variable.c_str()))) {
    where = service_variable;
  } else if ((url = Get(env, "AWS_ENDPOINT_URL"))) {
    where = "AWS_ENDPOINT_URL";
  } else if ((url = Setting(src.config_section, "endpoint_url"))) {
    where = "endpoint_url of profile " + src.profile + " in " + src.config.path;
  } else {
    return Status::OK();
  }
  if (!url->starts_with("http://") && !url->starts_with("https://")) {
    return Status::InvalidArgument(where + ": expected a URL starting with http:// or https://");
  }
  while (url->ends_with('/')) url->pop_back();
  out->endpoint = std::move(*url);
  return Status::OK();
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<Settings> ResolveSettings(std::string_view service, const EnvLookup& env) {
  Settings out;
  Sources src;
  const std::optional<std::string> chosen = Get(env, "AWS_PROFILE");
  src.profile = chosen.value_or("default");
  VIRGA_ASSIGN_OR_RETURN(src.credentials,
                         LoadShared(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"));
  VIRGA_ASSIGN_OR_RETURN(src.config, LoadShared(env, "AWS_CONFIG_FILE", ".aws/config"));
  src.credentials_section = src.credentials.ini.Find(src.profile);
  src.config_section = ConfigSection(src.config.ini, src.profile);
  if (chosen && !src.credentials_section && !src.config_section) {
    return Status::InvalidArgument("AWS_PROFILE names profile " + src.profile +
                                   ", which is in neither " +
                                   src.credentials.Describe("~/.aws/credentials") + " nor " +
                                   src.config.Describe("~/.aws/config"));
  }
  out.profile = src.profile;
  VIRGA_RETURN_IF_ERROR(ResolveCredentials(env, src, &out));
  out.region = ResolveRegion(env, src);
  VIRGA_RETURN_IF_ERROR(ResolveEndpoint(service, env, src, &out));
  if (std::optional<std::string> ca = Get(env, "AWS_CA_BUNDLE")) {
    out.ca_bundle = *ca;
  } else if (std::optional<std::string> ca_file = Setting(src.config_section, "ca_bundle")) {
    out.ca_bundle = *ca_file;
  }
  return out;
}

std::string DefaultEndpoint(std::string_view service, std::string_view region) {
  std::string url =
      "https://" + std::string(service) + "." + std::string(region) + ".amazonaws.com";
  if (region.starts_with("cn-")) url += ".cn";
  return url;
}

}  // namespace virga::aws
