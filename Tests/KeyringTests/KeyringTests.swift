import CofferTestSupport
import Foundation
import Keyring
import LockedMemory
import Model
import Testing

@Suite struct KeyIDTests {
    @Test func isDerivedFromTheKeyAndStable() throws {
        let a = try TestKeys.master(first: 0)
        let b = try TestKeys.master(first: 0)
        let c = try TestKeys.master(first: 1)
        #expect(a.id == b.id)
        #expect(a.id != c.id)
        // SHA-256("coffer key id v1" || 0 || key)[0..<8], docs/crypto.md.
        #expect(a.id.hex == "dd1873095c6b7a7d")
        #expect(KeyID(hex: a.id.hex) == a.id)
        #expect(KeyID(hex: "DD1873095C6B7A7D") == nil)
        #expect(KeyID(hex: "short") == nil)
    }
}

@Suite struct MasterKeySourceTests {
    init() throws { try TestKeys.prepareSecureHeap() }

    private func write(_ contents: [UInt8], to path: String, mode: mode_t = 0o600) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(contents))
        chmod(path, mode)
    }

    @Test func loadsHexWithNewlineAndRawBytes() throws {
        let dir = try TemporaryDirectory()
        let expected = try TestKeys.master()
        write(Array((0..<32).map { String(format: "%02x", $0) }.joined().utf8) + [10], to: dir.file("hex.key"))
        write(Array(0..<32), to: dir.file("raw.key"))
        #expect(try MasterKeySource.keyFile(path: dir.file("hex.key")).load().id == expected.id)
        #expect(try MasterKeySource.keyFile(path: dir.file("raw.key")).load().id == expected.id)
    }

    @Test func refusesAKeyFileOthersCanRead() throws {
        let dir = try TemporaryDirectory()
        write(Array(0..<32), to: dir.file("key"), mode: 0o644)
        let error = #expect(throws: KeyringError.self) { try MasterKeySource.keyFile(path: dir.file("key")).load() }
        #expect(error?.code == .keyFilePermissions)
        #expect(error?.message.contains("0600") == true)
    }

    @Test func refusesAKeyFileOwnedBySomeoneElse() throws {
        try #require(runningAsRoot || !requireAllPrerequisites, "needs root to chown")
        guard runningAsRoot else { return }
        let dir = try TemporaryDirectory()
        write(Array(0..<32), to: dir.file("key"))
        chown(dir.file("key"), 65534, 65534)
        let error = #expect(throws: KeyringError.self) { try MasterKeySource.keyFile(path: dir.file("key")).load() }
        #expect(error?.code == .keyFilePermissions)
        #expect(error?.message.contains("owned by uid 65534") == true)
    }

    @Test func refusesMalformedKeysWithoutEchoingThem() throws {
        let dir = try TemporaryDirectory()
        write(Array("not-a-key-zzzz".utf8), to: dir.file("short"))
        write(Array(String(repeating: "zz", count: 32).utf8), to: dir.file("nothex"))
        for name in ["short", "nothex"] {
            let error = #expect(throws: KeyringError.self) { try MasterKeySource.keyFile(path: dir.file(name)).load() }
            #expect(error?.code == .malformedKey)
            #expect(error?.message.contains("zz") == false)
        }
    }

    @Test func missingKeyFileIsReportedWithItsPath() throws {
        let error = #expect(throws: KeyringError.self) { try MasterKeySource.keyFile(path: "/nonexistent/master.key").load() }
        #expect(error?.code == .keyFileUnreadable)
        #expect(error?.message.contains("/nonexistent/master.key") == true)
    }

    @Test func prefersTheSystemdCredential() throws {
        let dir = try TemporaryDirectory()
        #expect(MasterKeySource.resolve(credentialsDirectory: dir.path, keyFile: "/k") == .keyFile(path: "/k"))
        write(Array(0..<32), to: dir.file("master-key"), mode: 0o400)
        let source = MasterKeySource.resolve(credentialsDirectory: dir.path, keyFile: "/k")
        #expect(source == .credential(directory: dir.path))
        #expect(try source.load().id == TestKeys.master().id)
        #expect(MasterKeySource.resolve(credentialsDirectory: nil, keyFile: "/k") == .keyFile(path: "/k"))
    }

    @Test func createsNewKeyFilesPrivatelyAndNeverOverwrites() throws {
        let dir = try TemporaryDirectory()
        let key = try MasterKey.generate()
        try MasterKeySource.createKeyFile(at: dir.file("new.key"), key: key)
        let info = try FileManager.default.attributesOfItem(atPath: dir.file("new.key"))
        #expect((info[.posixPermissions] as? Int) == 0o600)
        #expect(try MasterKeySource.keyFile(path: dir.file("new.key")).load().id == key.id)
        #expect(throws: (any Error).self) { try MasterKeySource.createKeyFile(at: dir.file("new.key"), key: MasterKey.generate()) }
        #expect(try MasterKeySource.keyFile(path: dir.file("new.key")).load().id == key.id)
    }
}

@Suite struct KeyringStateTests {
    init() throws { try TestKeys.prepareSecureHeap() }

    @Test func findsCurrentAndRetiredKeysById() throws {
        let current = try TestKeys.master(first: 1)
        let retired = try TestKeys.master(first: 2)
        let keyring = Keyring(current: current, retired: [retired])
        #expect(try keyring.current().id == current.id)
        #expect(try keyring.key(for: retired.id).id == retired.id)
        #expect(keyring.keyIDs.current == current.id)
        #expect(keyring.keyIDs.retired == [retired.id])
        let unknown = try TestKeys.master(first: 3).id
        let error = #expect(throws: KeyringError.self) { try keyring.key(for: unknown) }
        #expect(error?.code == .unknownKeyID)
    }

    @Test func generatedKeysDiffer() throws {
        #expect(try MasterKey.generate().id != MasterKey.generate().id)
    }
}
