import CofferTestSupport
import Keyring
import LockedMemory
import Model
import Seal
import Testing

/// Inputs of docs/crypto.md's known-answer vectors, for the tests that
/// change one of them (DocumentedVectorTests checks the page itself).
enum Vectors {
    static let storeID = "0123456789abcdef0123456789abcdef"
    static let salt = Array(UInt8(0x20)...UInt8(0x3f))
    static let nonce = Array(UInt8(0x40)...UInt8(0x4b))

    struct Case {
        let name: String
        let version: UInt64
        let plaintext: [UInt8]
        let ciphertextAndTag: String
    }

    static let cases = [
        Case(name: "db/password", version: 1, plaintext: Array("correct horse battery staple".utf8),
             ciphertextAndTag: "d107482c25463c3f73a97dcd56d9bb338238670742fdcb8d70c3d47a6477bc53830b90abc7ad470ee27f6164"),
        Case(name: "svc/empty", version: 7, plaintext: [],
             ciphertextAndTag: "3ff83cef5b651f62e4553398e7c1accc"),
        Case(name: "bin/blob", version: 2, plaintext: [0, 1, 2, 255],
             ciphertextAndTag: "b26938a13162c86e65d07e29d75a9f572a830cac"),
    ]
}

@Suite struct SealTests {
    let sealer = RecordSealer()

    func identity(_ name: String = "db/password", version: UInt64 = 1, protection: String = "sealed") -> RecordIdentity {
        RecordIdentity(storeID: Vectors.storeID, name: name, version: version, protection: protection)
    }

    @Test func roundTripsWithFreshSaltAndNonce() throws {
        let key = try TestKeys.master(first: 9)
        let plaintext = Array("s3cret".utf8)
        let a = try plaintext.withUnsafeBytes { try sealer.seal($0, for: identity(), with: key) }
        let b = try plaintext.withUnsafeBytes { try sealer.seal($0, for: identity(), with: key) }
        #expect(a.salt != b.salt && a.nonce != b.nonce && a.ciphertext != b.ciphertext)
        #expect(try sealer.open(a, for: identity(), keyring: Keyring(current: key)).withUnsafeBytes { Array($0) } == plaintext)
    }

    enum Change: String, CaseIterable {
        case name, version, storeID, protection, keyID, salt, nonce
    }

    @Test(arguments: Change.allCases)
    func anyChangeToTheIdentityOrRecordFailsToOpen(_ change: Change) throws {
        let key = try TestKeys.master()
        let vector = Vectors.cases[0]
        var id = identity()
        var record = try vector.plaintext.withUnsafeBytes {
            try sealer.seal($0, for: id, with: key, salt: Vectors.salt, nonce: Vectors.nonce)
        }
        switch change {
        case .name: id.name = "db/passwore"
        case .version: id.version = 2
        case .storeID: id.storeID = String(Vectors.storeID.reversed())
        case .protection: id.protection = "hashed"
        case .keyID: record.keyID = KeyID(hex: "0000000000000000")!
        case .salt: record.salt[0] ^= 1
        case .nonce: record.nonce[11] ^= 0x80
        }
        let error = #expect(throws: SealError.self) { try sealer.open(record, for: id, with: key) }
        #expect(error?.code == .authenticationFailed)
    }

    @Test func everyCiphertextByteIsAuthenticated() throws {
        let key = try TestKeys.master()
        let vector = Vectors.cases[0]
        let record = try vector.plaintext.withUnsafeBytes {
            try sealer.seal($0, for: identity(), with: key, salt: Vectors.salt, nonce: Vectors.nonce)
        }
        for index in record.ciphertext.indices {
            var flipped = record
            flipped.ciphertext[index] ^= 0x01
            let error = #expect(throws: SealError.self) { try sealer.open(flipped, for: identity(), with: key) }
            #expect(error?.code == .authenticationFailed, "byte \(index)")
        }
        var truncated = record
        truncated.ciphertext.removeLast()
        #expect(throws: SealError.self) { try sealer.open(truncated, for: identity(), with: key) }
    }

    @Test func aWrongKeyFailsToOpen() throws {
        let record = try [1, 2, 3].withUnsafeBytes { try sealer.seal($0, for: identity(), with: TestKeys.master(first: 0)) }
        #expect(throws: (any Error).self) { try sealer.open(record, for: identity(), keyring: Keyring(current: TestKeys.master(first: 5))) }
    }

    @Test func sealedRecordsSurviveJSON() throws {
        let record = try [9, 9].withUnsafeBytes { try sealer.seal($0, for: identity(), with: TestKeys.master()) }
        let encoded = try JSONEncoderShim.roundTrip(record)
        #expect(encoded == record)
    }
}

@Suite struct ConstantTimeTests {
    @Test func comparesContentsAndLengths() {
        func eq(_ a: String, _ b: String) -> Bool {
            Array(a.utf8).withUnsafeBytes { x in Array(b.utf8).withUnsafeBytes { ConstantTime.equals(x, $0) } }
        }
        #expect(eq("hunter2", "hunter2"))
        #expect(!eq("hunter2", "hunter3"))
        #expect(!eq("hunter2", "hunter22"))
        #expect(eq("", ""))
        #expect(!eq("", "a"))
    }
}

@Suite struct Base64Tests {
    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")])
    func rfc4648Vectors(_ plain: String, _ encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(Array(encoded.utf8)) == Array(plain.utf8))
    }

    @Test(arguments: ["Zg=", "Zg===", "Z===", "Zm9v!A==", "Zg==Zg==", "=Zg="])
    func rejectsMalformedInput(_ text: String) {
        #expect(Base64.decode(Array(text.utf8)) == nil)
    }
}
