// Replays every file of one folder through a fuzz target's
// LLVMFuzzerTestOneInput, outside libFuzzer: the gcc and ASan trees run each
// target's regression inputs (tests/fuzz/regressions/<target>/) as a ctest.
// A missing or empty folder fails: a regression test that finds nothing to
// run would pass for ever.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s REGRESSION_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        std::fprintf(stderr, "fuzz regressions: %s is not a folder\n", dir.c_str());
        return 1;
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.is_regular_file()) files.push_back(entry.path());
    if (files.empty()) {
        std::fprintf(stderr, "fuzz regressions: no input in %s\n", dir.c_str());
        return 1;
    }
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "fuzz regressions: cannot read %s\n", path.c_str());
            return 1;
        }
        const std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
        std::fprintf(stderr, "fuzz regressions: %s (%zu bytes)\n", path.filename().c_str(),
                     bytes.size());
        // Through a heap copy of exactly the file's size, so that ASan sees a
        // read one past the end as libFuzzer would.
        std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
        LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
    }
    std::fprintf(stderr, "fuzz regressions: %zu inputs, no crash\n", files.size());
    return 0;
}
