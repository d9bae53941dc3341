# One line per optional component: its test folder and the libraries it links.
lossforge_add_test_folder(data lossforge_data)
if(TARGET lossforge_search)
  lossforge_add_test_folder(search)
endif()
if(TARGET lossforge_detectors)
  lossforge_add_test_folder(detectors lossforge_detectors)
  add_dependencies(train_test lossforge-train)  # train_test runs `lossforge train`
endif()
lossforge_add_test_folder(aot ${CMAKE_DL_LIBS})  # generated C++ vs the interpreter; `lossforge compile`
include(${CMAKE_CURRENT_SOURCE_DIR}/aot/aot.cmake)  # aot_install: examples/aot_train against the installed package
if(LOSSFORGE_HAVE_CUDA)
  lossforge_add_test_folder(cuda ${CMAKE_DL_LIBS})  # NVRTC compiles here; GPU tests skip without a device
endif()
if(TARGET lossforge_charts)  # the PNG checks decode with cairo where it was found
  lossforge_add_test_folder(charts lossforge_charts $<TARGET_NAME_IF_EXISTS:PkgConfig::CAIRO>)
endif()
if(TARGET lossforge_repl)  # scripted sessions; one under tmux where tmux and readline are there
  lossforge_add_test_folder(repl lossforge_repl $<TARGET_NAME_IF_EXISTS:PkgConfig::CAIRO>)
  find_program(TMUX_EXECUTABLE tmux)
  if(TMUX_EXECUTABLE AND LOSSFORGE_HAVE_READLINE)
    lossforge_add_test_folder(repl_terminal)
  endif()
endif()
