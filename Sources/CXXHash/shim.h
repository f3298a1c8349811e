#ifndef LB_CXXHASH_SHIM_H
#define LB_CXXHASH_SHIM_H
#include <xxhash.h>
#endif
