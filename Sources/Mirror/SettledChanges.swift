import FileStore
import Model

/// Which outbox entries PostgreSQL has confirmed (docs/mirror.md, "The
/// outbox"): every entry at or below `watermark`, and, in memory only, the
/// names confirmed above it. The mirror keeps the watermark in
/// STATE/mirror-pushed, so a confirmed push costs a line in a small file
/// instead of a rewrite of the whole store; settled entries leave the
/// store file with the mirror's next store commit (a pull, a merge) or,
/// once many have gathered, in one commit of their own. After a restart,
/// what was confirmed only above the watermark is pushed again, which the
/// upserts make harmless.
struct SettledChanges: Equatable {
    private(set) var watermark: UInt64
    private var above: [SecretName: UInt64] = [:]

    init(watermark: UInt64) {
        self.watermark = watermark
    }

    func isSettled(_ name: SecretName, _ entry: OutboxEntry) -> Bool {
        entry.generation <= watermark || (above[name].map { $0 >= entry.generation } ?? false)
    }

    /// The entries still to push.
    func pending(in outbox: Outbox) -> [SecretName: OutboxEntry] {
        outbox.entries.filter { !isSettled($0.key, $0.value) }
    }

    /// The entries PostgreSQL has confirmed, as the generations to drop
    /// them at (SecretStore.dropFromOutbox).
    func confirmed(in outbox: Outbox) -> [SecretName: UInt64] {
        outbox.entries.filter { isSettled($0.key, $0.value) }.mapValues(\.generation)
    }

    /// PostgreSQL confirmed these names as of these outbox generations.
    mutating func confirm(_ confirmed: [SecretName: UInt64]) {
        above.merge(confirmed) { max($0, $1) }
    }

    /// Raises the watermark as far as the outbox of a snapshot at
    /// `generation` allows: just below its oldest pending entry, or to
    /// `generation` itself when nothing is pending (every later entry has a
    /// higher generation). The new watermark when it moved.
    mutating func advance(over outbox: Outbox, generation: UInt64) -> UInt64? {
        let oldest = pending(in: outbox).values.map(\.generation).min()
        let next = oldest.map { $0 - 1 } ?? generation
        guard next > watermark else { return nil }
        watermark = next
        above = above.filter { $0.value > next }
        return next
    }

    /// Confirmed entries leave the outbox with a commit the mirror makes
    /// anyway (a pull's, a merge's).
    func drop(from outbox: inout Outbox) {
        outbox.removeAll(where: isSettled)
    }
}
