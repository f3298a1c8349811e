import XCTest

@testable import LBServer

/// The idle pool's list: requests take the newest, the purge the oldest, and any member leaves in O(1).
final class IdlePoolTests: XCTestCase {
    final class Item: PoolLinked {
        let id: Int
        var poolOlder: Item?
        var poolNewer: Item?
        var inPool = false
        init(_ id: Int) { self.id = id }
    }

    /// Takes every member out. The links are strong both ways, so members left in a pool that goes away keep each
    /// other alive; lb closes, and so takes out, every pooled connection before it drops a pool, and each test here
    /// ends the same way (LeakSanitizer reported the members otherwise).
    private func empty(_ pool: inout IdlePool<Item>) {
        while pool.popOldest() != nil {}
    }

    private func ids(_ pool: IdlePool<Item>) -> [Int] {
        var result: [Int] = []
        pool.forEach { result.append($0.id) }
        return result
    }

    func testRequestsTakeTheNewestAndThePurgeTheOldest() {
        var pool = IdlePool<Item>()
        let items = (0..<5).map(Item.init)
        for i in items { pool.push(i) }
        XCTAssertEqual(pool.count, 5)
        XCTAssertEqual(ids(pool), [0, 1, 2, 3, 4])
        XCTAssertEqual(pool.popNewest()?.id, 4)
        XCTAssertEqual(pool.popOldest()?.id, 0)
        XCTAssertEqual(ids(pool), [1, 2, 3])
        XCTAssertEqual(pool.count, 3)
        XCTAssertFalse(items[4].inPool)
        XCTAssertNil(items[4].poolOlder)
        empty(&pool)
    }

    func testAnyMemberLeavesAndTheOthersKeepTheirOrder() {
        var pool = IdlePool<Item>()
        let items = (0..<4).map(Item.init)
        for i in items { pool.push(i) }
        pool.remove(items[2])
        XCTAssertEqual(ids(pool), [0, 1, 3])
        pool.remove(items[0])
        pool.remove(items[3])
        XCTAssertEqual(ids(pool), [1])
        XCTAssertEqual(pool.oldest?.id, 1)
        XCTAssertEqual(pool.newest?.id, 1)
        pool.remove(items[1])
        XCTAssertTrue(pool.isEmpty)
        XCTAssertNil(pool.oldest)
        XCTAssertNil(pool.newest)
        XCTAssertNil(pool.popNewest())
        XCTAssertNil(pool.popOldest())
    }

    func testRemovingOrPushingTwiceChangesNothing() {
        var pool = IdlePool<Item>()
        let a = Item(1)
        let b = Item(2)
        pool.push(a)
        pool.push(a)
        pool.push(b)
        XCTAssertEqual(pool.count, 2)
        pool.remove(a)
        pool.remove(a)
        XCTAssertEqual(pool.count, 1)
        XCTAssertEqual(ids(pool), [2])
        // Back in after leaving: it is the newest now.
        pool.push(a)
        XCTAssertEqual(ids(pool), [2, 1])
        empty(&pool)
    }
}
