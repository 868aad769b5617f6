// Pipe-name rules (the header's "Names"), as pure string functions so both platforms' mappings can be
// tested anywhere. "foo" and "\\.\pipe\foo" name the same pipe everywhere.
//   Windows: a local name becomes \\.\pipe\<name> (at most 256 characters in all); a remote
//            \\server\pipe\name passes through for clients.
//   Linux:   a local name becomes $TMPDIR/CoreFxPipe_<name> (/tmp/ when TMPDIR is unset), the
//            socket path .NET's System.IO.Pipes uses; a name starting with '/' is the socket path
//            itself; the result must fit sockaddr_un.sun_path (107 bytes + NUL).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace npipe {

enum class NameRole { server, client };
enum class NamePlatform { windows, linux };

#if defined(_WIN32)
constexpr NamePlatform kThisPlatform = NamePlatform::windows;
#else
constexpr NamePlatform kThisPlatform = NamePlatform::linux;
#endif

constexpr size_t kWindowsMaxPipeName = 256;  // characters of the full \\.\pipe\name
constexpr size_t kUnixMaxSocketPath = 107;   // sizeof(sockaddr_un.sun_path) - 1

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(const char *s, size_t len) noexcept;

// Maps a caller's pipe name to the OS name on `platform`. Returns st::ok, or fails (with a specific
// message) with st::inval, st::nametoolong or st::notsup. `tmpdir` is the value of TMPDIR (NULL or
// empty: /tmp); it is ignored on Windows.
int32_t map_pipe_name(const char *name, NameRole role, NamePlatform platform, const char *tmpdir, std::string &os_name);

// map_pipe_name for this platform and this process's TMPDIR.
int32_t map_pipe_name(const char *name, NameRole role, std::string &os_name);

}  // namespace npipe
