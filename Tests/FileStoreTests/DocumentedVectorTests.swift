import CLibCrypto
import Foundation
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

/// The known-answer log of docs/file-format.md, read out of the page: each
/// documented MAC is the chain's, cofferd writes each payload byte for
/// byte, the framed file has the documented length and digest, and the
/// known-answer store with this log loads to the state the page says.
@Suite struct DocumentedLogVectorTests {
    let page: DocumentPage
    let storePage: DocumentPage

    init() throws {
        page = try DocumentPage("docs/file-format.md").section("A known-answer log")
        storePage = try DocumentPage("docs/file-format.md").section("Known-answer vector")
    }

    /// (payload, mac) of each frame, header first.
    func frames() throws -> [(payload: [UInt8], mac: [UInt8])] {
        let lines = try page.block(tagged: "known-answer-log").split(separator: "\n")
        var out: [(payload: [UInt8], mac: [UInt8])] = []
        var payload: [UInt8]?
        for line in lines {
            let (word, rest) = (line.prefix { $0 != " " }, line.drop { $0 != " " }.dropFirst())
            if word == "header" || word == "entry" {
                payload = Array(rest.utf8)
            } else {
                out.append((try #require(payload), try #require(Hex.decode(String(rest)))))
                payload = nil
            }
        }
        return out
    }

    @Test func theDocumentedLogChainsAndLoads() throws {
        let vectors = try DocumentedStoreVectorTests()
        let key = try vectors.masterKey()
        let authenticator = try StoreAuthenticator(keyring: Keyring(current: key), sealer: vectors.sealer)
        let logKey = try #require(authenticator.mac(forKeyID: key.id.hex, for: .storeLog))
        let frames = try frames()
        #expect(frames.count == 3)

        // The chain.
        var previous = try StoreLogFormat.headerMAC(frames[0].payload, key: logKey)
        #expect(previous == frames[0].mac)
        for frame in frames.dropFirst() {
            previous = try StoreLogFormat.entryMAC(frame.payload, after: previous, key: logKey)
            #expect(previous == frame.mac)
        }
        // The payloads, as cofferd writes them.
        let header = try StoreLogFormat.header(parsing: frames[0].payload)
        #expect(StoreLogFormat.encode(header) == frames[0].payload)
        for frame in frames.dropFirst() {
            #expect(StoreLogFormat.encode(try StoreLogFormat.entry(parsing: frame.payload)) == frame.payload)
        }
        var file: [UInt8] = []
        for frame in frames { StoreLogFormat.frame(frame.payload, mac: frame.mac, into: &file) }
        #expect(file.count == Int(try page.value("len(store.log)")))
        #expect(DocumentedStoreVectorTests.sha256(file) == (try #require(Hex.decode(try page.value("sha256(store.log)")))))

        // The store and its log, loaded.
        let dir = try TemporaryDirectory()
        for (name, bytes) in [(SecretStore.fileName, Array(try storePage.block(tagged: "known-answer-store").utf8)),
                              (SecretStore.logFileName, file)] {
            let path = dir.file(name)
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            chmod(path, 0o600)
        }
        let loaded = try SecretStore.open(directory: dir.path, authenticator: authenticator).snapshot
        #expect(loaded.generation == 4)
        #expect(loaded.secrets.names.map(\.rawValue) == ["db/password"])
        #expect(loaded[try SecretName("db/password")]?.expiresAt == 1_900_000_000)
        #expect(loaded.outbox == [try SecretName("api/token"): OutboxEntry(generation: 3, queuedAt: 1_795_362_470)])
    }
}
