import Glibc
import LBCore

// Counting heap allocations around a lookup loop, on glibc.
//
// glibc 2.34 removed the malloc hooks from libc proper but keeps them working in libc_malloc_debug.so.0
// (shipped in libc6; see the glibc 2.34 NEWS and the "Memory Allocation Tunables"/mcheck docs): with that
// library preloaded, every malloc/calloc, realloc and memalign/posix_memalign/aligned_alloc first calls
// `__malloc_hook` / `__realloc_hook` / `__memalign_hook`. So the bench re-runs itself with
// LD_PRELOAD=libc_malloc_debug.so.0 and `--count-allocations`; the child installs counting hooks (each
// one unhooks itself around the real call, the documented hook pattern) and reports allocations per
// lookup. The timed bench runs without the preload, so its numbers are not skewed by the debug allocator.

private typealias MallocHook = @convention(c) (Int, UnsafeRawPointer?) -> UnsafeMutableRawPointer?
private typealias ReallocHook =
    @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?) -> UnsafeMutableRawPointer?
private typealias MemalignHook = @convention(c) (Int, Int, UnsafeRawPointer?) -> UnsafeMutableRawPointer?

/// Hook state; the child measures on one thread, so plain globals are enough.
private enum Hooks {
    nonisolated(unsafe) static var count = 0
    nonisolated(unsafe) static var mallocSlot: UnsafeMutablePointer<MallocHook?>?
    nonisolated(unsafe) static var reallocSlot: UnsafeMutablePointer<ReallocHook?>?
    nonisolated(unsafe) static var memalignSlot: UnsafeMutablePointer<MemalignHook?>?
}

private func countingMalloc(_ size: Int, _ caller: UnsafeRawPointer?) -> UnsafeMutableRawPointer? {
    Hooks.count &+= 1
    Hooks.mallocSlot?.pointee = nil
    let p = malloc(size)
    Hooks.mallocSlot?.pointee = countingMalloc
    return p
}

private func countingRealloc(_ old: UnsafeMutableRawPointer?, _ size: Int, _ caller: UnsafeRawPointer?)
    -> UnsafeMutableRawPointer?
{
    Hooks.count &+= 1
    Hooks.reallocSlot?.pointee = nil
    let p = realloc(old, size)
    Hooks.reallocSlot?.pointee = countingRealloc
    return p
}

private func countingMemalign(_ alignment: Int, _ size: Int, _ caller: UnsafeRawPointer?) -> UnsafeMutableRawPointer? {
    Hooks.count &+= 1
    Hooks.memalignSlot?.pointee = nil
    let p = aligned_alloc(alignment, size)
    Hooks.memalignSlot?.pointee = countingMemalign
    return p
}

enum AllocationCount {
    static let flag = "--count-allocations"
    static let library = "libc_malloc_debug.so.0"

    /// Installs the counting hooks; false when libc_malloc_debug is not loaded (hooks would be ignored).
    /// The hook variables are compatibility symbols (`__malloc_hook@GLIBC_2.2.5`, no default version), which
    /// plain dlsym does not return, so they are looked up with dlvsym (itself found through dlsym, as
    /// Swift's Glibc module does not declare this GNU extension).
    static func install() -> Bool {
        typealias DLVSym =
            @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>, UnsafePointer<CChar>) ->
            UnsafeMutableRawPointer?
        guard let handle = dlopen(library, RTLD_NOW | RTLD_NOLOAD),
            let dlvsymAddress = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "dlvsym")
        else { return false }
        let dlvsym = unsafeBitCast(dlvsymAddress, to: DLVSym.self)
        guard let m = dlvsym(handle, "__malloc_hook", "GLIBC_2.2.5"),
            let r = dlvsym(handle, "__realloc_hook", "GLIBC_2.2.5"),
            let a = dlvsym(handle, "__memalign_hook", "GLIBC_2.2.5")
        else { return false }
        Hooks.mallocSlot = m.assumingMemoryBound(to: MallocHook?.self)
        Hooks.reallocSlot = r.assumingMemoryBound(to: ReallocHook?.self)
        Hooks.memalignSlot = a.assumingMemoryBound(to: MemalignHook?.self)
        Hooks.mallocSlot?.pointee = countingMalloc
        Hooks.reallocSlot?.pointee = countingRealloc
        Hooks.memalignSlot?.pointee = countingMemalign
        return true
    }

    static var count: Int { Hooks.count }

    /// Runs this executable again with the debug allocator preloaded and `--count-allocations`; its
    /// output goes to our stdout. Returns the child's exit status.
    @discardableResult
    static func runChild() -> Int32 {
        fflush(nil)  // all streams, so our buffered lines come before the child's
        var environment: [String] = []
        var e = environ
        while let entry = e.pointee {
            let s = String(cString: entry)
            if !s.hasPrefix("LD_PRELOAD=") { environment.append(s) }
            e += 1
        }
        environment.append("LD_PRELOAD=\(library)")
        let arguments = [CommandLine.arguments[0], flag]
        func cStrings(_ xs: [String]) -> [UnsafeMutablePointer<CChar>?] { xs.map { strdup($0) } + [nil] }
        let argv = cStrings(arguments)
        let envp = cStrings(environment)
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/proc/self/exe", nil, nil, argv, envp)
        guard rc == 0 else {
            print("  could not start the allocation-count child: posix_spawn error \(rc)")
            return -1
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }
}
