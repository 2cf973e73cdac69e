// Test helper for local_backend_test: allocates and touches memory.
//   backend_test_alloc MB new        operator new (uncaught std::bad_alloc aborts)
//   backend_test_alloc MB malloc86   malloc; exits kExitOutOfMemory (86) when it fails
// then exits 0. Further arguments (the backend's --payload FILE) are ignored.
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const size_t bytes = std::strtoull(argv[1], nullptr, 10) << 20;
  char* p;
  if (std::strcmp(argv[2], "malloc86") == 0) {
    p = static_cast<char*>(std::malloc(bytes));
    if (p == nullptr) return 86;
  } else {
    p = new char[bytes];
  }
  for (size_t i = 0; i < bytes; i += 4096) p[i] = static_cast<char>(i);
  // Keep the stores observable so they are not optimized away.
  volatile char sink = bytes > 0 ? p[bytes - 1] : 0;
  (void)sink;
  return 0;
}
