// Shared pieces of the npipe tool: exit codes, the one-line error report, small parsers and
// platform odds and ends. Everything here uses only the public C API.
#pragma once
#include <npipe.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tool {

// Exit codes scripts can rely on (listed in `npipe --help`).
enum Exit : int {
    exit_ok = 0,
    exit_other = 1,      // any other failure (I/O error, peer vanished mid-transfer, check failed)
    exit_usage = 2,      // bad command line
    exit_bad_name = 3,   // NPIPE_EINVAL / NPIPE_ENAMETOOLONG / NPIPE_ENOTSUP for a pipe name
    exit_no_pipe = 4,    // NPIPE_ENOENT: no server of that name
    exit_busy = 5,       // NPIPE_EBUSY / NPIPE_ETIMEDOUT: all instances busy, or the wait ran out
    exit_denied = 6,     // NPIPE_EACCES: access denied / connection refused by a security check
    exit_exists = 7,     // NPIPE_EEXIST: the name is taken (--first-instance, or owned elsewhere)
};

// The exit code for a failing npipe status. `name_op` marks calls whose only caller-supplied
// argument that can be invalid is the pipe name (npipe_create, npipe_open).
int exit_code_for(int rc, bool name_op);

// A failure captured on the thread where it happened (npipe_last_error_message is thread-local).
struct Failure {
    int rc = NPIPE_OK;
    bool name_op = false;
    std::string what;     // "cannot create pipe \"foo\""
    std::string message;  // npipe_last_error_message() at the time of the failure
    bool failed() const { return rc < 0 || !what.empty(); }
    // Prints "npipe: <what>: <message> (<NPIPE_E...>)" to stderr and returns the exit code.
    int report() const;
};
Failure capture(int rc, std::string what, bool name_op = false);
// A failure that is not an npipe status (a data check, a stdio error): exit code 1.
Failure plain_failure(std::string what, std::string message);

// "npipe <cmd>: <msg>" + a hint, returns exit_usage.
int usage_error(std::string_view cmd, std::string_view msg);

// Command line: options are declared per command; "--opt value" and "--opt=value" both work,
// "--" ends the options. Unknown options and missing values are usage errors.
struct OptionSpec {
    std::string_view name;  // without the leading "--"
    bool takes_value;
    char short_name = 0;    // e.g. 'h' for -h
};
struct ParsedArgs {
    std::vector<std::pair<std::string, std::string>> options;  // in command-line order
    std::vector<std::string> positional;
    bool has(std::string_view name) const;
    std::optional<std::string> value(std::string_view name) const;  // the last one given
};
// Returns nullopt after printing a usage error.
std::optional<ParsedArgs> parse_args(std::string_view cmd, const std::vector<std::string> &args,
                                     const std::vector<OptionSpec> &specs);

// "64K", "64KiB", "1M", "1MiB", "2G", "1GiB", "4096": binary units. nullopt if malformed.
std::optional<uint64_t> parse_size(std::string_view text);
std::optional<int64_t> parse_int(std::string_view text);
// Parses option `name` as size / integer within [lo, hi]; prints a usage error and returns
// false when it is malformed. Leaves `out` alone when the option is absent.
bool size_option(std::string_view cmd, const ParsedArgs &args, std::string_view name, uint64_t lo, uint64_t hi,
                 uint64_t &out);
bool int_option(std::string_view cmd, const ParsedArgs &args, std::string_view name, int64_t lo, int64_t hi,
                int64_t &out);

std::string format_bytes(uint64_t bytes);  // "1.50 MiB"
std::string format_duration(double seconds);  // "12.3 ms"

double now_seconds();          // monotonic
uint64_t process_id();
std::string unique_name(std::string_view prefix);  // "<prefix>-<pid>-<n>"
std::string os_name_of(const std::string &name);   // npipe_resolve_name, or the name itself
unsigned long long peer_pid_of(npipe_t pipe);      // npipe_get_info's peer_pid, 0 if unknown
// Who is on the other end, for --verbose: "pid 123, uid 1000 gid 1000, this user" or "pid 123,
// user S-1-5-21-..., another user". `known` is false while a Windows server cannot tell yet (its
// client has sent nothing); the text says so then.
std::string describe_peer(npipe_t pipe, bool *known = nullptr);
const char *platform_name();   // "windows" / "linux"

void set_binary_stdio();       // Windows: _setmode(_O_BINARY) on stdin/stdout; no-op elsewhere
bool stderr_is_tty();
bool stdout_is_tty();
// Blocking write of everything to stdout; false on failure (reader gone).
bool write_stdout(const void *data, size_t len);

// FNV-1a 64, chained: checksum(data, n, checksum(prev...)).
uint64_t fnv1a(const void *data, size_t len, uint64_t h = 1469598103934665603ull);

// A poll closed at scope exit (h stays 0 if npipe_poll_create failed).
struct Poll {
    npipe_poll_t h = 0;
    Poll() { npipe_poll_create(&h); }
    Poll(const Poll &) = delete;
    Poll &operator=(const Poll &) = delete;
    ~Poll() {
        if (h) npipe_poll_close(h);
    }
};

// Deterministic pseudo-random bytes (xorshift64*), for checked payloads.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 2685821657736338717ull;
    }
    void fill(void *buf, size_t len);
};

}  // namespace tool
