import FileStore
import Foundation
import Keyring
import LockedMemory
import Mirror
import Model
import Seal

/// `coffer-bench mirror N CONNINFO`: N secrets through the outbox into an
/// empty PostgreSQL database, the way a first sync sends them (the issue's
/// goal: 20k rows/s or more).
enum MirrorBenchmark {
    static func run(count: Int, conninfo: String) throws {
        try SecureHeap.initialize()
        let directory = NSTemporaryDirectory() + "coffer-bench-mirror-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyring = Keyring(current: try MasterKey.generate())
        let sealer = RecordSealer()
        let store = try SecretStore.open(directory: directory, authenticator: try StoreAuthenticator(keyring: keyring, sealer: sealer))
        let key = try keyring.current()
        try store.commit { storeID, secrets in
            for i in 0..<count {
                let name = try SecretName("bench/group\(i % 100)/secret\(i)")
                let identity = RecordIdentity(storeID: storeID, name: name.rawValue, version: 1, protection: "sealed")
                let sealed = try Array("value-\(i)".utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: key) }
                secrets[name] = Secret(name: name, kind: .generic, protection: .sealed, versions: [
                    SecretVersion(version: 1, sealed: sealed, encoding: .text, createdAt: 1_800_000_000, createdBy: "uid:0",
                                  id: try SecureRandom.hex(8)),
                ])
            }
        }
        var settings = Mirror.Settings(conninfo: conninfo)
        settings.batchSize = Int(ProcessInfo.processInfo.environment["COFFER_BENCH_BATCH"] ?? "") ?? settings.batchSize
        let mirror = try Mirror(settings: settings, store: store, keyring: keyring, sealer: sealer,
                                stateDirectory: directory, events: { _ in })
        try store.queueEverything()
        let start = ContinuousClock.now
        let pushed = try mirror.pushOnce()
        let elapsed = start.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        precondition(pushed == count && store.snapshot.outbox.isEmpty, "pushed \(pushed) of \(count)")
        print(String(format: "mirror: %d secrets (%d rows with versions) pushed in %.2f s: %.0f secrets/s",
                     count, count * 2, seconds, Double(count) / seconds))
    }
}
