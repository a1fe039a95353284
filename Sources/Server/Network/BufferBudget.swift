import Synchronization

/// What connections hold on their callers' behalf (unfinished request
/// lines, requests waiting their turn), charged to the caller's uid and to
/// the whole server. A connection whose uid, or the server, is over its
/// budget stops reading (backpressure, as for the pipelining bound) until
/// enough is answered or closed: one local user cannot make cofferd hold
/// more than `perUser` bytes of requests, however many connections it
/// opens, and all of them together no more than `total`. Checked before
/// any request is authorized: the bytes are held before anyone knows what
/// they ask. Superusers are not charged.
final class BufferBudget: Sendable {
    private struct State {
        var total = 0
        var byUser: [UInt32: Int] = [:]
    }

    private let state = Mutex(State())

    /// One connection's share; used on the connection's event loop only.
    final class Account {
        private let budget: BufferBudget?
        private let uid: UInt32
        private let perUser: Int
        private let total: Int
        private(set) var held = 0

        fileprivate init(budget: BufferBudget?, uid: UInt32, perUser: Int, total: Int) {
            self.budget = budget
            self.uid = uid
            self.perUser = perUser
            self.total = total
        }

        /// Says the connection now holds `bytes` (0 when it closes).
        func hold(_ bytes: Int) {
            let delta = bytes - held
            guard delta != 0, let budget else { return }
            held = bytes
            let uid = self.uid
            budget.state.withLock { s in
                s.total += delta
                let mine = (s.byUser[uid] ?? 0) + delta
                s.byUser[uid] = mine == 0 ? nil : mine
            }
        }

        /// Whether the connection may read more: its uid and the server
        /// are under their budgets.
        var mayRead: Bool {
            guard let budget else { return true }
            let uid = self.uid
            return budget.state.withLock { s in (s.byUser[uid] ?? 0) < perUser && s.total < total }
        }
    }

    func account(for uid: UInt32, exempt: Bool, limits: ServerLimits) -> Account {
        Account(budget: exempt ? nil : self, uid: uid, perUser: limits.maxBufferedBytesPerUser, total: limits.maxBufferedBytes)
    }

    /// Bytes held now by `uid`'s connections (status, tests).
    func held(by uid: UInt32) -> Int { state.withLock { $0.byUser[uid] ?? 0 } }
}
