#include <doctest.h>

#include <cstring>

#include "lib/core/error_detail.hpp"
#include "lib/core/status.hpp"

TEST_SUITE("core") {
    TEST_CASE("status table gives every code a name and a text") {
        CHECK(std::strcmp(npipe::status_name(npipe::st::again), "NPIPE_EAGAIN") == 0);
        CHECK(std::strcmp(npipe::status_name(npipe::st::io), "NPIPE_EIO") == 0);
        CHECK(std::strcmp(npipe::status_name(-12345), "NPIPE_EUNKNOWN") == 0);
        CHECK(std::strcmp(npipe::status_text(npipe::st::ok), "success") == 0);
        CHECK(std::strcmp(npipe::status_text(-12345), "unknown error") == 0);
    }

    TEST_CASE("error detail is thread-local, never NULL, and keeps the specific message") {
        CHECK(npipe::last_error_message() != nullptr);
        CHECK(npipe::fail(npipe::st::inval, "pipe name is empty", 87) == npipe::st::inval);
        CHECK(std::strcmp(npipe::last_error_message(), "pipe name is empty") == 0);
        CHECK(npipe::last_os_error() == 87u);
        CHECK(npipe::failf(npipe::st::busy, 0, "%d tokens", 64) == npipe::st::busy);
        CHECK(std::strcmp(npipe::last_error_message(), "64 tokens") == 0);
    }
}
