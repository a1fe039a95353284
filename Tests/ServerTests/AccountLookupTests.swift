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
/// which may wait on a network directory: on the account lookups' thread,
/// never on the event loop the put runs on. Numbers, units and anyone need
/// no lookup and stay where they are.
@Suite struct AccountLookupTests {
    @Test func namesAreLookedUpOffTheLoopAndNumbersAreNot() async throws {
        let pool = CountingWork()
        let h = try Harness(accountLookupThread: pool)
        let numbers = try await h.call(#"{"id":1,"op":"put","name":"app/a","value":"v","principals":["uid:0","gid:0","unit:web.service","anyone"]}"#)
        #expect(numbers["ok"] as? Bool == true)
        let afterNumbers = pool.count
        #expect(afterNumbers == 0, "numbers, units and anyone need no lookup")
        let names = try await h.call(#"{"id":2,"op":"put","name":"app/b","value":"v","principals":["user:root","uid:5"]}"#)
        #expect(names["ok"] as? Bool == true)
        #expect(pool.count == afterNumbers + 1, "one trip to the lookups' thread")
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
        let h = try Harness(accountLookupThread: pool)
        let before = h.services.store.snapshot.generation
        let line = #"{"id":1,"op":"put","name":"app/a","value":"v","principals":"# + "[\"\(principal)\"]}"
        let code = try await h.errorCode(line)
        #expect(code == "BAD_REQUEST")
        #expect(pool.count == 1, "looked up off the loop")
        #expect(h.services.store.snapshot.generation == before)
    }
}

/// A directory that does not answer: every lookup given to it waits until
/// `answer()`.
final class HungDirectory: BlockingWork {
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))
    let entered = Atomic<Int>(0)

    func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        entered.add(1, ordering: .relaxed)
        await withCheckedContinuation { continuation in
            let open = state.withLock { s -> Bool in
                if !s.open { s.waiting.append(continuation) }
                return s.open
            }
            if open { continuation.resume() }
        }
        return try body()
    }

    func answer() {
        let waiting = state.withLock { s in
            s.open = true
            defer { s.waiting = [] }
            return s.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Waits, at most 60 s, until `count` lookups are held. (The whole
    /// suite runs at once: on two busy cores, four requests took more than
    /// 10 s to reach the directory in one run.)
    func holding(_ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while entered.load(ordering: .relaxed) < count {
            guard ContinuousClock.now < deadline else {
                let reached = entered.load(ordering: .relaxed)
                if reached >= count { return }
                Issue.record("only \(reached) of \(count) lookups reached the directory in 60 s")
                return
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// Lookups have a thread of their own and a bound: a directory that hangs
/// holds neither the blocking pool nor more than `AccountLookups.limit`
/// requests, and writes that name no account go on.
@Suite struct AccountLookupThreadTests {
    @Test func lookupsRunOnTheirOwnThreadNotTheBlockingPool() async throws {
        let pool = CountingWork(), lookups = CountingWork()
        let h = try Harness(blockingPool: pool, accountLookupThread: lookups)
        let put = try await h.call(#"{"id":1,"op":"put","name":"app/a","value":"v","principals":["user:root"]}"#)
        #expect(put["ok"] as? Bool == true)
        #expect(lookups.count == 1 && pool.count == 0)
    }

    @Test func aHungDirectoryHoldsOnlyLookupsAndRefusesPastItsBound() async throws {
        let directory = HungDirectory()
        let h = try Harness(accountLookupThread: directory)
        let limit = AccountLookups.limit
        let held = (0..<limit).map { i in
            Task { await h.line(#"{"id":\#(i),"op":"put","name":"app/held\#(i)","value":"v","principals":["user:root"]}"#) }
        }
        try await directory.holding(limit)
        let refused = try await h.errorCode(#"{"id":99,"op":"put","name":"app/more","value":"v","principals":["group:root"]}"#)
        #expect(refused == "UNAVAILABLE", "one lookup more is refused at once, not queued behind the hang")
        let reload = try await h.errorCode(#"{"id":100,"op":"reload"}"#)
        #expect(reload == "UNAVAILABLE", "so is a reload, which looks the policy's names up")
        #expect(h.audit.all.contains { $0.kind == .reloadFailed && $0.result == .error }, "and the refused reload is audited")
        // Writes that name no account, and the blocking pool, are not held.
        let numbers = try await h.call(#"{"id":101,"op":"put","name":"app/free","value":"v","principals":["uid:0"]}"#)
        #expect(numbers["ok"] as? Bool == true)
        let imported = try await h.call(#"{"id":102,"op":"import","secrets":[{"name":"app/i1","value":"v"},{"name":"app/i2","value":"w"}]}"#)
        #expect(imported["ok"] as? Bool == true, "import stages on the blocking pool")
        let held0 = try SecretName("app/held0")
        #expect(h.services.store.snapshot[held0] == nil)

        directory.answer()
        for task in held {
            let answer = await task.value
            #expect(answer.contains(#""ok":true"#), "a held lookup goes on once the directory answers")
        }
        #expect(h.services.store.snapshot[held0]?.access.principals == [.uid(0)])
        let later = try await h.call(#"{"id":103,"op":"put","name":"app/after","value":"v","principals":["user:root"]}"#)
        #expect(later["ok"] as? Bool == true, "the permits are given back")
    }
}
