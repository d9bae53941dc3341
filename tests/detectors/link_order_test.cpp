// Programs that link LibTorch must find libstdc++'s definitions first.
// PyTorch 2.5 and later export a statically linked std::filesystem from
// libtorch.so (pytorch/pytorch#133437); a program that searched libtorch.so
// first crashed in std::filesystem::remove_all (runtime/torch/CMakeLists.txt
// names libstdc++ first). Debian's LibTorch 1.13 exports no such copy, so the
// order itself is checked here, and the binding where it can be seen.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace {

// The loaded objects in the dynamic linker's search order (the program first).
std::vector<std::string> search_order() {
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        static_cast<std::vector<std::string>*>(out)->emplace_back(info->dlpi_name ? info->dlpi_name : "");
        return 0;
      },
      &names);
  return names;
}

std::size_t position_of(const std::vector<std::string>& names, const std::string& library) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (std::filesystem::path(names[i]).filename().string().starts_with(library)) return i;
  return names.size();
}

TEST(LinkOrder, LibstdcxxIsSearchedBeforeLibTorch) {
  const auto names = search_order();
  const auto libstdcxx = position_of(names, "libstdc++.so");
  const auto libtorch = position_of(names, "libtorch");
  ASSERT_LT(libstdcxx, names.size()) << "libstdc++ is not loaded";
  ASSERT_LT(libtorch, names.size()) << "this test must link LibTorch";
  EXPECT_LT(libstdcxx, libtorch) << names[libtorch] << " is searched before " << names[libstdcxx];
}

TEST(LinkOrder, FilesystemBindsToLibstdcxx) {
  using RemoveAll = std::uintmax_t (*)(const std::filesystem::path&);
  const RemoveAll remove_all = &std::filesystem::remove_all;
  Dl_info where{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(remove_all), &where), 0);
  ASSERT_NE(where.dli_fname, nullptr);
  EXPECT_TRUE(std::filesystem::path(where.dli_fname).filename().string().starts_with("libstdc++.so"))
      << "std::filesystem::remove_all comes from " << where.dli_fname;
}

}  // namespace
