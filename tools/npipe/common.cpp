#include "common.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#else
#include <cerrno>
#include <unistd.h>
#endif

namespace tool {

int exit_code_for(int rc, bool name_op) {
    switch (rc) {
    case NPIPE_OK: return exit_ok;
    case NPIPE_EINVAL:
    case NPIPE_ENAMETOOLONG:
    case NPIPE_ENOTSUP: return name_op ? exit_bad_name : exit_other;
    case NPIPE_ENOENT: return exit_no_pipe;
    case NPIPE_EBUSY:
    case NPIPE_ETIMEDOUT: return exit_busy;
    case NPIPE_EACCES: return exit_denied;
    case NPIPE_EEXIST: return exit_exists;
    default: return exit_other;
    }
}

int Failure::report() const {
    if (rc < 0)
        std::fprintf(stderr, "npipe: %s: %s (%s)\n", what.c_str(), message.c_str(), npipe_err_name(rc));
    else
        std::fprintf(stderr, "npipe: %s: %s\n", what.c_str(), message.c_str());
    std::fflush(stderr);
    return rc < 0 ? exit_code_for(rc, name_op) : exit_other;
}

Failure capture(int rc, std::string what, bool name_op) {
    Failure f;
    f.rc = rc;
    f.name_op = name_op;
    f.what = std::move(what);
    f.message = npipe_last_error_message();
    if (f.message == "no error") f.message = npipe_strerror(rc);
    return f;
}

Failure plain_failure(std::string what, std::string message) {
    Failure f;
    f.what = std::move(what);
    f.message = std::move(message);
    return f;
}

int usage_error(std::string_view cmd, std::string_view msg) {
    std::fprintf(stderr, "npipe%s%.*s: %.*s\nTry 'npipe%s%.*s --help'.\n", cmd.empty() ? "" : " ",
                 static_cast<int>(cmd.size()), cmd.data(), static_cast<int>(msg.size()), msg.data(),
                 cmd.empty() ? "" : " ", static_cast<int>(cmd.size()), cmd.data());
    return exit_usage;
}

bool ParsedArgs::has(std::string_view name) const {
    for (const auto &o : options)
        if (o.first == name) return true;
    return false;
}

std::optional<std::string> ParsedArgs::value(std::string_view name) const {
    std::optional<std::string> v;
    for (const auto &o : options)
        if (o.first == name) v = o.second;
    return v;
}

std::optional<ParsedArgs> parse_args(std::string_view cmd, const std::vector<std::string> &args,
                                     const std::vector<OptionSpec> &specs) {
    ParsedArgs out;
    bool only_positional = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (only_positional || a.size() < 2 || a[0] != '-') {
            out.positional.push_back(a);
            continue;
        }
        if (a == "--") {
            only_positional = true;
            continue;
        }
        std::string name, value;
        bool has_value = false;
        const OptionSpec *spec = nullptr;
        if (a[1] == '-') {
            size_t eq = a.find('=');
            name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
            if (eq != std::string::npos) {
                value = a.substr(eq + 1);
                has_value = true;
            }
            for (const auto &s : specs)
                if (s.name == name) spec = &s;
        } else if (a.size() == 2) {
            for (const auto &s : specs)
                if (s.short_name == a[1]) spec = &s;
            if (spec) name = spec->name;
        }
        if (!spec) {
            usage_error(cmd, "unknown option '" + a + "'");
            return std::nullopt;
        }
        if (spec->takes_value && !has_value) {
            if (i + 1 >= args.size()) {
                usage_error(cmd, "option '--" + name + "' needs a value");
                return std::nullopt;
            }
            value = args[++i];
        } else if (!spec->takes_value && has_value) {
            usage_error(cmd, "option '--" + name + "' takes no value");
            return std::nullopt;
        }
        out.options.emplace_back(name, value);
    }
    return out;
}

std::optional<uint64_t> parse_size(std::string_view text) {
    size_t i = 0;
    uint64_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        uint64_t d = static_cast<uint64_t>(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return std::nullopt;
        v = v * 10 + d;
        ++i;
    }
    if (i == 0) return std::nullopt;
    std::string_view unit = text.substr(i);
    uint64_t mult = 1;
    if (unit.empty() || unit == "B") mult = 1;
    else if (unit == "K" || unit == "k" || unit == "KiB") mult = 1ull << 10;
    else if (unit == "M" || unit == "MiB") mult = 1ull << 20;
    else if (unit == "G" || unit == "GiB") mult = 1ull << 30;
    else return std::nullopt;
    if (v > UINT64_MAX / mult) return std::nullopt;
    return v * mult;
}

std::optional<int64_t> parse_int(std::string_view text) {
    bool neg = !text.empty() && text[0] == '-';
    if (neg) text.remove_prefix(1);
    if (text.empty() || text.size() > 18) return std::nullopt;
    int64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return neg ? -v : v;
}

