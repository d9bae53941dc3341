# Script-driven tests (included by tests/CMakeLists.txt).

# torch_reference: the published losses and baselines evaluated by `lossforge eval`
# against the same formulas written independently in PyTorch (tests/reference/).
# It needs Debian's python3-torch, hence /usr/bin/python3 and not the first
# python3 on PATH. Without torch the test is still registered, and fails saying
# why: a reference check that silently disappears is worse than a red one.
set(LOSSFORGE_REFERENCE_PYTHON /usr/bin/python3 CACHE FILEPATH "Python with torch for tests/reference")
execute_process(
  COMMAND ${LOSSFORGE_REFERENCE_PYTHON} -c "import torch"
  RESULT_VARIABLE lossforge_torch_missing
  OUTPUT_QUIET ERROR_QUIET)
if(lossforge_torch_missing EQUAL 0)
  add_test(NAME torch_reference
           COMMAND ${LOSSFORGE_REFERENCE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/torch_reference.py
                   --cli $<TARGET_FILE:lossforge> --examples ${PROJECT_SOURCE_DIR}/examples/losses)
else()
  message(WARNING "${LOSSFORGE_REFERENCE_PYTHON} cannot import torch: the torch_reference test will fail "
                  "(python3-torch missing: run scripts/setup.sh)")
  add_test(NAME torch_reference
           COMMAND sh -c "echo 'python3-torch missing: run scripts/setup.sh' >&2; exit 1")
endif()
set_tests_properties(torch_reference PROPERTIES LABELS "reference" TIMEOUT 300)

# embed_test uses only <lossforge/lossforge.hpp>, through the shared library.
if(TARGET embed_test)
  target_link_libraries(embed_test PRIVATE lossforge_library)
endif()
# embed_install: `cmake --install` to a fresh prefix, then examples/embed built
# against it with find_package(lossforge) and run (tests/embed_install.cmake).
add_test(NAME embed_install
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                 -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/embed_install "-DGENERATOR=${CMAKE_GENERATOR}"
                 -DCXX_COMPILER=${CMAKE_CXX_COMPILER} -P ${CMAKE_CURRENT_SOURCE_DIR}/embed_install.cmake)
set_tests_properties(embed_install PROPERTIES LABELS "install" TIMEOUT 600)
