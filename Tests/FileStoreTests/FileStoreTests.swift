import CofferTestSupport
@testable import FileStore
import Foundation
import Keyring
import Model
import Seal
import Synchronization
import Testing

@Suite struct SecretStoreTests {
    let sealer = RecordSealer()

    func version(_ number: UInt64, of name: SecretName, storeID: String) throws -> SecretVersion {
        let identity = RecordIdentity(storeID: storeID, name: name.rawValue, version: number, protection: "sealed")
        let sealed = try Array("value-\(number)".utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: TestKeys.master()) }
        return SecretVersion(version: number, sealed: sealed, encoding: .text, createdAt: 1_700_000_000, createdBy: "uid:0")
    }

    func put(_ name: String, in store: SecretStore) throws {
        let name = try SecretName(name)
        try store.commit { storeID, secrets in
            var secret = secrets[name] ?? Secret(name: name, kind: .generic, protection: .sealed, versions: [])
            try secret.add(try version(secret.nextVersion, of: name, storeID: storeID), pending: false, at: 1_700_000_000, by: "uid:0")
            secrets[name] = secret
        }
    }

    func authenticator() throws -> StoreAuthenticator {
        try StoreAuthenticator(keyring: Keyring(current: TestKeys.master()), sealer: sealer)
    }

    func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! Int
    }

    @Test func createsAPrivateStoreWithAStoreID() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        #expect(store.snapshot.storeID.count == 32)
        #expect(store.snapshot.generation == 0)
        #expect(try mode(store.path) == 0o600)
    }

    @Test func commitsAreDurableAndReloadIdentically() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("db/password", in: store)
        try put("db/password", in: store)
        try put("api/token", in: store)
        #expect(store.snapshot.generation == 3)
        let reopened = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot[try SecretName("db/password")]?.versions.map(\.version) == [1, 2])
        #expect(try mode(store.path) == 0o600)
    }

    @Test func stagesHashesExpiryAndGraceSurviveARestart() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        let name = try SecretName("svc/token")
        try store.commit { storeID, secrets in
            var secret = Secret(name: name, kind: .generic, protection: .hashed, versions: [], graceSeconds: 300,
                                expiresAt: 2_000_000_000, operations: ["deploy", "read"])
            for (n, hash) in [(UInt64(1), HashParameters.hmacSHA256), (2, .scrypt(n: 1024, r: 8, p: 1, salt: [1, 2, 3]))] {
                var v = try version(n, of: name, storeID: storeID)
                v.sealed = try [7].withUnsafeBytes { try sealer.seal($0, for: secret.identity(storeID: storeID, version: n), with: TestKeys.master()) }
                v.hash = hash
                try secret.add(v, pending: n == 2, at: 1_700_000_000 + Int64(n), by: "uid:\(n)")
            }
            secrets[name] = secret
        }
        let reopened = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        #expect(reopened.snapshot == store.snapshot)
        let secret = try #require(reopened.snapshot[name])
        #expect(secret.stages == SecretStages(current: 1, pending: 2, changedAt: 1_700_000_001, changedBy: "uid:1"))
        #expect(secret.version(2)?.hash == .scrypt(n: 1024, r: 8, p: 1, salt: [1, 2, 3]))
        #expect(secret.graceSeconds == 300 && secret.expiresAt == 2_000_000_000 && secret.operations == ["deploy", "read"])
    }

    @Test func observersHearEveryServedSnapshotInOrderWithItsOrigin() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        let heard = Mutex<[(StoreCommit.Origin, UInt64, UInt64)]>([])
        store.onCommit { commit in heard.withLock { $0.append((commit.origin, commit.old.generation, commit.new.generation)) } }
        try put("svc/a", in: store)
        #expect(store.snapshot.outbox.isEmpty, "no outbox unless the store keeps one")
        store.keepsOutbox = true
        try put("svc/b", in: store)
        #expect(Array(store.snapshot.outbox.keys) == [try SecretName("svc/b")])
        try store.commitTaken { _, secrets, _ in secrets[try SecretName("svc/a")] = nil }
        #expect(store.snapshot.outbox.count == 1, "a taken change is not queued")
        try store.dropFromOutbox([try SecretName("svc/b"): store.snapshot.generation])
        #expect(store.snapshot.outbox.isEmpty)
        #expect(throws: (any Error).self) { try store.commit { _, _ in throw StoreError(.io, "refused") } }
        let origins = heard.withLock { $0 }
        #expect(origins.map(\.0) == [.local, .local, .taken, .outbox], "a failed commit serves nothing and tells no one")
        #expect(origins.map(\.1) == [0, 1, 2, 3] && origins.map(\.2) == [1, 2, 3, 4])
    }

    @Test func theHandWrittenFileSaysWhatJSONEncoderWould() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        store.keepsOutbox = true
        try put("svc/a", in: store)
        try put("svc/a", in: store)
        try store.commit { storeID, secrets in
            var s = secrets[try SecretName("svc/a")]!
            s.access = SecretAccess(principals: [try Principal.parse("uid:7", directory: NumericAccounts())], scope: .sockets([.credentials]))
            s.expiresAt = 2_000_000_000
            s.graceSeconds = 60
            s.operations = ["deploy"]
            s.versions[0].hash = nil
            secrets[s.name] = s
        }
        let file = try StoreFileFormat(store.snapshot, authenticator: try authenticator())
        let ours = try JSONSerialization.jsonObject(with: Data(try file.encoded())) as! NSDictionary
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let theirs = try JSONSerialization.jsonObject(with: encoder.encode(file)) as! NSDictionary
        #expect(ours == theirs)
        #expect(String(decoding: try file.encoded(), as: UTF8.self).contains("\"ciphertext\" : \""))
    }

    @Test func aFailedChangeChangesNothing() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("a", in: store)
        let before = try Data(contentsOf: URL(fileURLWithPath: store.path))
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try store.commit { _, secrets in
                secrets[try SecretName("a")] = nil
                throw Refused()
            }
        }
        #expect(store.snapshot.generation == 1)
        #expect(store.snapshot[try SecretName("a")] != nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.path)) == before)
    }

    @Test func theFileHoldsCiphertextOnly() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("db/password", in: store)
        let log = try Data(contentsOf: URL(fileURLWithPath: dir.file(SecretStore.logFileName)))
        #expect(String(decoding: log, as: UTF8.self).contains("db/password"))
        #expect(!String(decoding: log, as: UTF8.self).contains("value-1"))
        try store.compactNow()
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(text.contains("db/password"))
        #expect(!text.contains("value-1"))
    }

    @Test func leftoverTempFilesAreRemovedNotLoaded() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("kept", in: store)
        let leftover = store.path + ".tmp-abcdef"
        _ = FileManager.default.createFile(atPath: leftover, contents: Data("garbage".utf8))
        let reopened = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(reopened.snapshot == store.snapshot)
    }

    @Test func refusesAStoreFileOthersCanRead() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        chmod(store.path, 0o644)
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(error?.code == .permissions)
    }

    @Test(arguments: [
        "not json",
        #"{"format":"other","format_version":1,"store_id":"x","generation":0,"secrets":[]}"#,
        #"{"format":"coffer-store","format_version":99,"store_id":"x","generation":0,"secrets":[]}"#,
        #"{"format":"coffer-store","format_version":1,"store_id":"x","generation":0,"secrets":[{"name":"../x","kind":"generic","protection":"sealed","versions":[]}]}"#,
    ])
    func refusesCorruptFiles(_ contents: String) throws {
        let (dir, _) = try directory(withStoreFile: contents)
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(error?.code == .corrupt)
    }

    /// The file is read member by member (StoreFileReader): a member it
    /// does not know, or one given twice, is refused rather than passed
    /// over, and a missing one is named.
    @Test(arguments: [
        (#"{"format":"coffer-store","format_version":2,"store_id":"x","generation":0,"secrets":[],"extra":1}"#,
         "top level holds a member this cofferd does not know"),
        (#"{"format":"coffer-store","format_version":2,"store_id":"x","generation":0,"generation":1,"secrets":[]}"#,
         "top level holds a member twice"),
        (#"{"format":"coffer-store","format_version":2,"store_id":"x","generation":0}"#, "secrets is missing"),
        (#"{"format":"coffer-store","format_version":2,"store_id":"x","generation":"0","secrets":[]}"#,
         "generation is not a whole number"),
        (#"{"format":"coffer-store","format_version":2,"store_id":"x","generation":0,"secrets":[]} []"#, "not valid JSON"),
        (#"{"format":"coffer-store","format_version":2,"store_id":"x","generation":0,"secrets":[{"name":"a","kind":"generic","protection":"sealed","versions":[{"version":1,"sealed":{"key_id":"0011223344556677","salt":"","nonce":"","ciphertext":"","iv":""}}]}]}"#,
         "sealed holds a member this cofferd does not know"),
    ])
    func namesWhatIsWrongWithTheFile(_ contents: String, _ problem: String) throws {
        let (dir, _) = try directory(withStoreFile: contents)
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains(problem) == true, "\(error?.message ?? "")")
    }

    /// Member order and escaped slashes are the writer's choice: the same
    /// content, written back by Foundation (which orders members as it
    /// likes and writes `\/`), loads as the same snapshot.
    @Test func membersInAnyOrderAndEscapedSlashesReadTheSame() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("db/password", in: store)
        try put("db/password", in: store)
        try store.compactNow()
        let original = try Data(contentsOf: URL(fileURLWithPath: store.path))
        let rewritten = try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: original))
        #expect(rewritten != original)
        #expect(String(decoding: rewritten, as: UTF8.self).contains("\\/"))
        try rewritten.write(to: URL(fileURLWithPath: store.path))
        let reopened = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        #expect(reopened.snapshot == store.snapshot)
    }

    // MARK: tamper, rollback and reload (docs/file-format.md)

    /// A store with two secrets, its file's bytes, and a second handle on
    /// the same directory that reloads what the first commits.
    func twoHandles() throws -> (TemporaryDirectory, SecretStore, SecretStore) {
        let dir = try TemporaryDirectory()
        let writer = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("a", in: writer)
        try put("b", in: writer)
        // store.json holds both, not only the log.
        try writer.compactNow()
        let reader = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        return (dir, writer, reader)
    }

    /// Another process drops `writer`'s state in as a newer store file
    /// (as a copy from another host would be).
    func publish(_ writer: SecretStore) throws {
        try replaceFile(writer, with: try writer.exportedFile())
    }

    func replaceFile(_ store: SecretStore, with bytes: [UInt8]) throws {
        let temporary = store.path + ".edit"
        _ = FileManager.default.createFile(atPath: temporary, contents: Data(bytes))
        chmod(temporary, 0o600)
        rename(temporary, store.path)
    }

    @Test func aNewerFileIsTakenWhole() throws {
        let (dir, writer, reader) = try twoHandles()
        defer { withExtendedLifetime(dir) {} }
        try put("c", in: writer)
        try publish(writer)
        guard case .replaced(let old, let new) = try reader.reload() else {
            Issue.record("expected the newer file to be taken")
            return
        }
        #expect(old.generation + 1 == new.generation)
        #expect(reader.snapshot == writer.snapshot)
        guard case .unchanged = try reader.reload() else {
            Issue.record("reading the same file again is a no-op")
            return
        }
    }

    /// A reload opens the records that changed, not the whole store: here
    /// the reader lacks the key of one record (startup does not open
    /// records), which stays unchanged through one reload and is refused
    /// once a new file changes it.
    @Test func aReloadOpensWhatChangedAndRefusesAChangedRecordThatDoesNotOpen() throws {
        let dir = try TemporaryDirectory()
        let other = try TestKeys.master(first: 100)
        let writer = try SecretStore.open(
            directory: dir.path,
            authenticator: try StoreAuthenticator(keyring: Keyring(current: TestKeys.master(), retired: [other]), sealer: sealer))
        let foreign = try SecretName("sealed/elsewhere")
        func sealForeign(_ storeID: String, value: String) throws -> SecretVersion {
            let identity = RecordIdentity(storeID: storeID, name: foreign.rawValue, version: 1, protection: "sealed")
            let sealed = try Array(value.utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: other) }
            return SecretVersion(version: 1, sealed: sealed, encoding: .text, createdAt: 1_700_000_000, createdBy: "uid:0")
        }
        try writer.commit { storeID, secrets in
            secrets[foreign] = Secret(name: foreign, kind: .generic, protection: .sealed, versions: [try sealForeign(storeID, value: "x")])
        }
        let reader = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("a", in: writer)
        try publish(writer)
        guard case .replaced = try reader.reload() else {
            Issue.record("a reload that changes only a is taken: the unchanged record is not opened again")
            return
        }
        #expect(reader.snapshot == writer.snapshot)
        try writer.commit { storeID, secrets in
            secrets[foreign]?.versions = [try sealForeign(storeID, value: "y")]
        }
        try publish(writer)
        let error = #expect(throws: StoreError.self) { try reader.reload() }
        #expect(error?.code == .tampered)
        #expect(reader.snapshot[try SecretName("a")] != nil && reader.snapshot.generation + 1 == writer.snapshot.generation,
                "the last good snapshot still serves")
    }

    @Test(arguments: ["flip", "truncate", "drop", "duplicate", "reorder", "unstage", "expire", "rehash"])
    func aFileChangedOutsideCofferdIsRefusedAndTheLastGoodOneServes(change: String) throws {
        let (dir, writer, reader) = try twoHandles()
        defer { withExtendedLifetime(dir) {} }
        try put("c", in: writer)
        try publish(writer)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        var json = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
        var secrets = json["secrets"] as! [[String: Any]]
        switch change {
        case "flip":
            // One character of a ciphertext, still valid base64.
            let index = bytes.firstIndex(of: UInt8(ascii: "\"")).map { _ in
                String(decoding: bytes, as: UTF8.self).range(of: "\"ciphertext\" : \"")!.upperBound.utf16Offset(in: String(decoding: bytes, as: UTF8.self))
            }!
            bytes[index] = bytes[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        case "truncate":
            bytes = Array(bytes.prefix(bytes.count / 2))
        case "drop":
            secrets.removeLast()
        case "duplicate":
            secrets.append(secrets[0])
        case "unstage":
            // Stages and expiry are metadata outside the AAD: the MAC
            // must cover them, or an edit could move "current".
            secrets[0]["stages"] = nil
        case "expire":
            secrets[0]["expires_at"] = 1
        case "rehash":
            var versions = secrets[0]["versions"] as! [[String: Any]]
            versions[0]["hash"] = ["algorithm": "hmac-sha256"]
            secrets[0]["versions"] = versions
            secrets[0]["protection"] = "hashed"
        default:
            secrets.swapAt(0, 1)
        }
        if ["drop", "duplicate", "reorder", "unstage", "expire", "rehash"].contains(change) {
            json["secrets"] = secrets
            json["generation"] = (json["generation"] as! Int) + 1
            bytes = Array(try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]))
        }
        let before = reader.snapshot
        try replaceFile(writer, with: bytes)
        let error = #expect(throws: StoreError.self) { try reader.reload() }
        #expect(error?.code == .tampered || error?.code == .corrupt, "\(change): \(String(describing: error))")
        #expect(reader.snapshot == before, "the last good snapshot keeps serving")
    }

    @Test func anOlderCopyIsRefusedAsARollback() throws {
        let (dir, writer, reader) = try twoHandles()
        defer { withExtendedLifetime(dir) {} }
        let older = Array(try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        try put("c", in: writer)
        try publish(writer)
        _ = try reader.reload()
        try replaceFile(writer, with: older)
        let error = #expect(throws: StoreError.self) { try reader.reload() }
        #expect(error?.code == .tampered)
        #expect(error?.message.contains("rollback") == true)
        #expect(reader.snapshot.secrets.count == 3)
    }

    @Test func theMACIsCheckedAtStartupToo() throws {
        let (dir, writer, _) = try twoHandles()
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: writer.path))) as! [String: Any]
        json["generation"] = 99
        try replaceFile(writer, with: Array(try JSONSerialization.data(withJSONObject: json)))
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(error?.code == .tampered)
    }

    /// A store of 1000 secrets or more checks its MAC and packs its records
    /// on two threads at once: it loads the same as it was written, and a
    /// change is refused as tampered, also when the change leaves records
    /// out of order (the MAC's verdict comes first).
    @Test func aLargeStoreLoadsWholeAndRefusesAnyChange() throws {
        let dir = try TemporaryDirectory()
        let writer = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try writer.commit { storeID, secrets in
            for i in 0..<1200 {
                let name = try SecretName("large/secret\(1000 + i)")
                var secret = Secret(name: name, kind: .generic, protection: .sealed, versions: [])
                try secret.add(try version(1, of: name, storeID: storeID), pending: false, at: 1_700_000_000, by: "uid:0")
                secrets[name] = secret
            }
        }
        let loaded = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        #expect(loaded.snapshot == writer.snapshot)
        #expect(loaded.snapshot.secrets.count == 1200)
        try writer.compactNow()
        let original = try String(contentsOfFile: writer.path, encoding: .utf8)
        for (from, to) in [("\"uid:0\"", "\"uid:1\""), ("large/secret1000\"", "large/secret9999\"")] {
            let range = try #require(original.range(of: from))
            try replaceFile(writer, with: Array(original.replacingCharacters(in: range, with: to).utf8))
            let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
            #expect(error?.code == .tampered, "\(to)")
        }
    }

    /// A file written before this version's MAC code (StoreFileFixture)
    /// loads with every member as written, and its records open: the MAC's
    /// canonical form did not change under it. Edited, it is refused.
    @Test func aFileWrittenByAnEarlierVersionLoads() throws {
        let (dir, _) = try directory(withStoreFile: StoreFileFixture.written9c6c83d)
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        let snapshot = store.snapshot
        #expect(snapshot.storeID == "d2b40bf3b9ed93ded3ccd96e131c8cb7")
        #expect(snapshot.generation == 1)
        #expect(snapshot.secrets.names.map(\.rawValue) == ["api/token", "app/db-password", "web/login"])
        #expect(snapshot.outbox.count == 2)
        #expect(snapshot.outbox[try SecretName("gone/secret")]?.queuedAt == -5)

        let db = try #require(snapshot[try SecretName("app/db-password")])
        #expect(db.stages == SecretStages(current: 2, previous: 1, pending: 3, changedAt: 1_700_000_050, changedBy: "uid:0",
                                          previousAcceptedUntil: 1_700_003_650))
        #expect(db.graceSeconds == 3600)
        #expect(db.access.scope == .sockets([.service]))
        #expect(db.access.principals.map(\.description) == ["uid:1000", "gid:50"])
        #expect(db.versions.map(\.createdAt) == [-86_400, 1_700_000_000, 1_700_000_100])
        #expect(db.versions.map(\.id) == [nil, "0123456789abcdef", "host-b/7"])
        #expect(db.versions.map(\.encoding) == [.text, .text, .binary])
        let expected: [[UInt8]] = [Array("one".utf8), Array("two".utf8), [0, 1, 2, 255]]
        for (version, value) in zip(db.versions, expected) {
            let opened = try sealer.open(version.sealed, for: db.identity(storeID: snapshot.storeID, version: version.version),
                                         with: TestKeys.master())
            #expect(opened.withUnsafeBytes { Array($0) } == value)
        }
        let token = try #require(snapshot[try SecretName("api/token")])
        #expect(token.protection == .hashed && token.versions.first?.hash == .hmacSHA256)
        #expect(token.expiresAt == 1_900_000_000 && token.operations == ["verify", "get"])
        let login = try #require(snapshot[try SecretName("web/login")])
        #expect(login.expiresAt == -1)
        #expect(login.versions.first?.hash == .scrypt(n: 16384, r: 8, p: 1, salt: Array(0..<16)))

        let edited = StoreFileFixture.written9c6c83d.replacingOccurrences(of: "\"grace_seconds\" : 3600", with: "\"grace_seconds\" : 3601")
        #expect(edited != StoreFileFixture.written9c6c83d)
        try replaceFile(store, with: Array(edited.utf8))
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(error?.code == .tampered)
    }

    /// A store directory holding only `contents` as its store file (0600).
    func directory(withStoreFile contents: String) throws -> (TemporaryDirectory, String) {
        let dir = try TemporaryDirectory()
        let path = dir.file(SecretStore.fileName)
        _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
        chmod(path, 0o600)
        return (dir, path)
    }

    @Test func aVersionOneFileIsRefusedUnlessMigratedExplicitly() throws {
        let (dir, path) = try directory(withStoreFile: #"{"format":"coffer-store","format_version":1,"store_id":"0123","generation":4,"secrets":[]}"#)
        #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator(), migrateVersion1: true)
        #expect(store.snapshot.generation == 4)
        let rewritten = try String(contentsOfFile: path, encoding: .utf8)
        #expect(rewritten.contains("\"format_version\" : 2"))
        #expect(rewritten.contains("\"mac\" : "))
    }

    /// The MAC joins a token's operations with commas: a name holding one
    /// would make ["verify", "get"] and ["verify,get"] share a MAC, and
    /// the edited file would load as authentic. Such a name is refused
    /// before the MAC is weighed.
    @Test func anOperationNameHoldingACommaIsRefused() throws {
        let joined = StoreFileFixture.written9c6c83d.replacingOccurrences(
            of: "\"operations\" : [\n        \"verify\",\n        \"get\"\n      ]", with: "\"operations\" : [\n        \"verify,get\"\n      ]")
        #expect(joined != StoreFileFixture.written9c6c83d, "the fixture's list was found")
        let (dir, path) = try directory(withStoreFile: joined)
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(error?.code == .corrupt)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == joined, "nothing written")
        #expect(Secret.isValidOperation("verify") && !Secret.isValidOperation("verify,get") && !Secret.isValidOperation(""))
    }

    /// A directory that served authenticated files has store-generation; a
    /// file without a MAC found there was put there since (records copied
    /// from any backup of the store still open), and is not migrated, even
    /// when asked to.
    @Test func aVersionOneFileInADirectoryThatServedAuthenticatedFilesIsNotMigrated() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try authenticator())
        try put("app/a", in: store)
        try store.compactNow()
        let storeID = store.snapshot.storeID
        let forged = #"{"format":"coffer-store","format_version":1,"store_id":"\#(storeID)","generation":900,"secrets":[]}"#
        try replaceFile(store, with: Array(forged.utf8))
        let error = #expect(throws: StoreError.self) {
            try SecretStore.open(directory: dir.path, authenticator: try authenticator(), migrateVersion1: true)
        }
        #expect(error?.code == .tampered)
        #expect(try String(contentsOfFile: store.path, encoding: .utf8) == forged, "nothing written")
    }

    @Test func aRestartCannotRollBackOrSwapTheStore() throws {
        let (dir, writer, _) = try twoHandles()
        defer { withExtendedLifetime(dir) {} }
        let older = Array(try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        try put("c", in: writer)
        try writer.compactNow()
        // cofferd stops; someone restores the older copy; cofferd starts.
        try replaceFile(writer, with: older)
        let rollback = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(rollback?.message.contains("rollback") == true)
        // Another store's file (same key) is refused too.
        let other = try TemporaryDirectory()
        let foreign = try SecretStore.open(directory: other.path, authenticator: try authenticator())
        try replaceFile(writer, with: Array(try Data(contentsOf: URL(fileURLWithPath: foreign.path))))
        #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        // And a missing file is not silently a new, empty store.
        unlink(writer.path)
        let missing = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(missing?.code == .notFound)
    }

    @Test func aNegativeGenerationIsRefusedNotACrash() throws {
        let (dir, _) = try directory(withStoreFile: #"{"format":"coffer-store","format_version":2,"store_id":"0123","generation":-1,"secrets":[]}"#)
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path, authenticator: try authenticator()) }
        #expect(error?.code == .corrupt)
    }

    @Test func anEditInPlaceIsSeenAlthoughTheFileKeepsItsInode() throws {
        let (dir, writer, _) = try twoHandles()
        defer { withExtendedLifetime(dir) {} }
        guard case .unchanged = try writer.reload() else {
            Issue.record("its own last commit is recognised without reading")
            return
        }
        // An editor writing in place (IN_CLOSE_WRITE): same inode, new content.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        bytes[bytes.count / 2] ^= 0x01
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: writer.path))
        try handle.write(contentsOf: bytes)
        try handle.close()
        #expect(throws: StoreError.self) { try writer.reload() }
    }
}
