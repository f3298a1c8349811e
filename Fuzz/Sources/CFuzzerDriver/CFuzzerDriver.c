// Header-only module: LLVMFuzzerRunDriver is defined by the libFuzzer runtime that -sanitize=fuzzer links.
#include "CFuzzerDriver.h"
