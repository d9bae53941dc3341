# aot_install: `cmake --install` to a fresh prefix, then examples/aot_train built
# against it (find_package(lossforge) + lossforge_add_losses) and run: it must
# train (tests/aot/aot_install.cmake).
add_test(NAME aot_install
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                 -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/aot_install "-DGENERATOR=${CMAKE_GENERATOR}"
                 -DCXX_COMPILER=${CMAKE_CXX_COMPILER} -P ${CMAKE_CURRENT_LIST_DIR}/aot_install.cmake)
set_tests_properties(aot_install PROPERTIES LABELS "install" TIMEOUT 600)
