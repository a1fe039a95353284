import Model
import Testing

@Suite struct LifecycleTests {
    static let record = SealedRecord(keyID: KeyID(hex: "0011223344556677")!, salt: [], nonce: [], ciphertext: [])

    func version(_ n: UInt64, at time: Int64 = 100) -> SecretVersion {
        SecretVersion(version: n, sealed: Self.record, encoding: .text, createdAt: time, createdBy: "uid:\(n)")
    }

    func secret(versions: Int) throws -> Secret {
        var s = Secret(name: try SecretName("db/pw"), kind: .generic, protection: .sealed, versions: [])
        for n in 1...versions { try s.add(version(UInt64(n)), pending: false, at: Int64(n) * 10, by: "uid:0") }
        return s
    }

    @Test func aNewVersionBecomesCurrentAndTheOldOnePrevious() throws {
        let s = try secret(versions: 2)
        #expect(s.stages.current == 2)
        #expect(s.stages.previous == 1)
        #expect(s.stages.pending == nil)
        #expect(s.stages.changedAt == 20)
    }

    @Test func pendingIsStagedThenPromoted() throws {
        var s = try secret(versions: 1)
        try s.add(version(2), pending: true, at: 50, by: "uid:7")
        #expect(s.stages.current == 1)
        #expect(s.stages.pending == 2)
        #expect(s.stages.changedAt == 10, "staging does not start a grace period")
        // Another non-pending version would leave the staged one behind.
        #expect(throws: CofferError.self) { try s.add(version(3), pending: false, at: 60, by: "uid:7") }
        try s.promote(at: 70, by: "uid:8")
        #expect(s.stages == SecretStages(current: 2, previous: 1, pending: nil, changedAt: 70, changedBy: "uid:8"))
        let error = #expect(throws: CofferError.self) { try s.promote(at: 80, by: "uid:8") }
        #expect(error?.code == .conflict)
    }

    @Test func rollbackSwapsCurrentAndPrevious() throws {
        var s = try secret(versions: 3)
        try s.rollback(at: 90, by: "uid:9")
        #expect(s.stages.current == 2)
        #expect(s.stages.previous == 3)
        try s.rollback(at: 95, by: "uid:9")
        #expect(s.stages.current == 3)
        var fresh = try secret(versions: 1)
        #expect(throws: CofferError.self) { try fresh.rollback(at: 1, by: "uid:0") }
    }

    @Test func aFirstVersionCannotBePending() throws {
        var s = Secret(name: try SecretName("x"), kind: .generic, protection: .sealed, versions: [])
        #expect(throws: CofferError.self) { try s.add(version(1), pending: true, at: 1, by: "uid:0") }
        #expect(s.versions.isEmpty)
    }

    @Test func retentionKeepsStagedVersionsAndTheNewest() throws {
        var s = try secret(versions: 6)
        try s.rollback(at: 100, by: "uid:0")         // current 5, previous 6
        try s.add(version(7), pending: true, at: 110, by: "uid:0")
        let dropped = s.applyRetention(keep: 4)
        #expect(dropped == [1, 2, 3])
        #expect(s.versions.map(\.version) == [4, 5, 6, 7])
        #expect(s.applyRetention(keep: 4).isEmpty)
    }

    @Test func verifyAcceptsPreviousOnlyDuringTheGracePeriod() throws {
        var s = try secret(versions: 2)                // changed at 20, no grace
        #expect(s.verifyCandidates(at: 21).map(\.version) == [2])
        s.graceSeconds = 30
        #expect(s.verifyCandidates(at: 21).map(\.version) == [2], "a new grace period does not reopen an old window")
        try s.add(version(3), pending: false, at: 40, by: "uid:0")
        #expect(s.verifyCandidates(at: 69).map(\.version) == [3, 2])
        #expect(s.verifyCandidates(at: 70).map(\.version) == [3])
        // Asked for by stage or number, the same rule holds.
        #expect(try s.verifyTarget(stage: .previous, version: nil, at: 69).version == 2)
        #expect((#expect(throws: CofferError.self) { try s.verifyTarget(stage: .previous, version: nil, at: 70) })?.code == .conflict)
        #expect(throws: CofferError.self) { try s.verifyTarget(stage: nil, version: 1, at: 41) }
        try s.add(version(4), pending: true, at: 80, by: "uid:0")
        #expect(try s.verifyTarget(stage: .pending, version: nil, at: 81).version == 4)
    }

