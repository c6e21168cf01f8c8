# Cross-compiling tessera's programs for aarch64 (Linux, glibc) with Debian's g++-aarch64-linux-gnu, and running
# them under qemu-user (CTest prepends CMAKE_CROSSCOMPILING_EMULATOR to every test whose command is a target).
#
#   scripts/deps_aarch64.sh      # the cross compiler, qemu-user-static and the arm64 sysroot
#   cmake -S . -B build-aarch64 --toolchain cmake/toolchains/aarch64-linux-gnu.cmake -DTESSERA_ARCH=armv8-a ...
#
# The compiler keeps its own C and C++ runtime headers and libraries (/usr/aarch64-linux-gnu, from the
# *-arm64-cross packages); the arm64 libraries the programs link against (OpenBLAS, Open MPI and what they
# need) come from the sysroot that scripts/deps_aarch64.sh unpacks from Debian's arm64 packages
# (TESSERA_AARCH64_SYSROOT, default /opt/tessera-aarch64-sysroot; Debian's multiarch layout inside it:
# usr/lib/aarch64-linux-gnu, usr/include/aarch64-linux-gnu). Under qemu the same sysroot provides the dynamic
# loader, glibc and every shared library (qemu-aarch64-static -L <sysroot>).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT TESSERA_AARCH64_SYSROOT)
  if(DEFINED ENV{TESSERA_AARCH64_SYSROOT})
    set(TESSERA_AARCH64_SYSROOT "$ENV{TESSERA_AARCH64_SYSROOT}")
  else()
    set(TESSERA_AARCH64_SYSROOT /opt/tessera-aarch64-sysroot)
  endif()
endif()
set(TESSERA_AARCH64_SYSROOT "${TESSERA_AARCH64_SYSROOT}" CACHE PATH "arm64 sysroot (scripts/deps_aarch64.sh)")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TESSERA_AARCH64_SYSROOT)
set(_tessera_sysroot "${TESSERA_AARCH64_SYSROOT}")
set(_tessera_multiarch "${_tessera_sysroot}/usr/lib/aarch64-linux-gnu")
if(NOT IS_DIRECTORY "${_tessera_multiarch}")
  message(FATAL_ERROR "tessera: no arm64 sysroot at ${_tessera_sysroot} (run scripts/deps_aarch64.sh, or set "
                      "TESSERA_AARCH64_SYSROOT)")
endif()

set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)

# Libraries and headers: only the sysroot's (never the host's x86_64 ones). Packages: also the host's, for the
# architecture-independent, header-only ones (doctest, nlohmann_json, CLI11 in /usr/include, which the cross
# compiler searches after its own directories). Programs (python3, mpiexec): the host's.
set(CMAKE_FIND_ROOT_PATH "${_tessera_sysroot}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# The sysroot's libraries need others of its libraries (libopenblas: libgfortran; libmpi: hwloc, PMIx, ...):
# tell the linker where those are. Nothing is embedded in the programs (no rpath).
foreach(_kind EXE SHARED MODULE)
  set(CMAKE_${_kind}_LINKER_FLAGS_INIT
      "-Wl,-rpath-link,${_tessera_multiarch} -Wl,-rpath-link,${_tessera_sysroot}/lib/aarch64-linux-gnu -Wl,-rpath-link,${_tessera_multiarch}/openmpi/lib")
endforeach()
set(CMAKE_SKIP_BUILD_RPATH ON)  # under qemu the loader finds them where a Debian arm64 system has them

# pkg-config: the sysroot's .pc files only, their -I and -L paths prefixed with the sysroot.
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_LIBDIR} "${_tessera_multiarch}/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_tessera_sysroot}")

# Open MPI: FindMPI would ask the host's mpicxx wrapper, which names the x86_64 libraries; skip it, and
# FindMPI takes the sysroot's mpi-cxx.pc (libmpi_cxx and libmpi, as the wrapper links natively). mpiexec stays
# the host's: it launches qemu, which runs the arm64 ranks (tests/CMakeLists.txt puts the emulator in that line).
set(MPI_SKIP_COMPILER_WRAPPER ON CACHE BOOL "")

# Run the programs under qemu-user, with the sysroot as the root of their absolute paths (loader, libraries);
# without qemu the programs still build, and CTest cannot run them.
find_program(TESSERA_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(TESSERA_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${TESSERA_QEMU_AARCH64};-L;${_tessera_sysroot}")
endif()
