# Finite-difference gradient checks of every host operator's backward in float64, and the fp32 / bf16
# instantiations against the float64 one (issue 4).
tessera_add_test(test_gradcheck SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gradcheck.cpp LABELS ops)
