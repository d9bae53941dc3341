# embed_install: installs this build to a fresh prefix, then configures,
# builds and runs examples/embed against the installed package only
# (find_package(lossforge)), and checks what the example prints.
#
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... -DCXX_COMPILER=... -P embed_install.cmake
foreach(variable BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT ${variable})
    message(FATAL_ERROR "embed_install.cmake: -D${variable}=... is required")
  endif()
endforeach()

function(run_step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${name} failed (${status}):\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run_step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

foreach(installed include/lossforge/lossforge.hpp)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "not installed: ${installed}")
  endif()
endforeach()
file(GLOB_RECURSE package_config ${prefix}/*/lossforgeConfig.cmake)
if(NOT package_config)
  message(FATAL_ERROR "no lossforgeConfig.cmake under ${prefix}")
endif()

run_step("configuring examples/embed"
  ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/embed -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
# It must have used the package just installed, not a build tree or another install.
file(STRINGS ${WORK_DIR}/build/CMakeCache.txt found_dir REGEX "^lossforge_DIR:")
if(NOT found_dir MATCHES "${prefix}/")
  message(FATAL_ERROR "examples/embed found lossforge elsewhere: ${found_dir}")
endif()
run_step("building examples/embed" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
# Its kernel cache goes to the work folder, not the user's ~/.cache.
run_step("running embed_example" ${CMAKE_COMMAND} -E env LOSSFORGE_CACHE_DIR=${WORK_DIR}/cache ${WORK_DIR}/build/embed_example ${SOURCE_DIR}/examples/losses/focal.loss)
message("${step_output}")

foreach(expected
    "compiled sigmoid_focal \\(backend: (interpreter|llvm)\\)"
    "input x \\(pred\\)"
    "param gamma = 2"
    "mean loss fell from [0-9.]+ to [0-9.]+"
    "broken: error \\(syntax\\): <text>:1:[0-9]+: error: unknown function 'sigmod'"
    "short input: error \\(invalid argument\\)")
  if(NOT step_output MATCHES "${expected}")
    message(FATAL_ERROR "embed_example output lacks /${expected}/")
  endif()
endforeach()
