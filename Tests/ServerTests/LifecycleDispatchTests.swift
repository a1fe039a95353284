import Audit
import Foundation
import Keyring
import Model
import Testing

@testable import Server

/// Versions and stages, hashed secrets, tokens, expiry, seal and
/// master-key rotation, through the dispatcher (docs/protocol.md).
@Suite struct LifecycleDispatchTests {
    func value(_ h: Harness, _ request: String) async throws -> String? {
        try await h.call(request)["value"] as? String
    }

    func match(_ h: Harness, _ name: String, _ candidate: String, extra: String = "") async throws -> Bool? {
        try await h.call(#"{"op":"verify","name":"\#(name)","value":"\#(candidate)"\#(extra)}"#)["match"] as? Bool
    }

    @Test func rotateMakesTheOldVersionPreviousAndRollbackBringsItBack() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"db","value":"one"}"#)
        let rotated = try await h.call(#"{"op":"rotate","name":"db","value":"two"}"#)
        #expect(rotated["version"] as? Int == 2 && rotated["stage"] as? String == "current")
        #expect(try await value(h, #"{"op":"get","name":"db"}"#) == "two")
        #expect(try await value(h, #"{"op":"get","name":"db","stage":"previous"}"#) == "one")
        let back = try await h.call(#"{"op":"rollback","name":"db"}"#)
        #expect(back["version"] as? Int == 1 && back["previous"] as? Int == 2)
        #expect(try await value(h, #"{"op":"get","name":"db"}"#) == "one")
        #expect(h.audit.all.contains { $0.kind == .rollback && $0.version == 1 && $0.result == .ok })
        #expect(try await h.errorCode(#"{"op":"rotate","name":"nope","value":"x"}"#) == "NOT_FOUND")
    }

    @Test func aPendingVersionWaitsForPromote() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"db","value":"one"}"#)
        let staged = try await h.call(#"{"op":"rotate","name":"db","value":"two","pending":true}"#)
        #expect(staged["stage"] as? String == "pending")
        #expect(try await value(h, #"{"op":"get","name":"db"}"#) == "one")
        #expect(try await value(h, #"{"op":"get","name":"db","stage":"pending"}"#) == "two")
        #expect(try await h.errorCode(#"{"op":"rotate","name":"db","value":"three"}"#) == "CONFLICT")
        #expect(try await h.call(#"{"op":"promote","name":"db"}"#)["version"] as? Int == 2)
        #expect(try await value(h, #"{"op":"get","name":"db"}"#) == "two")
        #expect(try await value(h, #"{"op":"get","name":"db","stage":"previous"}"#) == "one")
        #expect(try await h.errorCode(#"{"op":"promote","name":"db"}"#) == "CONFLICT")
        #expect(try await h.errorCode(#"{"op":"get","name":"db","stage":"pending"}"#) == "NOT_FOUND")
        #expect(try await h.errorCode(#"{"op":"get","name":"db","stage":"later"}"#) == "BAD_REQUEST")
    }

