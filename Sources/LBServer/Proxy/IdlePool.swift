/// Objects that can sit in an `IdlePool` (one pool at a time), through links of their own: an upstream connection
/// is also in its worker's `ConnectionList`.
protocol PoolLinked: AnyObject {
    var poolOlder: Self? { get set }
    var poolNewer: Self? { get set }
    var inPool: Bool { get set }
}

/// One worker's idle keep-alive connections to one backend, oldest first: an intrusive doubly linked list through
/// the connections' `pool` links, so taking the newest (a request), taking the oldest (the purge) and removing
/// any one (the backend closed it, its idle timeout fired) are O(1) and allocate nothing, however large the pool
/// grows. Loop thread only.
struct IdlePool<T: PoolLinked> {
    /// Least recently used: the first the purge closes.
    private(set) var oldest: T?
    /// Most recently used: the first a request takes (its socket and the backend's side are warm).
    private(set) var newest: T?
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Adds `c` as the newest. Ignored when it is already pooled.
    mutating func push(_ c: T) {
        guard !c.inPool else { return }
        c.inPool = true
        c.poolOlder = newest
        c.poolNewer = nil
        if let n = newest { n.poolNewer = c } else { oldest = c }
        newest = c
        count += 1
    }

    mutating func popNewest() -> T? {
        guard let c = newest else { return nil }
        remove(c)
        return c
    }

    mutating func popOldest() -> T? {
        guard let c = oldest else { return nil }
        remove(c)
        return c
    }

    /// Takes `c` out; nothing happens when it is not pooled.
    mutating func remove(_ c: T) {
        guard c.inPool else { return }
        c.inPool = false
        if let older = c.poolOlder { older.poolNewer = c.poolNewer } else { oldest = c.poolNewer }
        if let newer = c.poolNewer { newer.poolOlder = c.poolOlder } else { newest = c.poolOlder }
        c.poolOlder = nil
        c.poolNewer = nil
        count -= 1
    }

    /// Every pooled connection, oldest first. `body` may close the connection it is given (which takes it out of
    /// the pool at once) but must not push, or remove any other.
    func forEach(_ body: (T) -> Void) {
        var cursor = oldest
        while let c = cursor {
            cursor = c.poolNewer
            body(c)
        }
    }
}
