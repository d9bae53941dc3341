# Installing lossforge: the `lossforge` executable, and the embedding API
# (include/lossforge/lossforge.hpp + liblossforge.so) with a CMake package, so
# that another project writes
#   find_package(lossforge REQUIRED)
#   target_link_libraries(app PRIVATE lossforge::lossforge)
# against an install prefix (CMAKE_PREFIX_PATH). examples/embed/ is such a project.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LOSSFORGE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/lossforge)

if(TARGET lossforge)
  install(TARGETS lossforge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(TARGETS lossforge_library EXPORT lossforgeTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/lossforge/lossforge.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lossforge)
install(EXPORT lossforgeTargets NAMESPACE lossforge:: DESTINATION ${LOSSFORGE_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/lossforgeConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lossforgeConfig.cmake
  INSTALL_DESTINATION ${LOSSFORGE_INSTALL_CMAKEDIR})
# 0.x: minor versions may break the API (lossforge::api::kApiVersion says which).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lossforgeConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lossforgeConfig.cmake ${PROJECT_BINARY_DIR}/lossforgeConfigVersion.cmake
        DESTINATION ${LOSSFORGE_INSTALL_CMAKEDIR})

# lossforge_add_losses() (ahead-of-time compilation at build time), found
# through the package; it runs the installed `lossforge compile`.
file(RELATIVE_PATH LOSSFORGE_AOT_BIN_RELATIVE "/prefix/${LOSSFORGE_INSTALL_CMAKEDIR}" "/prefix/${CMAKE_INSTALL_BINDIR}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/LossforgeAot.cmake.in ${PROJECT_BINARY_DIR}/LossforgeAot.cmake @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/LossforgeAot.cmake DESTINATION ${LOSSFORGE_INSTALL_CMAKEDIR})
