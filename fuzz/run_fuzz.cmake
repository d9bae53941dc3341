# The fuzz_frontend test: a bounded libFuzzer run of frontend_fuzz.
#   cmake -DFUZZER=... -DSEEDS=dir -DEXAMPLES=dir -DDICT=file -DWORK=dir -DSECONDS=60 -P run_fuzz.cmake
# Corpus: the seeds in fuzz/seeds and every examples/losses/*.loss with the
# file-mode byte '0' in front; new inputs go to WORK/corpus, which starts empty
# each run (libFuzzer replays a whole corpus before it fuzzes, so a corpus kept
# between runs would eat a growing share of the time). Fails on any crash, leak,
# timeout or OOM (libFuzzer exits non-zero) and prints the report; otherwise
# prints the run's statistics on one line.
foreach(var FUZZER SEEDS EXAMPLES DICT WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzz.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK}/corpus ${WORK}/examples)
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/examples ${WORK}/artifacts)
file(GLOB examples ${EXAMPLES}/*.loss)
foreach(example ${examples})
  get_filename_component(name ${example} NAME)
  file(READ ${example} text)
  file(WRITE ${WORK}/examples/${name} "0${text}")
endforeach()
list(LENGTH examples example_count)

# UBSan stops at the first report (the target is built with -fno-sanitize-recover) with a stack.
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=0")
execute_process(
  COMMAND ${FUZZER}
    -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=4096 -max_len=8192
    -dict=${DICT} -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/
    ${WORK}/corpus ${SEEDS} ${WORK}/examples
  RESULT_VARIABLE status
  OUTPUT_VARIABLE log
  ERROR_VARIABLE log)
file(WRITE ${WORK}/fuzz.log "${log}")

if(NOT status EQUAL 0)
  # The report is at the end; the start of a long log is only progress lines.
  string(LENGTH "${log}" length)
  if(length GREATER 20000)
    math(EXPR from "${length} - 20000")
    string(SUBSTRING "${log}" ${from} -1 log)
    set(log "...\n${log}")
  endif()
  message("${log}")
  message(FATAL_ERROR "fuzz_frontend: frontend_fuzz failed (exit status ${status}); "
                      "full log ${WORK}/fuzz.log, reproducer in ${WORK}/artifacts/")
endif()

function(stat name out)
  string(REGEX MATCH "stat::${name}: *([0-9]+)" _ "${log}")
  set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()
stat(number_of_executed_units runs)
stat(average_exec_per_sec per_second)
stat(new_units_added new_units)
stat(peak_rss_mb rss)
string(REGEX MATCHALL "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" progress "${log}")
list(POP_BACK progress last)
string(REGEX MATCH "cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)" _ "${last}")
message(STATUS "fuzz_frontend: ${runs} executions in ${SECONDS} s, ${per_second} exec/s, "
               "coverage ${CMAKE_MATCH_1} edges / ${CMAKE_MATCH_2} features, corpus ${CMAKE_MATCH_3} inputs "
               "(${new_units} new), peak RSS ${rss} MB, ${example_count} example files")
