/* The public header compiles as strict C99 (-std=c99 -pedantic -Wall -Wextra -Werror, set by
 * Meson) and its macros agree with the library it is linked against. */
#include <npipe.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char expected[32];
    uint32_t v = npipe_version();
    int failures = 0;
    snprintf(expected, sizeof expected, "%d.%d.%d", NPIPE_VERSION_MAJOR, NPIPE_VERSION_MINOR, NPIPE_VERSION_PATCH);
    if (v != ((uint32_t)NPIPE_VERSION_MAJOR << 16 | (uint32_t)NPIPE_VERSION_MINOR << 8 | (uint32_t)NPIPE_VERSION_PATCH)) {
        fprintf(stderr, "npipe_version() = 0x%x does not match the header\n", (unsigned)v);
        failures++;
    }
    if (strcmp(npipe_version_string(), expected) != 0) {
        fprintf(stderr, "npipe_version_string() = %s, header says %s\n", npipe_version_string(), expected);
        failures++;
    }
    if (strcmp(npipe_err_name(NPIPE_EMSGSIZE), "NPIPE_EMSGSIZE") != 0) failures++;
    if (sizeof(npipe_info_t) != 80 || sizeof(npipe_event_t) != 16) failures++;
    printf("header_c99: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
