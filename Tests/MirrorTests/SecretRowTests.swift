import FileStore
import Mirror
import Model
import Testing

/// A secret as the mirror's rows hold it: everything a store file holds
/// comes back, and a row a store file could not hold is refused as the
/// row it is.
@Suite struct SecretRowTests {
    static let key = KeyID(hex: "00112233445566ff")!

    static func version(_ number: UInt64, hash: HashParameters? = nil) -> SecretVersion {
        let seed = UInt8(number)
        return SecretVersion(
            version: number,
            sealed: SealedRecord(keyID: key, salt: [UInt8](repeating: seed, count: 32), nonce: [UInt8](repeating: seed &+ 1, count: 12),
                                 ciphertext: [UInt8](repeating: seed &+ 2, count: 20)),
            encoding: .text, createdAt: 1_800_000_000, createdBy: "uid:0", hash: hash, id: "0123456789abcdef")
    }

    static func plain(_ name: String) throws -> Secret {
        Secret(name: try SecretName(name), kind: .generic, protection: .sealed, versions: [version(1)])
    }

    @Test func aStagedHashedRestrictedSecretComesBackWhole() throws {
        let scrypt = HashParameters.scrypt(n: 16384, r: 8, p: 1, salt: [UInt8](repeating: 7, count: 16))
        let secret = Secret(
            name: try SecretName("app/token"), kind: try SecretKind("api-key"), protection: .hashed,
            versions: [Self.version(1, hash: scrypt), Self.version(2, hash: scrypt), Self.version(3, hash: scrypt)],
            stages: SecretStages(current: 2, previous: 1, pending: 3, changedAt: 1_800_000_100, changedBy: "uid:0",
                                 previousAcceptedUntil: 1_800_000_200),
            access: SecretAccess(principals: [.uid(1000)], scope: .all),
            graceSeconds: 60, expiresAt: 1_900_000_000, operations: ["rotate"])
        let row = SecretRow(secret)
        #expect(row.versions.map(\.stage) == ["previous", "current", "pending"])
        #expect(try row.secret() == secret)
        #expect(!row.metadata.contains("ciphertext"), "versions travel as rows of their own")
    }

    @Test func rowsThatDisagreeWithTheirMetadataAreRefused() throws {
        var row = SecretRow(try Self.plain("db/pw"))
        row.current = 2
        let error = #expect(throws: StoreError.self) { try row.secret() }
        #expect(error?.message == "the mirror rows of db/pw disagree with their metadata")
        row = SecretRow(try Self.plain("db/pw"))
        row.name = "db/other"
        #expect(throws: StoreError.self) { try row.secret() }
        row = SecretRow(try Self.plain("db/pw"))
        row.metadata = row.metadata.replacing(#/"stages":\{[^}]*\},?/#, with: "")
        #expect(!row.metadata.contains("stages"))
        let stageless = #expect(throws: StoreError.self, "rows are always written with their stages") { try row.secret() }
        #expect(stageless?.message == "a mirror row of db/pw holds no stages")
        row = SecretRow(try Self.plain("db/pw"))
        row.versions[0].hash = #"{"algorithm":"hmac-sha256"}"#
        let hashed = #expect(throws: StoreError.self) { try row.secret() }
        #expect(hashed?.code == .corrupt, "hash parameters on a sealed secret's version")
    }

    @Test func aBadRowIsNamedAsTheRow() throws {
        var row = SecretRow(try Self.plain("db/pw"))
        #expect(try row.secret() == (try Self.plain("db/pw")))
        row.metadata = #"{"name":"db/pw","kind":"generic","protection":"sealed","versions":[],"extra":1}"#
        let unknown = #expect(throws: StoreError.self) { try row.secret() }
        #expect(unknown?.message == "a mirror row's secret holds a member this cofferd does not know")
        row.metadata = "{"
        let broken = #expect(throws: StoreError.self) { try row.secret() }
        #expect(broken?.code == .corrupt)
        #expect(broken?.message.hasPrefix("a mirror row's secret is not an object") == true, "\(broken?.message ?? "")")
    }
}