bool size_option(std::string_view cmd, const ParsedArgs &args, std::string_view name, uint64_t lo, uint64_t hi,
                 uint64_t &out) {
    auto text = args.value(name);
    if (!text) return true;
    auto v = parse_size(*text);
    if (!v || *v < lo || *v > hi) {
        usage_error(cmd, "bad value '" + *text + "' for --" + std::string(name) + " (a size from " + std::to_string(lo) +
                             " to " + std::to_string(hi) + " bytes; suffixes K, M, G, KiB, MiB, GiB)");
        return false;
    }
    out = *v;
    return true;
}

bool int_option(std::string_view cmd, const ParsedArgs &args, std::string_view name, int64_t lo, int64_t hi,
                int64_t &out) {
    auto text = args.value(name);
    if (!text) return true;
    auto v = parse_int(*text);
    if (!v || *v < lo || *v > hi) {
        usage_error(cmd, "bad value '" + *text + "' for --" + std::string(name) + " (an integer from " +
                             std::to_string(lo) + " to " + std::to_string(hi) + ")");
        return false;
    }
    out = *v;
    return true;
}

std::string format_bytes(uint64_t bytes) {
    char buf[64];
    if (bytes < 1024) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
    else if (bytes < (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f KiB", static_cast<double>(bytes) / 1024.0);
    else if (bytes < (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / 1048576.0);
    else std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / 1073741824.0);
    return buf;
}

std::string format_duration(double seconds) {
    char buf[64];
    if (seconds < 1e-3) std::snprintf(buf, sizeof buf, "%.1f us", seconds * 1e6);
    else if (seconds < 1.0) std::snprintf(buf, sizeof buf, "%.1f ms", seconds * 1e3);
    else std::snprintf(buf, sizeof buf, "%.2f s", seconds);
    return buf;
}

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

uint64_t process_id() {
#if defined(_WIN32)
    return GetCurrentProcessId();
#else
    return static_cast<uint64_t>(getpid());
#endif
}

std::string unique_name(std::string_view prefix) {
    static std::atomic<unsigned> counter{0};
    return std::string(prefix) + "-" + std::to_string(process_id()) + "-" + std::to_string(counter++);
}

std::string os_name_of(const std::string &name) {
    int32_t n = npipe_resolve_name(name.c_str(), nullptr, 0);  // the length, without the NUL
    if (n < 0) return name;
    std::string out(static_cast<size_t>(n) + 1, '\0');
    if (npipe_resolve_name(name.c_str(), out.data(), out.size()) != n) return name;
    out.resize(static_cast<size_t>(n));
    return out;
}

unsigned long long peer_pid_of(npipe_t pipe) {
    npipe_info_t info{};
    info.size = sizeof info;
    return npipe_get_info(pipe, &info) < 0 ? 0 : static_cast<unsigned long long>(info.peer_pid);
}

std::string describe_peer(npipe_t pipe, bool *known) {
    npipe_peer_t peer;
    std::memset(&peer, 0, sizeof peer);
    peer.size = sizeof peer;
    const int32_t rc = npipe_peer_identity(pipe, &peer);
    if (known) *known = rc != NPIPE_EAGAIN;
    const std::string pid = "pid " + std::to_string(peer_pid_of(pipe));
    if (rc == NPIPE_EAGAIN) return pid + ", user not known until it sends something";
    if (rc < 0) return pid + ", user unknown (" + npipe_last_error_message() + ")";
    const std::string user = peer.sid[0] ? std::string("user ") + peer.sid
                                         : "uid " + std::to_string(peer.uid) + " gid " + std::to_string(peer.gid);
    return pid + ", " + user + ((peer.flags & NPIPE_PEER_SAME_USER) ? ", this user" : ", another user");
}

const char *platform_name() {
#if defined(_WIN32)
    return "windows";
#else
    return "linux";
#endif
}

void set_binary_stdio() {
#if defined(_WIN32)
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
#endif
}

namespace {
bool is_tty(int fd) {
#if defined(_WIN32)
    return _isatty(fd) != 0;
#else
    return isatty(fd) != 0;
#endif
}
}  // namespace

bool stderr_is_tty() { return is_tty(2); }
bool stdout_is_tty() { return is_tty(1); }

bool write_stdout(const void *data, size_t len) {
    const char *p = static_cast<const char *>(data);
    while (len > 0) {
#if defined(_WIN32)
        unsigned int part = len > (1u << 30) ? (1u << 30) : static_cast<unsigned int>(len);
        int n = _write(1, p, part);
        if (n <= 0) return false;
#else
        ssize_t n = ::write(STDOUT_FILENO, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
#endif
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

uint64_t fnv1a(const void *data, size_t len, uint64_t h) {
    const auto *p = static_cast<const unsigned char *>(data);
    for (size_t i = 0; i < len; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

void Rng::fill(void *buf, size_t len) {
    auto *p = static_cast<unsigned char *>(buf);
    while (len >= 8) {
        uint64_t v = next();
        std::memcpy(p, &v, 8);
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = next();
        std::memcpy(p, &v, len);
    }
}

}  // namespace tool
