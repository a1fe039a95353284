import CLibCrypto
import CofferTestSupport
@testable import FileStore
import Keyring
import LockedMemory
import Model
import Seal
import Testing

/// The known-answer store of docs/file-format.md, read out of the page:
/// the file loads, its MAC input has the documented length and digest, the
/// documented MAC key gives the documented MAC, the code's MAC agrees, the
/// records open, and writing the store again gives the same MAC.
@Suite struct DocumentedStoreVectorTests {
    let page: DocumentPage
    let crypto: DocumentPage
    let sealer = RecordSealer()

    init() throws {
        page = try DocumentPage("docs/file-format.md").section("Known-answer vector")
        crypto = try DocumentPage("docs/crypto.md").section("Known-answer vectors")
    }

    func hexValue(_ page: DocumentPage, _ name: String) throws -> [UInt8] {
        try #require(Hex.decode(try page.value(name)), "\(name) is not hex")
    }

    func masterKey() throws -> MasterKey {
        try TestKeys.prepareSecureHeap()
        var raw = try hexValue(crypto, "master_key")
        return try MasterKey(bytes: try LockedBytes(takingAndWiping: &raw))
    }

    @Test func theDocumentedStoreLoadsAndItsMACIsReproduced() throws {
        let file = Array(try page.block(tagged: "known-answer-store").utf8)
        let key = try masterKey()
        let authenticator = try StoreAuthenticator(keyring: Keyring(current: key), sealer: sealer)

        // The MAC input, as the code builds it from the parsed file.
        let parsed = try StoreFileFormat(parsing: file)
        var input: [UInt8] = []
        parsed.canonical { input.append(contentsOf: $0) }
        #expect(input.count == Int(try page.value("len(mac_input)")))
        #expect(Self.sha256(input) == (try hexValue(page, "sha256(mac_input)")))

        // The documented MAC key and MAC agree with each other (HMAC-SHA256
        // of the input under that key)...
        var stored = try hexValue(page, "mac_key") + hexValue(page, "mac")
        let keyAndMAC = try LockedBytes(takingAndWiping: &stored)
        #expect(try input.withUnsafeBytes { try ValueHashing.matches($0, stored: keyAndMAC, .hmacSHA256) })
        // ...and with the code's MAC key, and with the file's `mac`.
        let macKey = try #require(authenticator.mac(forKeyID: try crypto.value("key_id")))
        #expect(try parsed.computedMAC(with: macKey) == (try hexValue(page, "mac")))
        #expect(parsed.mac == (try page.value("mac")))

        let snapshot = try StoreFileFormat.decode(file, authenticator: authenticator)
        #expect(snapshot.secrets.names.map(\.rawValue) == ["api/token", "db/password"])
        #expect(snapshot.outbox.count == 1)

        let password = try #require(snapshot[try SecretName("db/password")])
        let version = try #require(password.versions.first)
        #expect(version.id == "a1b2c3d4e5f60718")
        let opened = try sealer.open(version.sealed, for: password.identity(storeID: snapshot.storeID, version: 1), with: key)
        #expect(opened.withUnsafeBytes { Array($0) } == Array("correct horse battery staple".utf8))

        let token = try #require(snapshot[try SecretName("api/token")])
        #expect(token.access.principals.map(\.description) == ["uid:1000", "unit:web-*.service"])
        #expect(token.access.scope == .sockets([.credentials, .service]))
        let tokenVersion = try #require(token.versions.first)
        let record = try sealer.open(tokenVersion.sealed, for: token.identity(storeID: snapshot.storeID, version: 1), with: key)
        #expect(record.count == 64)
        #expect(try Array("tok_live_4242".utf8).withUnsafeBytes { try ValueHashing.matches($0, stored: record, .hmacSHA256) })

        // Written again by the code, the same content has the same MAC.
        let rewritten = try StoreFileFormat(snapshot, authenticator: authenticator)
        #expect(rewritten.mac == (try page.value("mac")))
    }

    /// A changed byte anywhere in the documented MAC input's values is
    /// refused: here, the generation.
    @Test func theDocumentedStoreEditedIsRefused() throws {
        let text = try page.block(tagged: "known-answer-store")
        let edited = text.replacingOccurrences(of: "\"generation\" : 2,\n  \"key_ids\"", with: "\"generation\" : 3,\n  \"key_ids\"")
        #expect(edited != text)
        let authenticator = try StoreAuthenticator(keyring: Keyring(current: try masterKey()), sealer: sealer)
        let error = #expect(throws: StoreError.self) { try StoreFileFormat.decode(Array(edited.utf8), authenticator: authenticator) }
        #expect(error?.code == .tampered)
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &out, nil, EVP_sha256(), nil) }
        precondition(ok == 1)
        return out
    }
}
