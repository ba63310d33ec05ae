// The part of CoreFoundation that metal-cpp's headers name (Foundation/
// NSTypes.hpp, Metal/MTLCommandBuffer.hpp, Metal/MTLDrawable.hpp), declared
// as Apple's SDK declares it: the types take part in the mangled names of the
// MTL:: symbols that the host check compares with libmlx.dylib.
#pragma once

typedef double CFTimeInterval;
typedef const void* CFTypeRef;
