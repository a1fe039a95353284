import FileStore
import Keyring
import LockedMemory
import Model
import Seal
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `rotate-master-key` (docs/operator-guide.md, "Master key rotation"):
///
/// 1. the new key's file is added to STATE/master-keys (durably) before
///    anything is sealed with it, so every later start loads it;
/// 2. it becomes the keyring's current key: new writes use it, and the old
///    key stays loaded so every record keeps opening (gets never fail);
/// 3. every record under another key is re-sealed from the snapshot of
///    that moment, outside the store's writer lock (progress in status);
/// 4. one commit swaps them in atomically, re-sealing on the spot any
///    record written or replaced meanwhile;
/// 5. keys no record needs any more are dropped from memory.
///
/// A crash before 4 leaves the old file (old key, maybe some records under
/// the new one); after, the new file. Both keys load at the next start, so
/// either way every record opens; running it again finishes the job.
package final class MasterKeyRotation: Sendable {
    package struct Progress: Sendable {
        package var phase: String
        package var done: Int
        package var total: Int
        package var newKeyID: String
    }

    package struct Outcome: Sendable {
        package var oldKeyIDs: [String]
        package var newKeyID: String
        package var resealed: Int
        package var retired: [String]
    }

    private let running = Mutex<Progress?>(nil)
    private let last = Mutex<(outcome: Outcome, finishedAt: Int64)?>(nil)
    /// Development only (COFFER_DEV_RESEAL_PAUSE_MS): a pause after each
    /// batch, so a test can kill cofferd mid-rotation.
    package let pausePerBatch: Duration?
    package static let batchSize = 64

    package init(pausePerBatch: Duration? = nil) {
        self.pausePerBatch = pausePerBatch
    }

    package var progress: Progress? { running.withLock { $0 } }
    package var lastOutcome: (outcome: Outcome, finishedAt: Int64)? { last.withLock { $0 } }

    /// The new key comes from a file the daemon can read, or is generated
    /// and written to the state directory.
    package enum NewKey: Sendable {
        case file(String)
        case generate
    }

    /// Runs the rotation; blocking (call it on the blocking pool).
    package func run(_ source: NewKey, services: CofferServices, locations: MasterKeyLocations) throws -> Outcome {
        let claimed = running.withLock { state -> Bool in
            guard state == nil else { return false }
            state = Progress(phase: "preparing", done: 0, total: 0, newKeyID: "")
            return true
        }
        guard claimed else { throw CofferError(.conflict, "a master-key rotation is already running") }
        defer { running.withLock { $0 = nil } }

        let keyring = services.keyring
        let before = keyring.keyIDs
        guard let oldCurrent = before.current else { throw KeyringError(.sealed, "the keyring is sealed") }
        let key: MasterKey
        let path: String
        switch source {
        case .file(let file):
            do {
                key = try MasterKeySource.keyFile(path: file).load()
                // The store is about to depend on this file: make sure it
                // (and its name) survive a power loss before anything is
                // sealed with it.
                try MasterKeyLocations.syncToDisk(file)
            } catch let error as KeyringError {
                throw CofferError(.badRequest, "the new key file cannot be used: \(error.message)")
            }
            path = file
        case .generate:
            key = try MasterKey.generate()
            path = try locations.storeGenerated(key)
        }
        try locations.add(path, keyID: key.id)
        try keyring.install(key, makeCurrent: true)
        let newID = key.id

        let snapshot = services.store.snapshot
        let pending = snapshot.secrets.reduce(0) { $0 + $1.versions.count { $0.sealed.keyID != newID } }
        update(Progress(phase: "resealing", done: 0, total: pending, newKeyID: newID.hex))
        var resealed: [RecordKey: (old: SealedRecord, new: SealedRecord)] = [:]
        for secret in snapshot.secrets {
            for version in secret.versions where version.sealed.keyID != newID {
                resealed[RecordKey(name: secret.name, version: version.version)] =
                    (version.sealed, try reseal(version, of: secret, storeID: snapshot.storeID, with: key, services: services))
                if resealed.count % Self.batchSize == 0 || resealed.count == pending {
                    update(Progress(phase: "resealing", done: resealed.count, total: pending, newKeyID: newID.hex))
                    if let pausePerBatch { sleep(for: pausePerBatch) }
                }
            }
        }

        update(Progress(phase: "committing", done: pending, total: pending, newKeyID: newID.hex))
        // Handed to the commit and let go inside it, so that the resealed
        // records are freed before the store file is written.
        let handedOver = Mutex(Optional(resealed))
        resealed = [:]
        // Written once, whole, under the new key (file and log): the old
        // key is then no longer needed for them either.
        let count = try services.store.commitWhole { storeID, secrets -> Int in
            let prepared = handedOver.withLock { $0.take() } ?? [:]
            var count = 0
            for (name, secret) in secrets {
                var changed = secret
                for (i, version) in secret.versions.enumerated() where version.sealed.keyID != newID {
                    if let done = prepared[RecordKey(name: name, version: version.version)], done.old == version.sealed {
                        changed.versions[i].sealed = done.new
                    } else {
                        changed.versions[i].sealed = try reseal(version, of: secret, storeID: storeID, with: key, services: services)
                    }
                    count += 1
                }
                secrets[name] = changed
            }
            return count
        }

        let retired = keyring.retire(keeping: services.store.neededKeyIDs)
        let outcome = Outcome(oldKeyIDs: ([oldCurrent] + before.retired).map(\.hex).filter { $0 != newID.hex },
                              newKeyID: newID.hex, resealed: count, retired: retired.map(\.hex))
        last.withLock { $0 = (outcome, Int64(time(nil))) }
        return outcome
    }

    private func reseal(
        _ version: SecretVersion, of secret: Secret, storeID: String, with key: MasterKey, services: CofferServices
    ) throws -> SealedRecord {
        let identity = secret.identity(storeID: storeID, version: version.version)
        let plaintext = try services.sealer.open(version.sealed, for: identity, keyring: services.keyring)
        return try plaintext.withUnsafeBytes { try services.sealer.seal($0, for: identity, with: key) }
    }

    private func update(_ progress: Progress) {
        running.withLock { $0 = progress }
    }

    private func sleep(for duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var remaining = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        while true {
            var request = remaining
            guard nanosleep(&request, &remaining) == -1, errno == EINTR else { return }
        }
    }

    private struct RecordKey: Hashable {
        let name: SecretName
        let version: UInt64
    }
}
