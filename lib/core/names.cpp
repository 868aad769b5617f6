#include "names.hpp"

#include <cstdlib>
#include <cstring>

#include "error_detail.hpp"
#include "status.hpp"

namespace npipe {
namespace {

// Length in UTF-16 code units of well-formed UTF-8: Windows limits pipe names in characters.
size_t utf16_length(const std::string &s) {
    size_t units = 0;
    for (unsigned char c : s) {
        if ((c & 0xC0u) != 0x80u) units += (c >= 0xF0u) ? 2 : 1;
    }
    return units;
}

bool starts_with_ci(const char *s, const char *prefix) {
    for (; *prefix; ++s, ++prefix) {
        char a = *s, b = *prefix;
        if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

// Splits "\\server\pipe\name" into server and name; false if `name` is not of that form.
bool split_unc_pipe_name(const char *name, std::string &server, std::string &pipe) {
    if (name[0] != '\\' || name[1] != '\\') return false;
    const char *server_begin = name + 2;
    const char *server_end = std::strchr(server_begin, '\\');
    if (!server_end || server_end == server_begin) return false;
    if (!starts_with_ci(server_end, "\\pipe\\")) return false;
    server.assign(server_begin, server_end);
    pipe.assign(server_end + 6);
    return true;
}

}  // namespace

bool is_valid_utf8(const char *s, size_t len) noexcept {
    const auto *p = reinterpret_cast<const unsigned char *>(s);
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80u) {
            ++i;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c & 0xE0u) == 0xC0u) {
            n = 1;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0u) == 0xE0u) {
            n = 2;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8u) == 0xF0u) {
            n = 3;
            cp = c & 0x07u;
        } else
            return false;
        if (len - i <= n) return false;
        for (size_t k = 1; k <= n; ++k) {
            if ((p[i + k] & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if ((n == 1 && cp < 0x80u) || (n == 2 && cp < 0x800u) || (n == 3 && cp < 0x10000u)) return false;
        if (cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return false;
        i += n + 1;
    }
    return true;
}

int32_t map_pipe_name(const char *name, NameRole role, NamePlatform platform, const char *tmpdir,
                      std::string &os_name) {
    if (!name) return fail(st::inval, "pipe name is NULL");
    const size_t len = std::strlen(name);
    if (len == 0) return fail(st::inval, "pipe name is empty");
    if (!is_valid_utf8(name, len)) return fail(st::inval, "pipe name is not valid UTF-8");

    std::string server, local;
    if (split_unc_pipe_name(name, server, local)) {
        if (local.empty()) return fail(st::inval, "pipe name is empty after the \\\\.\\pipe\\ prefix");
        if (server != ".") {
            if (platform == NamePlatform::linux)
                return fail(st::notsup, "remote pipe names (\\\\server\\pipe\\name) are not supported on Linux");
            if (role == NameRole::server)
                return fail(st::inval, "a server can only create local pipes (\\\\.\\pipe\\name)");
            if (utf16_length(name) > kWindowsMaxPipeName)
                return failf(st::nametoolong, 0, "pipe name longer than %u characters",
                             static_cast<unsigned>(kWindowsMaxPipeName));
            os_name = name;
            return st::ok;
        }
    } else if (name[0] == '/' && platform == NamePlatform::linux) {
        if (name[len - 1] == '/') return fail(st::inval, "socket path ends with '/'");
        if (len > kUnixMaxSocketPath)
            return failf(st::nametoolong, 0, "socket path longer than %u bytes",
                         static_cast<unsigned>(kUnixMaxSocketPath));
        os_name = name;
        return st::ok;
    } else {
        local = name;
    }

    if (local.find('/') != std::string::npos)
        return fail(st::inval, platform == NamePlatform::linux
                                   ? "pipe name contains '/' (only a full socket path starting with '/' may)"
                                   : "pipe name contains '/'");

    if (platform == NamePlatform::windows) {
        os_name = "\\\\.\\pipe\\" + local;
        if (utf16_length(os_name) > kWindowsMaxPipeName)
            return failf(st::nametoolong, 0, "pipe name longer than %u characters",
                         static_cast<unsigned>(kWindowsMaxPipeName));
        return st::ok;
    }
    std::string dir = (tmpdir && *tmpdir) ? tmpdir : "/tmp/";
    if (dir.back() != '/') dir += '/';
    os_name = dir + "CoreFxPipe_" + local;
    if (os_name.size() > kUnixMaxSocketPath)
        return failf(st::nametoolong, 0, "socket path %s is longer than %u bytes (use a shorter name or TMPDIR)",
                     os_name.c_str(), static_cast<unsigned>(kUnixMaxSocketPath));
    return st::ok;
}

int32_t map_pipe_name(const char *name, NameRole role, std::string &os_name) {
    const char *tmpdir = kThisPlatform == NamePlatform::linux ? std::getenv("TMPDIR") : nullptr;
    return map_pipe_name(name, role, kThisPlatform, tmpdir, os_name);
}

}  // namespace npipe
