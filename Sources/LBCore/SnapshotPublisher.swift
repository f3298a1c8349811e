import Atomics

/// Read-copy-update publication of an immutable object (a `RoutingSnapshot`, or LBServer's wrapper).
///
/// Writers build a complete new object and `publish` swaps one atomic strong reference (release
/// ordering); readers `load` it (acquire ordering) and never block, never see a half-built object, and
/// keep the one they loaded alive for as long as they hold it. Any thread may call either method.
/// Concurrent publishers are allowed: the last swap wins.
public final class SnapshotPublisher<T: AnyObject & Sendable>: Sendable {
    /// swift-atomics can only hold strong references to final classes conforming to `AtomicReference`,
    /// so each published object rides in a small box. One allocation per publish, none per load.
    private final class Box: AtomicReference, Sendable {
        let value: T
        init(_ value: T) { self.value = value }
    }

    private let current: ManagedAtomic<Box>

    public init(_ initial: T) { current = ManagedAtomic(Box(initial)) }

    /// The latest published object.
    @inline(__always)
    public func load() -> T { current.load(ordering: .acquiring).value }

    /// Makes `new` visible to every subsequent `load`; the previous object is released once its last
    /// reader drops it.
    public func publish(_ new: T) { current.store(Box(new), ordering: .releasing) }
}
