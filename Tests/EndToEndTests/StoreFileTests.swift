import CofferTestSupport
import Foundation
import Synchronization
import Testing

/// The store file on the live daemon: reload of a newer file, refusal of a
/// tampered, truncated or older one, import/export, and kill -9 at random.
@Suite struct StoreFileTests {
    /// Puts `bytes` in place of the daemon's store file the way `git pull`
    /// or `cp` + `mv` would: a new file renamed over it.
    func dropIn(_ bytes: Data, into daemon: DevDaemon) throws {
        let path = daemon.devPath + "/state/store.json"
        let temporary = path + ".incoming"
        try bytes.write(to: URL(fileURLWithPath: temporary))
        chmod(temporary, 0o600)
        #expect(rename(temporary, path) == 0)
    }

    /// The daemon's state as one store file, as another host hands it out
    /// (`cofferctl export`): store.json alone lags the commits in its log.
    func storeFile(of daemon: DevDaemon) throws -> Data {
        let exported = try daemon.ctl(["export"])
        try #require(exported.status == 0, "\(exported.stderr)")
        return exported.stdout
    }

    func get(_ daemon: DevDaemon, _ name: String) throws -> String? {
        try LineClient(socketPath: daemon.adminSocket).call(#"{"op":"get","name":"\#(name)"}"#)["value"] as? String
    }

    func events(_ daemon: DevDaemon, _ kind: String) -> Int {
        daemon.output.components(separatedBy: "COFFER_EVENT=\(kind) ").count - 1
    }

    @Test func aNewerFileFromAnotherHostIsServed() throws {
        let here = try DevDaemon()
        #expect(try here.ctl(["put", "shared"], stdin: "old").status == 0)
        // "Another host": the same key and store, started from a copy.
        let elsewhere = try TemporaryDirectory("elsewhere")
        let dev = elsewhere.path + "/dev"
        try FileManager.default.createDirectory(atPath: dev + "/state", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: here.devPath + "/master.key", toPath: dev + "/master.key")
        try storeFile(of: here).write(to: URL(fileURLWithPath: dev + "/state/store.json"))
        chmod(dev + "/state/store.json", 0o600)
        let other = try DevDaemon(directory: elsewhere)
        let fresh = uniqueValue("fresh")
        #expect(try other.ctl(["put", "fresh"], stdin: fresh).status == 0)
        #expect(try other.ctl(["put", "shared"], stdin: "new").status == 0)

        let dropped = ContinuousClock.now
        try dropIn(try storeFile(of: other), into: here)
        // A newer file is served within a second (docs/benchmarks.md: about 55 ms); the watcher's debounce is
        // 50 ms, so this bound leaves a wide margin on a loaded machine.
        #expect(try waitUntil("the newer file is served within a second", timeout: .seconds(1)) { try get(here, "fresh") == fresh })
        print("store reload latency: \(dropped.duration(to: .now))")
        #expect(try get(here, "shared") == "new")
        #expect(here.output.contains("COFFER_EVENT=reload"))
    }

    @Test func aFlippedTruncatedOrOlderFileIsRefusedWhileTheLastGoodOneServes() throws {
        let daemon = try DevDaemon()
        #expect(try daemon.ctl(["put", "k"], stdin: "first").status == 0)
        let older = try storeFile(of: daemon)
        #expect(try daemon.ctl(["put", "k"], stdin: "second").status == 0)
        let good = try storeFile(of: daemon)

        var flipped = good
        let at = try #require(String(decoding: good, as: UTF8.self).range(of: "\"ciphertext\" : \"")).upperBound
        let offset = String(decoding: good, as: UTF8.self).utf8.distance(from: String(decoding: good, as: UTF8.self).startIndex, to: at)
        flipped[offset] = flipped[offset] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let cases: [(String, Data, String)] = [
            ("flipped", flipped, "tamper"),
            ("truncated", good.prefix(good.count / 2), "reload_failed"),
            ("older", older, "tamper"),
        ]
        for (what, bytes, event) in cases {
            let before = events(daemon, event)
            try dropIn(bytes, into: daemon)
            #expect(try waitUntil("the \(what) file is refused and audited") { events(daemon, event) > before }, "\(what)")
            #expect(try get(daemon, "k") == "second", "\(what): the last good value keeps serving")
        }
        #expect(daemon.output.contains("rollback"))
        // cofferd wrote its own state back over what was dropped in: a
        // restart finds it.
        #expect(try storeFile(of: daemon) == good)
        #expect(try daemon.ctl(["put", "k"], stdin: "third").status == 0)
        #expect(try get(daemon, "k") == "third")
    }

    @Test func importAndExportRoundTrip() throws {
        let daemon = try DevDaemon()
        let values = ["DB_PASSWORD": uniqueValue("db"), "API_KEY": uniqueValue("api"), "QUOTED": "a b=c"]
        let env = "# comment\nexport DB_PASSWORD=\(values["DB_PASSWORD"]!)\nAPI_KEY='\(values["API_KEY"]!)'\n\nQUOTED=\"a b=c\"\n"
        let imported = try daemon.ctl(["import", "-", "--prefix", "app/"], stdin: env)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdoutText.contains("imported 3"))

        let binary = Data([0, 1, 2, 0xff, 0x10])
        try binary.write(to: URL(fileURLWithPath: daemon.directory.file("blob")))
        #expect(try daemon.ctl(["put", "bin/blob", "--binary", "--from-file", daemon.directory.file("blob")]).status == 0)

        let out = daemon.directory.file("plain.json")
        let plain = try daemon.ctl(["export", "--plaintext", "--out", out])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stderr.contains("WARNING"))
        #expect(try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int == 0o600)
        let exported = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        for (name, value) in values { #expect(exported?["app/" + name] as? String == value) }
        #expect((exported?["bin/blob"] as? [String: Any])?["value_base64"] as? String == binary.base64EncodedString())
        #expect(try daemon.ctl(["export", "--plaintext", "--out", out]).status != 0, "never over an existing file")

        // The plaintext export imports back as it was, bytes included.
        let elsewhere = try DevDaemon()
        let reimported = try elsewhere.ctl(["import", out])
        #expect(reimported.status == 0, "\(reimported.stderr)")
        #expect(try elsewhere.ctl(["get", "app/QUOTED"]).stdoutText == "a b=c")
        let blob = try LineClient(socketPath: elsewhere.adminSocket).call(#"{"op":"get","name":"bin/blob"}"#)
        #expect(blob["value_base64"] as? String == binary.base64EncodedString())

        // The encrypted export loads in another instance with the same key.
        let encrypted = try daemon.ctl(["export"])
        #expect(encrypted.status == 0)
        #expect(encrypted.stdout.range(of: Data(values["API_KEY"]!.utf8)) == nil, "no value in the encrypted export")
        let copy = try TemporaryDirectory("import-copy")
        try FileManager.default.createDirectory(atPath: copy.path + "/dev/state", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: daemon.devPath + "/master.key", toPath: copy.path + "/dev/master.key")
        try encrypted.stdout.write(to: URL(fileURLWithPath: copy.path + "/dev/state/store.json"))
        chmod(copy.path + "/dev/state/store.json", 0o600)
        let restored = try DevDaemon(directory: copy)
        #expect(try restored.ctl(["get", "app/API_KEY"]).stdoutText == values["API_KEY"]!)

        // A bad import line says where, never what, and imports nothing.
        let bad = try daemon.ctl(["import", "-"], stdin: "GOOD=1\nsecret-looking-line-without-equals\n")
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("line 2"))
        #expect(!bad.stderr.contains("secret-looking"))
    }

