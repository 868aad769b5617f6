// The doctest runner for every suite. Meson runs this binary once per suite
// (--test-suite=<name>), natively and under Wine.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest.h>

int main(int argc, char **argv) {
    doctest::Context context;
    context.setOption("no-breaks", true);
    context.applyCommandLine(argc, argv);
    return context.run();
}
