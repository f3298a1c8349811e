/// The actions of one event, performed in order, in a buffer one connection owns and reuses: appending is a
/// store and clearing is one (an Array would clear through `replaceSubrange` and check uniqueness on every
/// append). `ExchangeAction` is a trivial value, so slots need no deinitialization. The owner calls
/// `deallocate()` once, when it goes; the queue is never copied out of its owner.
struct ActionQueue: ExchangeActionSink {
    private var storage: UnsafeMutablePointer<ExchangeAction>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 16) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    @inline(__always)
    mutating func append(_ action: ExchangeAction) {
        if count == capacity { grow() }
        (storage + count).initialize(to: action)
        count += 1
    }

    @inline(__always)
    subscript(i: Int) -> ExchangeAction {
        precondition(i < count)
        return storage[i]
    }

    @inline(__always)
    mutating func removeAll() { count = 0 }

    func deallocate() { storage.deallocate() }

    /// One event's chain of actions is short (a dozen at most in practice); a longer one doubles the buffer.
    private mutating func grow() {
        let bigger = UnsafeMutablePointer<ExchangeAction>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: storage, count: count)
        storage.deallocate()
        storage = bigger
        capacity *= 2
    }
}
