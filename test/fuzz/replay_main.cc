// A main() for the fuzz harnesses without libFuzzer: runs
// LLVMFuzzerTestOneInput once on every file named on the command line (a
// directory: every file in it, in name order).  "make check" builds each
// harness with it (test/fuzz/replay_NAME, any compiler, with the sanitizers
// of the build) and test/fuzz/replay_corpora.sh feeds it the seed corpora,
// so an input that once crashed a parser fails the test suite again if the
// defect comes back, without clang or fuzzing time.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool is_dir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Files of a directory (not recursive), sorted so that runs are repeatable.
bool list_dir(const std::string& dir, std::vector<std::string>& out) {
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = dir + "/" + e->d_name;
    if (!is_dir(path)) names.push_back(path);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  out.insert(out.end(), names.begin(), names.end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (is_dir(arg)) {
      if (!list_dir(arg, files)) {
        fprintf(stderr, "replay: cannot read directory %s: %s\n", arg.c_str(), strerror(errno));
        return 2;
      }
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) {
    fprintf(stderr, "usage: %s FILE|DIR...  (runs the harness once on each input)\n", argv[0]);
    return 2;
  }
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      fprintf(stderr, "replay: cannot open %s\n", path.c_str());
      return 2;
    }
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Named before it runs: a crash's report then follows the input's name.
    fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), data.size());
    // A copy of exactly the input's size, as libFuzzer passes it, so that
    // AddressSanitizer sees any read past its end.
    std::vector<uint8_t> buf(data.begin(), data.end());
    LLVMFuzzerTestOneInput(buf.empty() ? nullptr : buf.data(), buf.size());
  }
  printf("%zu inputs\n", files.size());
  return 0;
}
