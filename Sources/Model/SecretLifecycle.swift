/// The lifecycle rules (docs/protocol.md, "Versions and stages"): plain
/// functions on a Secret that decide and change it, or throw and change
/// nothing. The handlers seal and commit; these say what the result is.
extension Secret {
    /// Adds `version` (the next number) and gives it a stage:
    /// - not pending: it becomes current and the old current previous. A
    ///   staged pending version would then be older than current, so this
    ///   is refused while one waits (promote it, or stage a new one).
    /// - pending: it becomes pending (replacing a pending version that was
    ///   never promoted); current and previous are unchanged.
    public mutating func add(_ version: SecretVersion, pending: Bool, at now: Int64, by author: String) throws(CofferError) {
        precondition(version.version == nextVersion)
        if versions.isEmpty {
            guard !pending else {
                throw CofferError(.conflict, "\(name) has no current version to keep while one is pending; put it first")
            }
            versions.append(version)
            stages = SecretStages(current: version.version, changedAt: now, changedBy: author)
            return
        }
        if pending {
            versions.append(version)
            stages.pending = version.version
            return
        }
        guard stages.pending == nil else {
            throw CofferError(.conflict, "\(name) has a pending version \(stages.pending!): promote it, or rotate with pending to replace it")
        }
        versions.append(version)
        makeCurrent(version.version, previous: stages.current, at: now, by: author)
    }

    /// pending becomes current; the old current becomes previous.
    public mutating func promote(at now: Int64, by author: String) throws(CofferError) {
        guard let pending = stages.pending else {
            throw CofferError(.conflict, "\(name) has no pending version to promote")
        }
        stages.pending = nil
        makeCurrent(pending, previous: stages.current, at: now, by: author)
    }

    /// previous becomes current again; the version it replaces becomes
    /// previous, so a second rollback undoes the first.
    public mutating func rollback(at now: Int64, by author: String) throws(CofferError) {
        guard let previous = stages.previous else {
            throw CofferError(.conflict, "\(name) has no previous version to roll back to")
        }
        makeCurrent(previous, previous: stages.current, at: now, by: author)
    }

    private mutating func makeCurrent(_ version: UInt64, previous: UInt64, at now: Int64, by author: String) {
        stages.current = version
        stages.previous = previous
        stages.changedAt = now
        stages.changedBy = author
        let (until, overflow) = now.addingReportingOverflow(graceSeconds)
        stages.previousAcceptedUntil = graceSeconds > 0 && !overflow ? until : nil
    }

    /// Keeps at most `keep` versions: the staged ones always, then the
    /// newest. Returns the numbers dropped (their ciphertext leaves the
    /// store with the next commit).
    @discardableResult
    public mutating func applyRetention(keep: Int) -> [UInt64] {
        guard versions.count > keep else { return [] }
        let staged = Set(Stage.allCases.compactMap { stages[$0] })
        var room = max(keep - staged.count, 0)
        var kept = Set<UInt64>()
        for version in versions.reversed() where !staged.contains(version.version) && room > 0 {
            kept.insert(version.version)
            room -= 1
        }
        let dropped = versions.filter { !staged.contains($0.version) && !kept.contains($0.version) }.map(\.version)
        versions.removeAll { dropped.contains($0.version) }
        return dropped
    }

    public func isExpired(at now: Int64) -> Bool {
        expiresAt.map { now >= $0 } ?? false
    }

    /// The version a get or verify names: `version`, else `stage`, else
    /// current. Asking for both is a bad request.
    public func resolve(stage: Stage?, version number: UInt64?) throws(CofferError) -> SecretVersion {
        if stage != nil, number != nil { throw CofferError(.badRequest, "give 'stage' or 'version', not both") }
        if let number {
            guard let found = version(number) else { throw CofferError(.notFound, "\(name) has no version \(number)") }
            return found
        }
        let stage = stage ?? .current
        guard let number = stages[stage], let found = version(number) else {
            throw CofferError(.notFound, "\(name) has no \(stage.rawValue) version")
        }
        return found
    }

