# Installs this build to a fresh prefix, configures examples/aot_train against
# the installed package only, builds it (lossforge_add_losses runs the installed
# `lossforge compile`), runs it, and checks that the loss fell.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... -DCXX_COMPILER=... -P aot_install.cmake
foreach(variable BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT ${variable})
    message(FATAL_ERROR "aot_install.cmake: -D${variable}=... is required")
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
file(GLOB_RECURSE aot_module ${prefix}/*/LossforgeAot.cmake)
if(NOT aot_module)
  message(FATAL_ERROR "no LossforgeAot.cmake under ${prefix}")
endif()

run_step("configuring examples/aot_train"
  ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/aot_train -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
file(STRINGS ${WORK_DIR}/build/CMakeCache.txt found_exe REGEX "^LOSSFORGE_EXECUTABLE:")
if(NOT found_exe MATCHES "${prefix}/")
  message(FATAL_ERROR "examples/aot_train uses a lossforge outside the prefix: ${found_exe}")
endif()
run_step("building examples/aot_train" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
foreach(generated focal.hpp focal.cpp focal.cu)
  file(GLOB_RECURSE found ${WORK_DIR}/build/*/${generated})
  if(NOT found)
    message(FATAL_ERROR "lossforge_add_losses did not generate ${generated}")
  endif()
endforeach()
# The binary links nothing of lossforge.
run_step("ldd" ldd ${WORK_DIR}/build/aot_train)
if(step_output MATCHES "lossforge|antlr|LLVM")
  message(FATAL_ERROR "aot_train links lossforge libraries:\n${step_output}")
endif()
run_step("running aot_train" ${WORK_DIR}/build/aot_train)
message("${step_output}")
if(NOT step_output MATCHES "mean loss fell from [0-9.]+ to [0-9.]+ in [0-9]+ steps")
  message(FATAL_ERROR "aot_train output lacks the training line")
endif()
