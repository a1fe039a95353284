import CofferCore
import Model
import Synchronization
import Testing

@testable import Server

/// Blocking work that counts the lookups it is given (work that returns
/// a secret's access; a commit that missed the loop's prompt staging is
/// not counted), then runs everything on NIO's pool.
final class CountingWork: BlockingWork {
    let runs = Atomic<Int>(0)
    let inner = ThreadPoolWork()

    func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        if R.self == SecretAccess?.self { runs.add(1, ordering: .relaxed) }
        return try await inner.run(body)
    }

    var count: Int { runs.load(ordering: .relaxed) }
}

/// A put's `principals` naming a user or a group is resolved through NSS,
/// which may wait on a network directory: on the blocking pool, never on
/// the event loop the put runs on. Numbers, units and anyone need no
/// lookup and stay where they are.
@Suite struct AccountLookupTests {
    @Test func namesAreLookedUpOnTheBlockingPoolAndNumbersAreNot() async throws {
        let pool = CountingWork()
        let h = try Harness(blockingPool: pool)
        let numbers = try await h.call(#"{"id":1,"op":"put","name":"app/a","value":"v","principals":["uid:0","gid:0","unit:web.service","anyone"]}"#)
        #expect(numbers["ok"] as? Bool == true)
        let afterNumbers = pool.count
        #expect(afterNumbers == 0, "numbers, units and anyone need no lookup")
        let names = try await h.call(#"{"id":2,"op":"put","name":"app/b","value":"v","principals":["user:root","uid:5"]}"#)
        #expect(names["ok"] as? Bool == true)
        #expect(pool.count == afterNumbers + 1, "one trip to the pool for the lookup")
        let group = try await h.call(#"{"id":3,"op":"put","name":"app/c","value":"v","principals":["group:root"]}"#)
        #expect(group["ok"] as? Bool == true)
        #expect(pool.count == afterNumbers + 2)
        // What was looked up is what the secret holds.
        let secret = try #require(h.services.store.snapshot[try SecretName("app/b")])
        #expect(secret.access.principals == [.uid(0), .uid(5)])
    }

    @Test(arguments: ["user:no-such-user-here", "user:root\\u0000x", "group:root\\u0000"])
    func anUnknownOrTruncatedNameIsRefusedAndWritesNothing(principal: String) async throws {
        let pool = CountingWork()
        let h = try Harness(blockingPool: pool)
        let before = h.services.store.snapshot.generation
        let line = #"{"id":1,"op":"put","name":"app/a","value":"v","principals":"# + "[\"\(principal)\"]}"
        let code = try await h.errorCode(line)
        #expect(code == "BAD_REQUEST")
        #expect(pool.count == 1, "looked up off the loop")
        #expect(h.services.store.snapshot.generation == before)
    }
}
