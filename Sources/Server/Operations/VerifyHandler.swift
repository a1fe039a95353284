import CofferCore
import LockedMemory
import Model
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// `verify`: does the presented value equal the stored one? Answers only
/// `match`. Without `stage` or `version` it checks current, then previous
/// while the secret's grace period after a rotation lasts. With
/// `operation`, a token matches only if it also allows that operation.
/// Compared in constant time; the candidate is decoded into locked memory
/// and wiped, and never logged or audited.
struct VerifyHandler: OperationHandler {
    let opener: RecordOpener
    let hashing: HashingWork
    let operation = Operation.verify
    let members: Set<String> = ["name", "version", "stage", "value", "value_base64", "operation"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let name = try request.name()
        guard let candidate = try request.secretInput() else {
            throw CofferError(.badRequest, "missing 'value' (or 'value_base64') to verify")
        }
        // No stored value is longer: a longer candidate cannot match, and is
        // refused before any hashing.
        guard candidate.bytes.count <= VersionWrite.maxValueBytes else {
            throw CofferError(.badRequest, "the value to verify is larger than \(VersionWrite.maxValueBytes) bytes")
        }
        let version = try request.unsigned("version")
        let stage = try request.stage()
        let wanted = try request.string("operation")
        let storeID = context.snapshot.storeID
        let now = Int64(time(nil))
        let secret = try SecretLookup.unexpired(name, in: context, now: now)
        let candidates = version == nil && stage == nil
            ? secret.verifyCandidates(at: now)
            : [try secret.verifyTarget(stage: stage, version: version, at: now)]
        // A token restricted to some operations matches only when the
        // caller names one of them: fail closed when it names none.
        if !secret.operations.isEmpty, wanted.map({ !secret.operations.contains($0) }) ?? true {
            // Still compare, so the answer takes as long either way.
            _ = try await matching(candidate.bytes, candidates, of: secret, storeID: storeID)
            return HandlerOutcome([("match", .verdict(false))], version: candidates.first?.version)
        }
        let matched = try await matching(candidate.bytes, candidates, of: secret, storeID: storeID)
        return HandlerOutcome([("match", .verdict(matched != nil))], version: matched?.version ?? candidates.first?.version)
    }

    /// The first of `versions` the candidate matches. Hashed versions are
    /// checked on the blocking pool (scrypt takes tens of milliseconds).
    private func matching(
        _ candidate: LockedBytes, _ versions: [SecretVersion], of secret: Secret, storeID: String
    ) async throws -> SecretVersion? {
        for version in versions {
            let stored = try opener.open(version, of: secret, storeID: storeID)
            let match: Bool
            if let hash = version.hash, case .scrypt = hash {
                match = try await hashing.scrypt.run(on: hashing.pool) {
                    try candidate.withUnsafeBytes { try ValueHashing.matches($0, stored: stored, hash) }
                }
            } else if let hash = version.hash {
                match = try candidate.withUnsafeBytes { try ValueHashing.matches($0, stored: stored, hash) }
            } else {
                match = stored.withUnsafeBytes { s in candidate.withUnsafeBytes { ConstantTime.equals(s, $0) } }
            }
            if match { return version }
        }
        return nil
    }
}
