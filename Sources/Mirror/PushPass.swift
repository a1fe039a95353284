import Model

/// One push pass over the outbox (docs/mirror.md, "The outbox" and "Two
/// hosts writing one name"): which names go in which batch with which
/// watermark, and what a batch's outcome means for the rest of the pass.
/// It decides only; `Mirror` does the I/O and hands the outcomes back.
///
/// A pass sends what the outbox held when it began; a name changed
/// meanwhile goes in the next pass. A batch that collides with another
/// host's rows writes nothing: its names not merged yet in this pass are
/// merged (`merge`) and the pass starts over; a name that collides again
/// after its merge is set aside until the next pass (`stuck`), so one
/// contested name cannot hold up the rest.
struct PushPass {
    struct Batch {
        let items: [MirrorWriter.Item]
        /// The change_seq the rows may replace: the pull watermark, or for
        /// a name merged in this pass the change_seq its merge took in.
        let ceiling: Int64
    }

    /// What to do after a batch collided.
    enum AfterConflict: Equatable {
        /// Merge the database's state of these names, then start over.
        case merge(Set<SecretName>)
        /// Start over (the names that collided again are set aside).
        case restart
    }

    let batchSize: Int
    let watermark: Int64
    /// The outbox generation each written name was confirmed at.
    private(set) var confirmed: [SecretName: UInt64] = [:]
    /// Written, or set aside: not sent again in this pass.
    private(set) var done = Set<SecretName>()
    private(set) var merged = Set<SecretName>()
    /// Names that collided again after their merge.
    private(set) var stuck = Set<SecretName>()
    private var mergedAt: [SecretName: Int64] = [:]

    init(batchSize: Int, watermark: Int64) {
        precondition(batchSize >= 1)
        self.batchSize = batchSize
        self.watermark = watermark
    }

    /// `queue` (the outbox without `done`, oldest first) in batches of at
    /// most `batchSize`; a name merged in this pass goes alone, with its
    /// merge's change_seq as its ceiling.
    func batches(of queue: [MirrorWriter.Item]) -> [Batch] {
        stride(from: 0, to: queue.count, by: batchSize).flatMap { start -> [Batch] in
            let chunk = queue[start..<min(start + batchSize, queue.count)]
            let ordinary = chunk.filter { mergedAt[$0.name] == nil }
            let alone = chunk.compactMap { item in
                mergedAt[item.name].map { Batch(items: [item], ceiling: max(watermark, $0)) }
            }
            return (ordinary.isEmpty ? [] : [Batch(items: Array(ordinary), ceiling: watermark)]) + alone
        }
    }

    mutating func written(_ batch: Batch) {
        for item in batch.items {
            confirmed[item.name] = item.generation
            done.insert(item.name)
        }
    }

    mutating func conflicted(_ names: Set<SecretName>) -> AfterConflict {
        let again = names.intersection(merged)
        stuck.formUnion(again)
        done.formUnion(again)
        let fresh = names.subtracting(merged)
        return fresh.isEmpty ? .restart : .merge(fresh)
    }

    /// `names` were merged; `sequences` are the change_seq of the rows the
    /// merge took in, which the next push of each may replace.
    mutating func mergedIn(_ names: Set<SecretName>, at sequences: [SecretName: Int64]) {
        merged.formUnion(names)
        mergedAt.merge(sequences) { max($0, $1) }
    }
}
