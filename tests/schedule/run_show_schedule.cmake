# cmake -DEXE=<show_schedule> -DARGS="a;b;..." [-DEXPECT_RC=n] [-DEXPECT_REGEX=rx] [-DOUT=file -DREF=file]
#       -P run_show_schedule.cmake
# Runs show_schedule, checks its exit code (default 0), that stdout+stderr match EXPECT_REGEX, and that
# the file it wrote (OUT) is byte-identical to REF.
if(NOT DEFINED EXPECT_RC)
  set(EXPECT_RC 0)
endif()
string(REPLACE "," ";" _args "${ARGS}")
execute_process(COMMAND ${EXE} ${_args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL EXPECT_RC)
  message(FATAL_ERROR "show_schedule ${ARGS}: exit code ${rc}, expected ${EXPECT_RC}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(DEFINED EXPECT_REGEX AND NOT "${out}${err}" MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "show_schedule ${ARGS}: output does not match '${EXPECT_REGEX}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(DEFINED OUT)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT} ${REF} RESULT_VARIABLE diff)
  if(NOT diff EQUAL 0)
    message(FATAL_ERROR "${OUT} differs from the committed ${REF}; regenerate docs/schedules (see docs/schedules.md)")
  endif()
endif()
