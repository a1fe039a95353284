import CofferTestSupport
import Foundation
import Synchronization
import Testing

/// rotate-master-key against the real daemon: thousands of records while a
/// reader on the service socket keeps reading, and a kill -9 in its middle.
@Suite(.serialized) struct MasterKeyRotationTests {
    static let records = 3000

    /// Fills the store in a few imports (one commit each).
    func fill(_ daemon: DevDaemon, count: Int = records) throws {
        let client = try LineClient(socketPath: daemon.adminSocket)
        for start in stride(from: 0, to: count, by: 500) {
            let items = (start..<min(start + 500, count)).map { #"{"name":"fleet/s\#($0)","value":"value-\#($0)"}"# }
            let answer = try client.call(#"{"op":"import","secrets":[\#(items.joined(separator: ","))]}"#)
            #expect(answer["ok"] as? Bool == true, "\(answer)")
        }
    }

    func status(_ client: LineClient) throws -> [String: Any] {
        try client.call(#"{"op":"status"}"#)
    }

    func rotation(_ status: [String: Any]) -> [String: Any] {
        ((status["keys"] as? [String: Any])?["rotation"] as? [String: Any]) ?? [:]
    }

    /// Reads every record through the admin socket and returns the names
    /// whose value did not come back.
    func unreadable(_ daemon: DevDaemon, count: Int = records) throws -> [Int] {
        let client = try LineClient(socketPath: daemon.adminSocket)
        return try (0..<count).filter { n in
            try client.call(#"{"op":"get","name":"fleet/s\#(n)"}"#)["value"] as? String != "value-\(n)"
        }
    }

    @Test func aReaderSeesNoErrorWhileEveryRecordIsResealed() throws {
        let daemon = try DevDaemon(environment: ["COFFER_DEV_RESEAL_PAUSE_MS": "2"])
        try fill(daemon)
        let admin = try LineClient(socketPath: daemon.adminSocket)
        let before = ((try status(admin)["keys"] as? [String: Any])?["current"] as? String)

        // The reader runs on its own thread until the rotation answered.
        let done = Atomic<Bool>(false)
        let failures = Mutex<[String]>([])
        let reads = Atomic<Int>(0)
        let socket = daemon.serviceSocket, adminSocket = daemon.adminSocket
        let reader = Thread {
            do {
                // The owner reads on the admin socket too; the service
                // socket needs a policy grant, which is not what is tested.
                _ = socket
                let client = try LineClient(socketPath: adminSocket)
                var n = 0
                while !done.load(ordering: .acquiring) {
                    let answer = try client.call(#"{"op":"get","name":"fleet/s\#(n % Self.records)"}"#)
                    if answer["value"] as? String != "value-\(n % Self.records)" {
                        failures.withLock { $0.append("\(answer)") }
                    }
                    n += 1
                    reads.add(1, ordering: .relaxed)
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        reader.start()
        let ctl = try daemon.ctl(["rotate-master-key"])
        done.store(true, ordering: .releasing)
        #expect(ctl.status == 0, "\(ctl.stderr)")
        #expect(ctl.stdoutText.contains("\(Self.records) records re-sealed"), "\(ctl.stdoutText)")
        // Wait (bounded) for the reader to notice and stop.
        let deadline = ContinuousClock.now + .seconds(10)
        while reader.isExecuting && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(failures.withLock { $0 }.isEmpty, "the reader saw: \(failures.withLock { $0.prefix(3) })")
        #expect(reads.load(ordering: .relaxed) > 100, "the reader read while the rotation ran")

        let after = try status(admin)
        let keys = try #require(after["keys"] as? [String: Any])
        #expect(keys["current"] as? String != before)
        #expect((keys["retired"] as? [Any])?.isEmpty == true)
        #expect(rotation(after)["state"] as? String == "finished")
        let file = try String(contentsOfFile: daemon.devPath + "/state/store.json", encoding: .utf8)
        #expect(!file.contains(try #require(before)), "no record or MAC under the old key is left")

        // A restart loads the new key from the list the rotation wrote.
        daemon.stop()
        let again = try DevDaemon(directory: daemon.directory)
        #expect(try unreadable(again).isEmpty)
    }

    @Test func aKill9InTheMiddleLeavesAStoreThatOpensWhole() throws {
        let directory = try TemporaryDirectory("rotation-crash")
        let first = try DevDaemon(directory: directory, environment: ["COFFER_DEV_RESEAL_PAUSE_MS": "20"])
        try fill(first)
        let watcher = try LineClient(socketPath: first.adminSocket)
        let rotating = try LineClient(socketPath: first.adminSocket)
        try rotating.send(#"{"op":"rotate-master-key","generate":true}"# + "\n")
        // Await (bounded) a rotation that has re-sealed some records but
        // not all, then kill -9.
        let deadline = ContinuousClock.now + .seconds(30)
        var caught: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            let progress = rotation(try status(watcher))
            if progress["phase"] as? String == "resealing", let done = progress["done"] as? Int, done > 0,
               done < (progress["total"] as? Int ?? 0) {
                caught = progress
                break
            }
            usleep(5_000)
        }
        try #require(!caught.isEmpty, "the rotation was never seen in its middle")
        first.stop(SIGKILL)

        let second = try DevDaemon(directory: directory)
        #expect(try unreadable(second).isEmpty, "every record opens after the crash")
        let keys = try #require(try status(try LineClient(socketPath: second.adminSocket))["keys"] as? [String: Any])
        #expect(keys["current"] as? String == caught["key_id"] as? String, "the listed new key is current after the restart")
        // Running it again finishes the job: everything under one key.
        let ctl = try second.ctl(["rotate-master-key"])
        #expect(ctl.status == 0, "\(ctl.stderr)")
        #expect(try unreadable(second).isEmpty)
        let final = try #require(try status(try LineClient(socketPath: second.adminSocket))["store"] as? [String: Any])
        #expect(final["generation"] as? Int ?? 0 > 0)
    }

    @Test func sealAndUnsealThroughCofferctl() throws {
        let daemon = try DevDaemon()
        _ = try daemon.ctl(["put", "db"], stdin: "v")
        #expect(try daemon.ctl(["seal"]).status == 0)
        let refused = try daemon.ctl(["get", "db"])
        #expect(refused.status == 6 && refused.stderr.contains("UNAVAILABLE"))
        #expect(try daemon.ctl(["status"]).stdoutText.contains("sealed: yes"))
        #expect(!daemon.output.contains("v\n"))
        let unsealed = try daemon.ctl(["unseal"])
        #expect(unsealed.status == 0, "\(unsealed.stderr)")
        #expect(try daemon.ctl(["get", "db"]).stdoutText == "v")
    }
}