    /// What verify (without stage or version) compares against: current,
    /// then previous while the grace period fixed at the last change lasts.
    public func verifyCandidates(at now: Int64) -> [SecretVersion] {
        var out = current.map { [$0] } ?? []
        if previousIsAccepted(at: now), let previous = stages.previous, let found = version(previous) {
            out.append(found)
        }
        return out
    }

    func previousIsAccepted(at now: Int64) -> Bool {
        stages.previousAcceptedUntil.map { now < $0 } ?? false
    }

    /// The version verify checks when asked for a stage or version: only
    /// current, pending (before promote) and previous within its grace
    /// period. A rotated-out password or token does not verify again just
    /// because it is still retained.
    public func verifyTarget(stage: Stage?, version number: UInt64?, at now: Int64) throws(CofferError) -> SecretVersion {
        let found = try resolve(stage: stage, version: number)
        let accepted = found.version == stages.current || found.version == stages.pending
            || (found.version == stages.previous && previousIsAccepted(at: now))
        guard accepted else {
            throw CofferError(.conflict, "\(name) version \(found.version) is not current, pending, or previous within its grace period: verify does not accept it")
        }
        return found
    }
}

/// What merging another host's state of a secret into ours decided.
public struct SecretMerge: Sendable, Equatable {
    /// The merged secret; versions listed in `renumbered` still hold their
    /// old records and must be re-sealed for their new numbers.
    public var secret: Secret
    /// Our versions the other host does not have, moved past its numbers.
    public var renumbered: [(from: UInt64, to: UInt64)]

    public static func == (a: SecretMerge, b: SecretMerge) -> Bool {
        a.secret == b.secret && a.renumbered.map(\.from) == b.renumbered.map(\.from) && a.renumbered.map(\.to) == b.renumbered.map(\.to)
    }
}

extension Secret {
    /// Two hosts wrote the same name at once and the database took the
    /// other's (`remote`) first. Neither write is lost: every remote version
    /// keeps its number, ours that it lacks (told apart by version id) take
    /// the next numbers, and what we had made current (or pending) stays so,
    /// with the remote's current as previous. The rest of the metadata is
    /// ours: this host's change is the later one.
    public func merging(remote: Secret) -> SecretMerge {
        let remoteIDs = Set(remote.versions.compactMap(\.id))
        // What both hold: ours at or below the newest shared version that
        // the remote lacks were dropped there (retention), not written
        // since; only newer ones are our concurrent writes.
        let shared = self.versions.filter { v in
            v.id.map { remoteIDs.contains($0) } ?? (remote.version(v.version).map { $0.id == nil } ?? false)
        }
        let sharedMax = shared.map(\.version).max() ?? 0
        var next = max(remote.nextVersion, 1)
        var versions = remote.versions
        var renumbered: [(from: UInt64, to: UInt64)] = []
        for version in self.versions where version.version > sharedMax {
            if let id = version.id {
                if remoteIDs.contains(id) { continue }
            } else if let theirs = remote.version(version.version), theirs.id == nil {
                continue  // made before version ids: the same version on both hosts
            }
            var moved = version
            moved.version = next
            renumbered.append((version.version, next))
            versions.append(moved)
            next += 1
        }
        let newNumber: (UInt64?) -> UInt64? = { number in
            number.flatMap { n in renumbered.first { $0.from == n }?.to }
        }
        var merged = self
        merged.versions = versions
        if let current = newNumber(stages.current) {
            merged.stages.current = current
            merged.stages.previous = remote.stages.current
        } else {
            merged.stages.current = remote.stages.current
            merged.stages.previous = remote.stages.previous
        }
        merged.stages.pending = newNumber(stages.pending) ?? remote.stages.pending
        return SecretMerge(secret: merged, renumbered: renumbered)
    }
}
