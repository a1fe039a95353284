@testable import FileStore
import Keyring
import Model
import Seal
import Testing

/// The packed form must give back exactly the secrets it was given, every
/// field of every kind of secret, and compare equal exactly when they are.
@Suite struct PackedSecretsTests {
    static let keyA = KeyID(hex: "00112233445566ff")!
    static let keyB = KeyID(hex: "a0b1c2d3e4f50617")!

    static func sealed(_ key: KeyID, _ seed: UInt8, length: Int = 20) -> SealedRecord {
        SealedRecord(keyID: key, salt: [UInt8](repeating: seed, count: 32), nonce: [UInt8](repeating: seed &+ 1, count: 12),
                     ciphertext: (0..<length).map { UInt8(truncatingIfNeeded: $0) &+ seed })
    }

    static func plain(_ name: String, versions: Int = 1, key: KeyID = keyA) throws -> Secret {
        let name = try SecretName(name)
        return Secret(name: name, kind: .generic, protection: .sealed, versions: (1...versions).map {
            SecretVersion(version: UInt64($0), sealed: sealed(key, UInt8($0)), encoding: .text, createdAt: 1_800_000_000,
                          createdBy: "uid:0", id: "0123456789abcdef")
        })
    }

    /// One of each: every optional field set, every flag used.
    static func variety() throws -> [Secret] {
        let everything = Secret(
            name: try SecretName("app/everything.v2"), kind: try SecretKind("api-key"), protection: .sealed,
            versions: [
                SecretVersion(version: 3, sealed: sealed(keyA, 7, length: 0), encoding: .binary, createdAt: -5,
                              createdBy: "unit:deploy-something-long.service", id: "not hex, but kept"),
                SecretVersion(version: 9, sealed: sealed(keyB, 200, length: 300), encoding: .text, createdAt: Int64.max,
                              createdBy: "uid:4294967295", id: nil),
                SecretVersion(version: 10, sealed: sealed(keyB, 1), encoding: .text, createdAt: 0, createdBy: "",
                              id: "ABCDEF0123456789"),
            ],
            stages: SecretStages(current: 9, previous: 3, pending: 10, changedAt: Int64.min, changedBy: "uid:1000",
                                 previousAcceptedUntil: 1_900_000_000),
            access: SecretAccess(principals: [.uid(0), .gid(27), .unit(NamePattern("web-*.service")), .anyone],
                                 scope: .sockets([.service, .credentials])),
            graceSeconds: 3600, expiresAt: 1_999_999_999, operations: ["deploy", "read"])
        let hashed = Secret(
            name: try SecretName("svc/password"), kind: try SecretKind("password"), protection: .hashed,
            versions: [
                SecretVersion(version: 1, sealed: sealed(keyA, 3), encoding: .text, createdAt: 1, createdBy: "uid:0",
                              hash: .scrypt(n: 1 << 15, r: 8, p: 1, salt: [1, 2, 3, 4]), id: "fedcba9876543210"),
                SecretVersion(version: 2, sealed: sealed(keyA, 4), encoding: .text, createdAt: 2, createdBy: "uid:0",
                              hash: .hmacSHA256, id: "fedcba9876543211"),
            ],
            access: SecretAccess(principals: [], scope: .sockets([])))
        return [everything, hashed, try plain("a"), try plain("z/last", versions: 3, key: keyB)]
    }

    static func dictionary(_ secrets: [Secret]) -> [SecretName: Secret] {
        Dictionary(uniqueKeysWithValues: secrets.map { ($0.name, $0) })
    }

    @Test func everyFieldComesBack() throws {
        let secrets = try Self.variety()
        let packed = PackedSecrets(Self.dictionary(secrets))
        #expect(packed.count == secrets.count)
        for secret in secrets {
            #expect(packed[secret.name] == secret)
        }
        let sorted = secrets.sorted { $0.name < $1.name }
        #expect(Array(packed) == sorted)
        #expect(packed.names == sorted.map(\.name))
        #expect((0..<packed.count).map { packed.secret(at: $0) } == sorted)
        #expect(packed[try SecretName("app/everything")] == nil)
        #expect(packed[try SecretName("b")] == nil)
        #expect(!packed.contains(try SecretName("zz")))
        #expect(packed.totals.versions == 3 + 2 + 1 + 3)
        #expect(packed.totals.hashed == 1)
    }

