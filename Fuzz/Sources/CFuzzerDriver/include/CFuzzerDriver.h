#ifndef LB_CFUZZERDRIVER_H
#define LB_CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's documented entry for programs that have their own main (compiler-rt FuzzerInterface.h).
/// SwiftPM links every executable with `--defsym main=<Module>_main`, which replaces libFuzzer's own main,
/// so the harness's main calls this instead.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
