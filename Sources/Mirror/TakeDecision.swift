import Model

/// What taking another host's state of one name does here (docs/mirror.md,
/// "Two hosts writing one name"), decided from their state, ours, and
/// whether ours is still waiting to be pushed. `Mirror.take` applies it
/// under the store's writer lock.
enum TakeDecision: Equatable {
    /// We hold the same already.
    case nothing
    /// Theirs replaces ours (cut to this host's retention).
    case take
    /// Both changed it: ours and theirs merged, and queued again.
    case merge
    /// Ours is waiting and one side deleted it: ours stays, and is pushed
    /// next (a deletion here wins over their write, and our write over
    /// their deletion).
    case keepOurs

    static func decide(theirs: Secret?, ours: Secret?, oursPending: Bool) -> TakeDecision {
        if theirs == ours { return .nothing }
        guard oursPending else { return .take }
        guard ours != nil, theirs != nil else { return .keepOurs }
        return .merge
    }
}
