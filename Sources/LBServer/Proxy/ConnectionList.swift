/// Objects that can sit in a `ConnectionList` (one list at a time).
protocol ListLinked: AnyObject {
    var listPrev: Self? { get set }
    var listNext: Self? { get set }
    var inList: Bool { get set }
}

/// An intrusive doubly linked list: insertion and removal without allocation.
struct ConnectionList<T: ListLinked> {
    private(set) var head: T?
    private(set) var count = 0

    mutating func insert(_ x: T) {
        guard !x.inList else { return }
        x.inList = true
        x.listPrev = nil
        x.listNext = head
        head?.listPrev = x
        head = x
        count += 1
    }

    mutating func remove(_ x: T) {
        guard x.inList else { return }
        x.inList = false
        if let p = x.listPrev { p.listNext = x.listNext } else { head = x.listNext }
        x.listNext?.listPrev = x.listPrev
        x.listPrev = nil
        x.listNext = nil
        count -= 1
    }

    /// Safe against `body` removing the current element.
    func forEach(_ body: (T) -> Void) {
        var cursor = head
        while let c = cursor {
            cursor = c.listNext
            body(c)
        }
    }
}