    @Test func resolveNamesAStageOrAVersionNotBoth() throws {
        let s = try secret(versions: 3)
        #expect(try s.resolve(stage: nil, version: nil).version == 3)
        #expect(try s.resolve(stage: .previous, version: nil).version == 2)
        #expect(try s.resolve(stage: nil, version: 1).version == 1)
        #expect((#expect(throws: CofferError.self) { try s.resolve(stage: .pending, version: nil) })?.code == .notFound)
        #expect((#expect(throws: CofferError.self) { try s.resolve(stage: .current, version: 1) })?.code == .badRequest)
    }

    @Test func expiryIsInclusiveOfItsSecond() throws {
        var s = try secret(versions: 1)
        #expect(!s.isExpired(at: .max))
        s.expiresAt = 1000
        #expect(!s.isExpired(at: 999))
        #expect(s.isExpired(at: 1000))
    }
}

@Suite struct MergeTests {
    func version(_ n: UInt64, id: String) -> SecretVersion {
        SecretVersion(version: n, sealed: LifecycleTests.record, encoding: .text, createdAt: 100, createdBy: "uid:0", id: id)
    }

    func secret(_ versions: [SecretVersion]) throws -> Secret {
        var s = Secret(name: try SecretName("db/pw"), kind: .generic, protection: .sealed, versions: [])
        for v in versions { try s.add(v, pending: false, at: 1, by: "uid:0") }
        return s
    }

    @Test func bothHostsVersionsSurviveAndOursBecomesCurrent() throws {
        let ours = try secret([version(1, id: "a"), version(2, id: "ours")])
        let theirs = try secret([version(1, id: "a"), version(2, id: "theirs")])
        let merge = ours.merging(remote: theirs)
        #expect(merge.secret.versions.map(\.version) == [1, 2, 3])
        #expect(merge.secret.versions.map(\.id) == ["a", "theirs", "ours"])
        #expect(merge.renumbered.map(\.from) == [2] && merge.renumbered.map(\.to) == [3])
        #expect(merge.secret.stages.current == 3 && merge.secret.stages.previous == 2)
    }

    @Test func versionsBothHaveAreNotRenumbered() throws {
        let shared = try secret([version(1, id: "a"), version(2, id: "b")])
        let merge = shared.merging(remote: shared)
        #expect(merge.renumbered.isEmpty)
        #expect(merge.secret == shared)
        // Versions from before ids: the same number on both sides is one version.
        let legacy = Secret(name: try SecretName("x"), kind: .generic, protection: .sealed,
                            versions: [SecretVersion(version: 1, sealed: LifecycleTests.record, encoding: .text, createdAt: 1, createdBy: "uid:0")])
        #expect(legacy.merging(remote: legacy).renumbered.isEmpty)
    }
}

extension MergeTests {
    @Test func versionsTheRemoteDroppedByRetentionDoNotComeBack() throws {
        // Both had 1..3; the remote kept 2..4 (dropped 1, added 4); we added 4 too.
        let ours = try secret([version(1, id: "a"), version(2, id: "b"), version(3, id: "c"), version(4, id: "ours")])
        let theirs = try secret([version(1, id: "a"), version(2, id: "b"), version(3, id: "c"), version(4, id: "theirs")])
        var pruned = theirs
        pruned.versions.removeFirst()
        let merge = ours.merging(remote: pruned)
        #expect(merge.secret.versions.map(\.id) == ["b", "c", "theirs", "ours"])
        #expect(merge.renumbered.map(\.from) == [4] && merge.renumbered.map(\.to) == [5])
    }
}
