import CFuzzerDriver
import Glibc

// SwiftPM links executables with `--defsym main=H2Fuzz_main`, which hides libFuzzer's main (the binary
// would exit 0 without fuzzing anything), so this main hands control to libFuzzer's driver explicitly.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
Glibc.exit(
    LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        // libFuzzer may pass a null pointer for the empty input.
        guard let data else { return withUnsafePointer(to: UInt8(0)) { fuzz($0, 0) } }
        return fuzz(data, size)
    })
