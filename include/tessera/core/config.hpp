// tessera/core/config.hpp — compiler portability for code shared by host and device.
#pragma once

#if defined(__CUDACC__)
#define TS_HD __host__ __device__
#define TS_DEVICE_COMPILE 1
#else
#define TS_HD
#define TS_DEVICE_COMPILE 0
#endif

#define TS_VERSION_MAJOR 0
#define TS_VERSION_MINOR 1
#define TS_VERSION_PATCH 0
