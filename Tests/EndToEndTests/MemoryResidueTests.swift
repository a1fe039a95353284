import CofferTestSupport
import Foundation
import Testing

/// Reads a running cofferd's memory as root, after values went through
/// every path that carries one (put small and large in pieces, get, get
/// with a default, verify, export with plaintext, token.create,
/// LoadCredential=), and finds no copy of any value, token or the key
/// file's text outside locked mappings: nothing freed or reused unwiped
/// (docs/security.md, "No plaintext in freed memory").
@Suite(.serialized) struct MemoryResidueTests {
    static let unit = "coffer-e2e-memory.service"

    /// Text made of UUIDs: unique, and the same bytes in JSON as in memory.
    static func value(bytes: Int) -> String {
        var text = ""
        while text.utf8.count < bytes { text += UUID().uuidString }
        return String(text.prefix(bytes))
    }

    @Test func noValueIsLeftOutsideLockedMemory() throws {
        guard try requireRoot(), let cgroup = try CgroupUnit(unit: Self.unit) else { return }
        let daemon = try DevDaemon.with(policy: "credential \(Self.unit) db app/small\n")
        let small = Self.value(bytes: 48), large = Self.value(bytes: 40 * 1024)
        let candidate = Self.value(bytes: 40), fallback = Self.value(bytes: 40)

        var token = ""
        // The clients close at the end of this block.
        do {
        // A put whose line arrives in 1 KiB pieces, each its own read.
        let admin = try LineClient(socketPath: daemon.adminSocket)
        try admin.send(#"{"id":1,"op":"put","name":"app/small","value":"\#(small)"}"# + "\n")
        #expect(try admin.readLine()?.contains(#""ok":true"#) == true)
        let line = Array((#"{"id":2,"op":"put","name":"app/large","value":"\#(large)"}"# + "\n").utf8)
        for start in stride(from: 0, to: line.count, by: 1024) {
            try admin.send(String(decoding: line[start..<min(start + 1024, line.count)], as: UTF8.self))
            // Pacing, not synchronisation: the daemon gets each piece in a
            // read of its own, so its framer grows the way a slow client
            // makes it grow.
            usleep(2000)
        }
        #expect(try admin.readLine()?.contains(#""ok":true"#) == true)

        let service = try LineClient(socketPath: daemon.serviceSocket)
        #expect(try service.call(#"{"op":"get","name":"app/small"}"#)["value"] as? String == small)
        #expect(try service.call(#"{"op":"get","name":"app/large"}"#)["value"] as? String == large)
        #expect(try service.call(#"{"op":"get","name":"app/none","default":"\#(fallback)"}"#)["value"] as? String == fallback)
        #expect(try service.call(#"{"op":"verify","name":"app/small","value":"\#(candidate)"}"#)["match"] as? Bool == false)
        #expect(try service.call(#"{"op":"verify","name":"app/large","value":"\#(large)"}"#)["match"] as? Bool == true)
        let exported = try admin.call(#"{"op":"export","plaintext":true}"#)
        #expect((exported["secrets"] as? [[String: Any]])?.count == 2)
        token = try #require(try admin.call(#"{"op":"token.create","name":"app/token"}"#)["token"] as? String)
        }
        #expect(try loadCredential(daemon, id: "db", cgroup: cgroup) == small)

        var needles: [String: [UInt8]] = [
            "small": Array(small.utf8), "candidate": Array(candidate.utf8), "default": Array(fallback.utf8),
            "token": Array(token.utf8),
        ]
        // Each kilobyte of the large value on its own: a stale piece counts.
        for offset in stride(from: 0, to: large.utf8.count - 48, by: 1000) {
            needles["large@\(offset)"] = Array(large.utf8.dropFirst(offset).prefix(48))
        }
        let keyText = try String(contentsOfFile: daemon.devPath + "/master.key", encoding: .utf8)
        needles["key file"] = Array(keyText.trimmingCharacters(in: .whitespacesAndNewlines).utf8)

        // Whatever a closing connection still holds is wiped when it
        // closes: wait (bounded) for that, then report every copy left.
        let memory = ProcessMemory(pid: daemon.pid)
        // The scan itself finds what is there: the secrets' names are.
        #expect(try !memory.unlockedCopies(of: ["name": Array("app/large".utf8)]).isEmpty, "the scan reads cofferd's memory")
        var hits: [ProcessMemory.Hit] = []
        let clean = try waitUntil("no value is left outside locked memory", timeout: .seconds(10)) {
            hits = try memory.unlockedCopies(of: needles)
            return hits.isEmpty
        }
        #expect(clean, "copies left:\n\(hits.prefix(40).map(\.description).joined(separator: "\n"))")
    }

    /// What LoadCredential=ID:credentials.sock gets, asked from inside the
    /// unit's cgroup as systemd asks.
    func loadCredential(_ daemon: DevDaemon, id: String, cgroup: CgroupUnit) throws -> String {
        let join = "echo $$ > '\(cgroup.path)/cgroup.procs' && exec \"$@\""
        let result = try runProgram("/bin/sh", ["-c", join, "sh", "/usr/bin/python3", "-c", CredentialSocketTests.script,
                                                daemon.devPath + "/run/credentials.sock", cgroup.unit, id])
        try #require(result.status == 0, "\(result.stderr)")
        return result.stdoutText
    }
}