    @Test func verifyAcceptsThePreviousValueOnlyWithAGracePeriod() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"api","value":"old"}"#)
        _ = try await h.call(#"{"op":"rotate","name":"api","value":"new"}"#)
        #expect(try await match(h, "api", "old") == false, "no grace period by default")
        _ = try await h.call(#"{"op":"rotate","name":"api","value":"newer","grace_seconds":3600}"#)
        #expect(try await match(h, "api", "newer") == true)
        #expect(try await match(h, "api", "new") == true, "previous, within the grace period")
        #expect(h.audit.all.last { $0.kind == .verify }?.version == 2, "the audit names the version that matched")
        #expect(try await match(h, "api", "old") == false, "older than previous")
        #expect(try await match(h, "api", "new", extra: #","stage":"current""#) == false)
    }

    @Test func historyShowsVersionsStagesAndAuthorsButNoValue() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"db","value":"SECRET-ONE"}"#)
        _ = try await h.call(#"{"op":"rotate","name":"db","value":"SECRET-TWO","pending":true}"#)
        let text = await h.line(#"{"op":"history","name":"db"}"#)
        #expect(!text.contains("SECRET"))
        let history = try await h.call(#"{"op":"history","name":"db"}"#)
        let versions = try #require(history["versions"] as? [[String: Any]])
        #expect(versions.map { $0["version"] as? Int } == [1, 2])
        #expect(versions.map { $0["stages"] as? [String] } == [["current"], ["pending"]])
        #expect(versions.allSatisfy { $0["created_by"] as? String == "uid:1000" && $0["created_at"] is Int })
        #expect(try await h.errorCode(#"{"op":"history","name":"db"}"#, on: .service) == "DENIED")
    }

    @Test func retentionWipesTheOldestUnstagedVersions() async throws {
        let h = try Harness(retainVersions: 3)
        for n in 1...5 {
            _ = try await h.call(n == 1 ? #"{"op":"put","name":"k","value":"v1"}"# : #"{"op":"rotate","name":"k","value":"v\#(n)"}"#)
        }
        let versions = try #require(try await h.call(#"{"op":"history","name":"k"}"#)["versions"] as? [[String: Any]])
        #expect(versions.map { $0["version"] as? Int } == [3, 4, 5])
        #expect(try await h.errorCode(#"{"op":"get","name":"k","version":1}"#) == "NOT_FOUND")
        let file = try String(contentsOfFile: h.services.store.path, encoding: .utf8)
        #expect(!file.contains("\"version\" : 1,"), "the dropped ciphertext left the file")
    }

    @Test func hashedPasswordsUseScryptAndAreNeverRevealed() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"pw","value":"correct horse","protection":"hashed"}"#)
        let secret = try #require(h.services.store.snapshot[try SecretName("pw")])
        guard case .scrypt(let n, let r, let p, let salt)? = secret.current?.hash else {
            Issue.record("a password defaults to scrypt")
            return
        }
        #expect(n == 1 << 15 && r == 8 && p == 1 && salt.count == 16)
        #expect(try await match(h, "pw", "correct horse") == true)
        #expect(try await match(h, "pw", "correct horsf") == false)
        #expect(try await h.errorCode(#"{"op":"get","name":"pw"}"#) == "CONFLICT")
        let exported = await h.line(#"{"op":"export","plaintext":true}"#)
        #expect(!exported.contains("correct horse"))
        // A second password gets its own salt.
        _ = try await h.call(#"{"op":"put","name":"pw2","value":"correct horse","protection":"hashed"}"#)
        let other = try #require(h.services.store.snapshot[try SecretName("pw2")]?.current?.hash)
        #expect(other != secret.current?.hash)
    }

    @Test func tokensAreShownOnceStoredHashedAndCheckedForTheirOperations() async throws {
        let h = try Harness()
        let created = try await h.call(#"{"op":"token.create","name":"tokens/ci","prefix":"pg","operations":["deploy"]}"#)
        let token = try #require(created["token"] as? String)
        #expect(token.wholeMatch(of: /pg_[0-9a-f]{64}/) != nil)
        let secret = try #require(h.services.store.snapshot[try SecretName("tokens/ci")])
        #expect(secret.protection == .hashed && secret.current?.hash == .hmacSHA256 && secret.kind.rawValue == "token")
        #expect(try await h.errorCode(#"{"op":"get","name":"tokens/ci"}"#) == "CONFLICT", "never revealed again")
        #expect(!(try String(contentsOfFile: h.services.store.path, encoding: .utf8)).contains(String(token.dropFirst(3))))
        #expect(try await match(h, "tokens/ci", token) == false, "a restricted token names its operation or fails closed")
        #expect(try await match(h, "tokens/ci", token, extra: #","operation":"deploy""#) == true)
        #expect(try await match(h, "tokens/ci", token, extra: #","operation":"delete""#) == false)
        #expect(try await match(h, "tokens/ci", "pg_" + String(repeating: "0", count: 64)) == false)
        #expect(try await h.errorCode(#"{"op":"token.create","name":"t2","prefix":"bad_prefix"}"#) == "BAD_REQUEST")
        #expect(try await h.errorCode(#"{"op":"token.create","name":"t2","value":"mine"}"#) == "BAD_REQUEST")
    }

    @Test func anExpiredSecretIsNeitherServedNorVerifiedAndTheRefusalIsAudited() async throws {
        let h = try Harness()
        let past = Int(Date().timeIntervalSince1970) - 1
        let future = Int(Date().timeIntervalSince1970) + 3600
        _ = try await h.call(#"{"op":"put","name":"old","value":"v","expires_at":\#(past)}"#)
        _ = try await h.call(#"{"op":"put","name":"fresh","value":"v","expires_at":\#(future)}"#)
        #expect(try await h.errorCode(#"{"op":"get","name":"old"}"#) == "EXPIRED")
        #expect(try await h.errorCode(#"{"op":"verify","name":"old","value":"v"}"#) == "EXPIRED")
        #expect(try await value(h, #"{"op":"get","name":"fresh"}"#) == "v")
        let refusal = h.audit.all.last { $0.kind == .verify }
        #expect(refusal?.secret == "old" && refusal?.result == .error && refusal?.reason == "EXPIRED")
        let listed = try #require(try await h.call(#"{"op":"list"}"#)["secrets"] as? [[String: Any]])
        #expect(listed.first { $0["name"] as? String == "old" }?["expired"] as? Bool == true)
        // Clearing the expiry serves it again.
        _ = try await h.call(#"{"op":"rotate","name":"old","value":"w","expires_at":null}"#)
        #expect(try await value(h, #"{"op":"get","name":"old"}"#) == "w")
        let token = try #require(try await h.call(#"{"op":"token.create","name":"t","expires_at":\#(past)}"#)["token"] as? String)
        #expect(try await h.errorCode(#"{"op":"verify","name":"t","value":"\#(token)"}"#) == "EXPIRED")
    }

    @Test func generatedValuesComeInTheAskedForm() async throws {
        let h = try Harness()
        let put = try await h.call(#"{"op":"put","name":"g","generate":{"bytes":16,"format":"hex"}}"#)
        #expect(put["value"] == nil, "a sealed generated value is read with get, not echoed")
        let hex = try #require(try await value(h, #"{"op":"get","name":"g"}"#))
        #expect(hex.wholeMatch(of: /[0-9a-f]{32}/) != nil)
        let hashed = try await h.call(#"{"op":"put","name":"h","protection":"hashed","generate":{"format":"token","prefix":"svc"}}"#)
        let shown = try #require(hashed["value"] as? String)
        #expect(try await match(h, "h", shown) == true)
        #expect(try await h.errorCode(#"{"op":"put","name":"g2","generate":{"bytes":8}}"#) == "BAD_REQUEST")
        #expect(try await h.errorCode(#"{"op":"put","name":"g2","value":"x","generate":{}}"#) == "BAD_REQUEST")
    }

    @Test func sealWipesTheKeysUntilUnseal() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"db","value":"v"}"#)
        #expect(try await h.call(#"{"op":"seal"}"#)["sealed"] as? Bool == true)
        #expect(try await h.call(#"{"op":"status"}"#)["sealed"] as? Bool == true)
        #expect(try await h.errorCode(#"{"op":"get","name":"db"}"#) == "UNAVAILABLE")
        #expect(try await h.errorCode(#"{"op":"verify","name":"db","value":"v"}"#) == "UNAVAILABLE")
        #expect(try await h.errorCode(#"{"op":"put","name":"db","value":"w"}"#) == "UNAVAILABLE")
        #expect(h.services.keyring.keyIDs.current == nil && h.services.keyring.keyIDs.retired.isEmpty)
        // A key that does not open the store leaves it sealed.
        let wrong = h.directory.path + "/wrong.key"
        try MasterKeySource.createKeyFile(at: wrong, key: try MasterKey.generate())
        #expect(try await h.errorCode(#"{"op":"unseal","key_file":"\#(wrong)"}"#) == "CONFLICT")
        #expect(h.services.keyring.isSealed)
        #expect(try await h.call(#"{"op":"unseal"}"#)["sealed"] as? Bool == false)
        #expect(try await value(h, #"{"op":"get","name":"db"}"#) == "v")
        #expect(h.audit.all.contains { $0.kind == .seal } && h.audit.all.contains { $0.kind == .unseal && $0.result == .ok })
    }

    @Test func aKeyFileRotationIsListedWithItsIDAndAReusedPathIsRefused() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"db","value":"v"}"#)
        let path = h.directory.path + "/next.key"
        let next = try MasterKey.generate()
        try MasterKeySource.createKeyFile(at: path, key: next)
        let answer = try await h.call(#"{"op":"rotate-master-key","key_file":"\#(path)"}"#)
        #expect(answer["key_id"] as? String == next.id.hex)
        let locations = try #require(h.services.keyLocations)
        #expect(try locations.listed().last?.keyID == next.id)
        #expect(try locations.load().current.id == next.id)
        // Someone writes another key over the same path: it is not taken.
        try FileManager.default.removeItem(atPath: path)
        try MasterKeySource.createKeyFile(at: path, key: try MasterKey.generate())
        let reloaded = try locations.load()
        #expect(reloaded.current.id != next.id)
        #expect(reloaded.skipped.count == 1 && reloaded.skipped[0].contains("listed for key \(next.id)"))
        #expect(try await h.errorCode(#"{"op":"rotate-master-key","key_file":"/nonexistent/key"}"#) == "BAD_REQUEST")
    }

    @Test func rotatingTheMasterKeyResealsEveryRecordWhileReadsGoOn() async throws {
        let h = try Harness()
        for n in 0..<300 { _ = try await h.call(#"{"op":"put","name":"s/\#(n)","value":"value-\#(n)"}"#) }
        let before = try #require(h.services.keyring.keyIDs.current)
        async let rotation = h.call(#"{"op":"rotate-master-key","generate":true}"#)
        var reads = 0
        for round in 0..<3 {
            for n in stride(from: round, to: 300, by: 7) {
                #expect(try await value(h, #"{"op":"get","name":"s/\#(n)"}"#) == "value-\(n)")
                reads += 1
            }
        }
        let answer = try await rotation
        #expect(answer["ok"] as? Bool == true, "\(answer)")
        #expect(answer["resealed"] as? Int == 300)
        let after = try #require(h.services.keyring.keyIDs.current)
        #expect(after != before)
        #expect(h.services.keyring.keyIDs.retired.isEmpty, "the old key is dropped once nothing needs it")
        let snapshot = h.services.store.snapshot
        #expect(snapshot.secrets.allSatisfy { $0.versions.allSatisfy { $0.sealed.keyID == after } })
        #expect(h.services.store.fileKeyID == after.hex)
        #expect(try await value(h, #"{"op":"get","name":"s/42"}"#) == "value-42")
        // The new key is listed for the next start, and loads.
        let loaded = try h.services.keyLocations!.load()
        #expect(loaded.current.id == after)
        #expect(reads > 0)
    }
}
