# Checks the layering of include/tessera (run with cmake -P; fails with the offending lines):
#  1. a header includes only its own layer or layers below it:
#       core → layout → schedule → comm → ops → model → optim → train → plan
#  2. model/ and train/ name no MPI symbol: they communicate through the communicator concept
#     (comm/communicator.hpp), never through MPI directly.
# Usage: cmake -DTESSERA_INCLUDE=<repo>/include -P check_layers.cmake
set(layers core layout schedule comm ops model optim train plan)
file(GLOB_RECURSE headers RELATIVE ${TESSERA_INCLUDE}/tessera ${TESSERA_INCLUDE}/tessera/*/*.hpp
     ${TESSERA_INCLUDE}/tessera/*/*/*.hpp)
set(problems "")
foreach(h IN LISTS headers)
  string(REGEX MATCH "^[^/]+" layer "${h}")
  if(layer STREQUAL "generated")  # written by the build (the pre-compiled engine's path), not in git
    continue()
  endif()
  list(FIND layers "${layer}" mine)
  if(mine LESS 0)
    string(APPEND problems "  ${h}: directory '${layer}' is not one of the layers (${layers})\n")
    continue()
  endif()
  file(STRINGS ${TESSERA_INCLUDE}/tessera/${h} includes REGEX "^#include \"tessera/")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^#include \"tessera/([^/\"]+)/.*" "\\1" dep "${line}")
    list(FIND layers "${dep}" theirs)
    if(theirs GREATER mine)
      string(APPEND problems "  ${h}: includes ${dep}/ (layer ${dep} is above ${layer}): ${line}\n")
    endif()
  endforeach()
  if(layer STREQUAL "model" OR layer STREQUAL "train")
    file(STRINGS ${TESSERA_INCLUDE}/tessera/${h} mpi REGEX "MPI_|<mpi\\.h>")
    foreach(line IN LISTS mpi)
      string(APPEND problems "  ${h}: names MPI (use the communicator concept): ${line}\n")
    endforeach()
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "tessera layering violated:\n${problems}")
endif()
list(LENGTH headers n)
message(STATUS "tessera layering: ${n} headers, every include downward, no MPI in model/ or train/")
