// IOSurfaceRef as Apple's SDK declares it (a pointer to the opaque struct
// __IOSurface), for metal-cpp's MTLDevice.hpp and MTLTexture.hpp.
#pragma once

typedef struct __IOSurface* IOSurfaceRef;
