# Finite-difference gradient checks of every host operator's backward in float64, and the fp32 / bf16
# instantiations against the float64 one (issue 4).
tessera_add_test(test_gradcheck SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gradcheck.cpp LABELS ops)

# The host GEMM engines (OpenBLAS sgemm; bf16 through oneDNN's AVX512-BF16 matmul and the widened fallback)
# against a double reference over transposes, odd sizes, leading dimensions, α and β.
tessera_add_test(test_gemm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gemm.cpp LABELS ops)

# The host's vector paths (simd::vfloat at the target's width) against the scalar math they share.
tessera_add_test(test_vector_math SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_vector_math.cpp LABELS ops)
