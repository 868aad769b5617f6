#include <doctest.h>

#include <string>

#include "lib/core/names.hpp"
#include "lib/core/status.hpp"

using npipe::NamePlatform;
using npipe::NameRole;

namespace {
int32_t map(const char *name, NamePlatform platform, std::string &out, NameRole role = NameRole::server,
            const char *tmpdir = nullptr) {
    return npipe::map_pipe_name(name, role, platform, tmpdir, out);
}
}  // namespace

TEST_SUITE("core") {
    TEST_CASE("windows: bare and prefixed names name the same pipe") {
        std::string a, b, c;
        REQUIRE(map("foo", NamePlatform::windows, a) == 0);
        REQUIRE(map("\\\\.\\pipe\\foo", NamePlatform::windows, b) == 0);
        REQUIRE(map("\\\\.\\PIPE\\foo", NamePlatform::windows, c) == 0);
        CHECK(a == "\\\\.\\pipe\\foo");
        CHECK(b == a);
        CHECK(c == a);
    }

    TEST_CASE("windows: remote names pass through for clients only") {
        std::string out;
        CHECK(map("\\\\host\\pipe\\x", NamePlatform::windows, out, NameRole::client) == 0);
        CHECK(out == "\\\\host\\pipe\\x");
        CHECK(map("\\\\host\\pipe\\x", NamePlatform::windows, out, NameRole::server) == npipe::st::inval);
    }

    TEST_CASE("windows: 256 characters in all, never truncated") {
        std::string out;
        const std::string prefix = "\\\\.\\pipe\\";
        CHECK(map(std::string(256 - prefix.size(), 'a').c_str(), NamePlatform::windows, out) == 0);
        CHECK(out.size() == 256);
        CHECK(map(std::string(257 - prefix.size(), 'a').c_str(), NamePlatform::windows, out) == npipe::st::nametoolong);
    }

    TEST_CASE("linux: bare names map to TMPDIR/CoreFxPipe_<name> like .NET") {
        std::string out;
        REQUIRE(map("foo", NamePlatform::linux, out) == 0);
        CHECK(out == "/tmp/CoreFxPipe_foo");
        REQUIRE(map("foo", NamePlatform::linux, out, NameRole::server, "/var/tmp") == 0);
        CHECK(out == "/var/tmp/CoreFxPipe_foo");
        REQUIRE(map("\\\\.\\pipe\\foo", NamePlatform::linux, out, NameRole::client, "/x/") == 0);
        CHECK(out == "/x/CoreFxPipe_foo");
        REQUIRE(map("/run/my.sock", NamePlatform::linux, out) == 0);
        CHECK(out == "/run/my.sock");
    }

    TEST_CASE("linux: too long is NPIPE_ENAMETOOLONG, remote is NPIPE_ENOTSUP") {
        std::string out;
        CHECK(map(("/" + std::string(107, 'a')).c_str(), NamePlatform::linux, out) == npipe::st::nametoolong);
        CHECK(map(("/" + std::string(106, 'a')).c_str(), NamePlatform::linux, out) == 0);
        CHECK(map(std::string(100, 'a').c_str(), NamePlatform::linux, out) == npipe::st::nametoolong);
        CHECK(map("\\\\host\\pipe\\x", NamePlatform::linux, out, NameRole::client) == npipe::st::notsup);
    }

    TEST_CASE("invalid names are NPIPE_EINVAL on both platforms") {
        std::string out;
        for (auto platform : {NamePlatform::windows, NamePlatform::linux}) {
            CHECK(map(nullptr, platform, out) == npipe::st::inval);
            CHECK(map("", platform, out) == npipe::st::inval);
            CHECK(map("a/b", platform, out) == npipe::st::inval);
            CHECK(map("\\\\.\\pipe\\", platform, out) == npipe::st::inval);
            CHECK(map("bad\xC3(", platform, out) == npipe::st::inval);
            CHECK(map("\xED\xA0\x80", platform, out) == npipe::st::inval);  // a UTF-16 surrogate
            CHECK(map("caf\xC3\xA9", platform, out) == 0);
        }
        CHECK(map("/abs", NamePlatform::windows, out) == npipe::st::inval);
    }
}