    @Test func equalExactlyWhenTheSecretsAre() throws {
        let secrets = try Self.variety()
        #expect(PackedSecrets(Self.dictionary(secrets)) == PackedSecrets(Self.dictionary(secrets.reversed())))
        // A set's order does not reach the bytes.
        var a = secrets[0], b = secrets[0]
        a.access.scope = .sockets([.service, .credentials])
        b.access.scope = .sockets([.credentials, .service])
        #expect(PackedSecrets([a.name: a]) == PackedSecrets([b.name: b]))
        // Any one field changed makes them differ.
        var changed = secrets
        changed[1].versions[1].createdAt += 1
        #expect(PackedSecrets(Self.dictionary(secrets)) != PackedSecrets(Self.dictionary(changed)))
        changed = secrets
        changed[0].stages.pending = nil
        #expect(PackedSecrets(Self.dictionary(secrets)) != PackedSecrets(Self.dictionary(changed)))
        #expect(PackedSecrets([:]).isEmpty)
        #expect(Array(PackedSecrets([:])).isEmpty)
        #expect(PackedSecrets([:]) != PackedSecrets(Self.dictionary(secrets)))
    }

    @Test func findsEveryOneOfManyAndNothingElse() throws {
        var all: [SecretName: Secret] = [:]
        for i in 0..<2000 {
            let secret = try Self.plain("group\(i % 7)/secret-\(i)")
            all[secret.name] = secret
        }
        let packed = PackedSecrets(all)
        for (name, secret) in all { #expect(packed[name] == secret) }
        for i in 2000..<2100 { #expect(packed[try SecretName("group\(i % 7)/secret-\(i)")] == nil) }
    }

    @Test func editsApplyAsTheSameChangesToADictionary() throws {
        let secrets = try Self.variety()
        var dictionary = Self.dictionary(secrets)
        let base = LayeredSecrets(dictionary)
        var edits = EditedSecrets(base)

        let first = try Self.plain("0/first")
        let middle = try Self.plain("m/middle", versions: 2)
        let after = try Self.plain("zz/after")
        var replaced = secrets[1]
        replaced.graceSeconds = 60
        for secret in [first, middle, after, replaced] {
            edits[secret.name] = secret
            dictionary[secret.name] = secret
        }
        #expect(edits.removeValue(forKey: try SecretName("a")) == secrets[2])
        dictionary[try SecretName("a")] = nil
        edits[try SecretName("never/there")] = nil
        // Set back to what the base holds: not a change.
        edits[secrets[3].name] = secrets[3]

        #expect(edits[middle.name] == middle)
        #expect(edits[try SecretName("a")] == nil)
        #expect(edits[secrets[0].name] == secrets[0])
        #expect(edits.names == dictionary.keys.sorted())
        #expect(edits.map(\.secret) == dictionary.keys.sorted().map { dictionary[$0]! })
        #expect(edits.changedNames == [first.name, try SecretName("a"), middle.name, replaced.name, after.name].sorted())

        let applied = base.applying(edits)
        #expect(applied == LayeredSecrets(dictionary))
        #expect(Array(applied) == dictionary.keys.sorted().map { dictionary[$0]! })
        // Packed, the same records as packing the result afresh.
        #expect(applied.packed().base == PackedSecrets(dictionary))
        // The base is a value: it did not change.
        #expect(base == LayeredSecrets(Self.dictionary(secrets)))
    }

    @Test func indicesNotHeldAreTheNewAndChangedRecords() throws {
        let secrets = try Self.variety()
        let old = PackedSecrets(Self.dictionary(secrets))
        var changed = secrets[0]
        changed.expiresAt = nil
        let added = try Self.plain("new/one")
        let new = old.applying([changed.name: changed, try SecretName("a"): nil, added.name: added])
        #expect(new.indicesNotHeld(in: old).map { new.secret(at: $0).name } == [changed.name, added.name])
        #expect(old.indicesNotHeld(in: new).map { old.secret(at: $0).name } == [try SecretName("a"), changed.name])
        #expect(new.indicesNotHeld(in: new).isEmpty)
    }
}
