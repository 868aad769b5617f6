// The subcommands; each parses its own arguments and returns the process exit code.
#pragma once
#include <string>
#include <vector>

namespace tool {

int cmd_listen(const std::vector<std::string> &args);
int cmd_connect(const std::vector<std::string> &args);
int cmd_demo(const std::vector<std::string> &args);
int cmd_bench(const std::vector<std::string> &args);
int cmd_bench_burst(const std::vector<std::string> &args);  // `bench burst ...`
int cmd_bench_open(const std::vector<std::string> &args);  // `bench open ...`

// The exit-code table, shared by every --help.
extern const char *const kExitCodeHelp;

}  // namespace tool