    @Test func kill9AtRandomMomentsLosesNoAcknowledgedWrite() throws {
        let directory = try TemporaryDirectory("crash")
        var acknowledged: [String: String] = [:]
        for round in 0..<5 {
            let daemon = try DevDaemon(directory: directory)
            for (name, value) in acknowledged {
                #expect(try get(daemon, name) == value, "round \(round): \(name) was acknowledged before a kill -9")
            }
            let client = try LineClient(socketPath: daemon.adminSocket)
            let killAfter = Int.random(in: 5...40)
            var i = 0
            while true {
                let name = "r\(round)/k\(i)", value = uniqueValue("v")
                if i == killAfter {
                    // Send, then kill before (or while) the answer comes: this
                    // write may or may not be there; it was never acknowledged.
                    try client.send(#"{"op":"put","name":"\#(name)","value":"\#(value)"}"# + "\n")
                    daemon.stop(SIGKILL)
                    break
                }
                let answer = try client.call(#"{"op":"put","name":"\#(name)","value":"\#(value)"}"#)
                #expect(answer["ok"] as? Bool == true)
                acknowledged[name] = value
                i += 1
            }
        }
        let last = try DevDaemon(directory: directory)
        for (name, value) in acknowledged { #expect(try get(last, name) == value) }
        let files = try FileManager.default.contentsOfDirectory(atPath: last.devPath + "/state")
        #expect(!files.contains { $0.contains(".tmp-") }, "crash leftovers are cleaned up: \(files)")
    }

    /// Writers at once (their commits grouped into shared syncs), values
    /// large enough that the log outgrows its snapshot every few puts (so
    /// compactions run), and kill -9 at random moments: every acknowledged
    /// write is there after each restart. A put in flight when the kill
    /// came may or may not be: each name holds its last acknowledged value
    /// or that one.
    @Test func kill9DuringGroupedCommitsAndCompactionsLosesNoAcknowledgedWrite() throws {
        struct Expected { var acknowledged: String?; var inFlight: String? }
        let directory = try TemporaryDirectory("crash-compaction")
        let expected = Mutex<[String: Expected]>([:])
        var generations: Set<Int> = []
        func check(_ daemon: DevDaemon, _ round: Int) throws {
            for (name, want) in expected.withLock({ $0 }) {
                let found = try get(daemon, name)
                #expect(found == want.acknowledged || (found != nil && found == want.inFlight),
                        "round \(round): \(name) lost its acknowledged value")
                // What a restart serves is durable: the next round starts from it.
                expected.withLock { $0[name] = Expected(acknowledged: found) }
            }
        }
        for round in 0..<4 {
            let daemon = try DevDaemon(directory: directory)
            try check(daemon, round)
            let killAfter = Int.random(in: 15...45)
            let puts = Atomic<Int>(0)
            let finished = DispatchGroup()
            let socket = daemon.adminSocket
            for w in 0..<4 {
                DispatchQueue.global().async(group: finished) {
                    guard let client = try? LineClient(socketPath: socket) else { return }
                    // Until the kill ends the connection.
                    for i in 0... {
                        let name = "w\(w)/k\(i % 4)"
                        // A log entry holds only the new version (a patch): at
                        // 40 KiB a put adds some 55 KB, and the log outgrows
                        // its 1 MiB floor every twenty puts or so.
                        let value = uniqueValue("v") + String(repeating: "x", count: 40 * 1024)
                        expected.withLock { $0[name, default: Expected()].inFlight = value }
                        guard let answer = try? client.call(#"{"op":"put","name":"\#(name)","value":"\#(value)"}"#),
                              answer["ok"] as? Bool == true else { return }
                        expected.withLock { $0[name] = Expected(acknowledged: value) }
                        puts.add(1, ordering: .relaxed)
                    }
                }
            }
            while puts.load(ordering: .relaxed) < killAfter { usleep(1000) }
            daemon.stop(SIGKILL)
            #expect(finished.wait(timeout: .now() + 30) == .success, "the writers saw the connection end")
            let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: daemon.devPath + "/state/store.json")))
            generations.insert((file as? [String: Any])?["generation"] as? Int ?? 0)
        }
        let last = try DevDaemon(directory: directory)
        try check(last, 4)
        #expect(generations.count > 1 && generations.max()! > 0, "store.json was compacted along the way: \(generations.sorted())")
        let files = try FileManager.default.contentsOfDirectory(atPath: last.devPath + "/state")
        #expect(!files.contains { $0.contains(".tmp-") || $0.hasSuffix(".next") }, "crash leftovers are cleaned up: \(files)")
    }
}
