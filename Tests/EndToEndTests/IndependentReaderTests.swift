import CofferTestSupport
import Foundation
import Testing

/// docs/file-format.md and docs/crypto.md are exact enough to implement:
/// Tests/StoreReader/coffer_store_reader.py was written from those pages
/// alone (Python's standard library and `cryptography`), and here it opens
/// a store cofferd wrote (every kind of record, a grace period, a pending
/// version, access restrictions, after a master-key rotation), MAC included.
@Suite(.serialized) struct IndependentReaderTests {
    static let python = "/usr/bin/python3"

    static func reader(file: String = #filePath) -> String {
        URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("StoreReader/coffer_store_reader.py").path
    }

    func readerIsReady() throws -> Bool {
        let probe = try? runProgram(Self.python, ["-c", "import cryptography"])
        if probe?.status == 0 { return true }
        try #require(!requireAllPrerequisites, "no python3-cryptography for /usr/bin/python3 (scripts/setup installs it)")
        return false
    }

    func read(_ state: String, keys: [String], verify: [String] = []) throws -> ProgramResult {
        try runProgram(Self.python, [Self.reader(), state] + keys.flatMap { ["--key-file", $0] } + verify.flatMap { ["--verify", $0] })
    }

    @Test func aReaderWrittenFromTheDocumentsOpensAStoreCofferdWrote() throws {
        guard try readerIsReady() else { return }
        let daemon = try DevDaemon()
        let text = uniqueValue("text")
        let binary: [UInt8] = [0, 1, 2, 0xff, 0x0a, 0]
        let binaryFile = daemon.directory.file("binary-value")
        try Data(binary).write(to: URL(fileURLWithPath: binaryFile))
        let password = uniqueValue("password")

        #expect(try daemon.ctl(["put", "app/text", "--principal", "uid:0", "--socket-scope", "service"], stdin: text).status == 0)
        #expect(try daemon.ctl(["put", "app/binary", "--binary", "--from-file", binaryFile]).status == 0)
        #expect(try daemon.ctl(["put", "web/login", "--protection", "hashed", "--grace", "1h", "--expires", "+30d"],
                                stdin: password).status == 0)
        let token = try daemon.ctl(["put", "api/token", "--generate", "--protection", "hashed", "--format", "token"])
        #expect(token.status == 0)
        let tokenValue = try #require(token.stdoutText.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("coffer_") })
        // Re-sealed under a new key: the reader must follow STATE/master-keys.
        #expect(try daemon.ctl(["rotate-master-key"]).status == 0)
        let rotated = uniqueValue("rotated")
        #expect(try daemon.ctl(["rotate", "app/text"], stdin: rotated).status == 0)
        let pending = uniqueValue("pending")
        #expect(try daemon.ctl(["rotate", "app/text", "--pending"], stdin: pending).status == 0)
        #expect(try daemon.ctl(["rotate", "web/login"], stdin: password + "-2").status == 0)

        let state = daemon.devPath + "/state"
        let key = daemon.devPath + "/master.key"
        let result = try read(state, keys: [key], verify: ["api/token=\(tokenValue)", "web/login=\(password)-2"])
        try #require(result.status == 0, "the reader refused a store cofferd wrote: \(result.stderr)")
        let output = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let secrets = try #require(output["secrets"] as? [String: [String: Any]])
        #expect(Set(secrets.keys) == ["api/token", "app/binary", "app/text", "web/login"])
        func values(_ name: String) throws -> [String: Data] {
            let versions = try #require(secrets[name]?["versions"] as? [String: [String: Any]])
            return versions.compactMapValues { ($0["value_b64"] as? String).flatMap { Data(base64Encoded: $0) } }
        }
        #expect(try values("app/text") == ["1": Data(text.utf8), "2": Data(rotated.utf8), "3": Data(pending.utf8)])
        #expect(try values("app/binary") == ["1": Data(binary)])
        #expect(secrets["app/text"]?["current"] as? Int == 2)
        let verified = try #require(output["verified"] as? [String: Bool])
        #expect(verified == ["api/token": true, "web/login": true])
        #expect(try read(state, keys: [key], verify: ["web/login=\(password)"]).stdoutText.contains("\"web/login\": false"))

        // Without the key the rotation added, nothing opens.
        let list = state + "/master-keys"
        let listed = try String(contentsOfFile: list, encoding: .utf8)
        try "".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(try read(state, keys: [key]).status == 1)
        try listed.write(toFile: list, atomically: true, encoding: .utf8)

        // An edit to a member only the MAC covers is caught.
        _ = daemon.stop()
        let store = state + "/store.json"
        let original = try String(contentsOfFile: store, encoding: .utf8)
        let edited = original.replacingOccurrences(of: "\"created_by\" : \"uid:0\"", with: "\"created_by\" : \"uid:1\"")
        #expect(edited != original)
        try edited.write(toFile: store, atomically: true, encoding: .utf8)
        let refused = try read(state, keys: [key])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("MAC"))
        #expect(!refused.stderr.contains(text) && !refused.stdoutText.contains(text))
    }
}
