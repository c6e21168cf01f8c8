# PyTorch oracle for the host operators (included by tests/ops/CMakeLists.txt).
#
#   ops.oracle.generate   python3 oracle.py --out <build>/tests/ops/oracle   (CTest fixture setup)
#   test_oracle           every host operator, fp32 and bf16, forward and backward, against that output
#   test_vocab_parallel   vocab-parallel embedding and cross-entropy at np 1, 2, 4, 8 against the one-rank
#                         host operators (themselves checked against PyTorch by test_oracle)
#
# Nothing is cached in the source tree: the fixture regenerates the oracle before test_oracle runs.
# The oracle needs a Python with PyTorch (TESSERA_ORACLE_PYTHON, default /usr/bin/python3) and
# nlohmann_json; without either the oracle tests are left out, loudly.

tessera_add_test(test_vocab_parallel MPI SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_vocab_parallel.cpp LABELS ops)

if(EXISTS /usr/bin/python3)
  set(_tessera_oracle_python_default /usr/bin/python3)
else()
  find_package(Python3 COMPONENTS Interpreter QUIET)
  set(_tessera_oracle_python_default "${Python3_EXECUTABLE}")
endif()
set(TESSERA_ORACLE_PYTHON "${_tessera_oracle_python_default}" CACHE FILEPATH
    "Python interpreter with PyTorch that runs tests/ops/oracle.py")

find_package(nlohmann_json 3 CONFIG QUIET)
set(_tessera_oracle_torch OFF)
if(TESSERA_ORACLE_PYTHON)
  execute_process(COMMAND ${TESSERA_ORACLE_PYTHON} -c "import torch, numpy; print(torch.__version__)"
                  RESULT_VARIABLE _tessera_oracle_rc OUTPUT_VARIABLE _tessera_oracle_torch_version
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_tessera_oracle_rc EQUAL 0)
    set(_tessera_oracle_torch ON)
  endif()
endif()

if(NOT nlohmann_json_FOUND)
  message(WARNING "tessera: nlohmann_json not found; the PyTorch oracle test (test_oracle) is not built")
elseif(NOT _tessera_oracle_torch)
  message(WARNING "tessera: '${TESSERA_ORACLE_PYTHON}' cannot import torch and numpy; the PyTorch oracle "
                  "test (test_oracle) is not built (set TESSERA_ORACLE_PYTHON)")
else()
  message(STATUS "tessera: PyTorch oracle with torch ${_tessera_oracle_torch_version} (${TESSERA_ORACLE_PYTHON})")
  set(TESSERA_ORACLE_DIR ${CMAKE_CURRENT_BINARY_DIR}/oracle)

  add_test(NAME ops.oracle.generate
           COMMAND ${TESSERA_ORACLE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/oracle.py --out ${TESSERA_ORACLE_DIR})
  set_tests_properties(ops.oracle.generate PROPERTIES FIXTURES_SETUP tessera_ops_oracle LABELS ops TIMEOUT 300
                       ENVIRONMENT "OMP_NUM_THREADS=1")

  tessera_add_test(test_oracle SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_oracle.cpp LABELS ops)
  target_link_libraries(test_oracle PRIVATE nlohmann_json::nlohmann_json)
  target_compile_definitions(test_oracle PRIVATE TESSERA_ORACLE_DEFAULT_DIR="${TESSERA_ORACLE_DIR}")
  set_property(TEST test_oracle APPEND PROPERTY ENVIRONMENT "TESSERA_ORACLE_DIR=${TESSERA_ORACLE_DIR}")
  set_tests_properties(test_oracle PROPERTIES FIXTURES_REQUIRED tessera_ops_oracle)
endif()
