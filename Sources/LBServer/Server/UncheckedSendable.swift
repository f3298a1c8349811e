/// A value handed from one loop thread to another through a `LoopInbox` (ownership moves with it).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
