/// A version's role (the AWS Secrets Manager staging labels): `current` is
/// what get and verify answer by default; `previous` is the one before the
/// last change, kept for rollback and for verify's grace period; `pending`
/// is staged by `rotate` with `pending: true` until `promote`.
public enum Stage: String, Sendable, CaseIterable {
    case current, previous, pending
}

/// Which version holds each stage, and when and by whom current last
/// changed (the grace period runs from then).
public struct SecretStages: Sendable, Equatable {
    public var current: UInt64
    public var previous: UInt64?
    public var pending: UInt64?
    public var changedAt: Int64
    public var changedBy: String
    /// Until when verify also accepts previous: fixed when current changes
    /// (from the grace period in force then), so a later change of the
    /// grace period never reopens an old window.
    public var previousAcceptedUntil: Int64?

    public init(
        current: UInt64, previous: UInt64? = nil, pending: UInt64? = nil, changedAt: Int64, changedBy: String,
        previousAcceptedUntil: Int64? = nil
    ) {
        self.current = current
        self.previous = previous
        self.pending = pending
        self.changedAt = changedAt
        self.changedBy = changedBy
        self.previousAcceptedUntil = previousAcceptedUntil
    }

    /// A secret read from a file written before stages existed: the newest
    /// version is current.
    init(newest: SecretVersion?) {
        self.init(current: newest?.version ?? 0, changedAt: newest?.createdAt ?? 0, changedBy: newest?.createdBy ?? "")
    }

    public subscript(stage: Stage) -> UInt64? {
        switch stage {
        case .current: return current
        case .previous: return previous
        case .pending: return pending
        }
    }

    /// The stages `version` holds, in Stage order.
    public func held(by version: UInt64) -> [Stage] {
        Stage.allCases.filter { self[$0] == version }
    }
}
