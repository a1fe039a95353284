import CofferTestSupport
import Foundation
import Keyring
import LockedMemory
import Testing

/// cofferd as a systemd service: sd_notify messages on a test NOTIFY_SOCKET,
/// reload and stop, socket activation, credentials, and the unit's exposure.
@Suite struct SystemdTests {
    /// The first message matching `match`, after the first `skip` ones.
    func message(_ daemon: DevDaemon, _ what: String, after skip: Int = 0, _ match: @escaping (String) -> Bool) throws -> String {
        let notify = try #require(daemon.notify)
        return try #require(notify.waitFor(timeout: .seconds(20), after: skip, match), "no \(what) from cofferd: \(notify.messages)")
    }

    func index(_ daemon: DevDaemon, of message: String) -> Int {
        (daemon.notify?.messages.firstIndex(of: message) ?? -1) + 1
    }

    @Test func readyCarriesAStatusAndTheWatchdogIsPinged() throws {
        let daemon = try DevDaemon(environment: ["WATCHDOG_USEC": "200000"])
        let ready = try message(daemon, "READY=1") { $0.contains("READY=1") }
        #expect(ready.contains("STATUS=serving 0 secrets"))
        _ = try message(daemon, "WATCHDOG=1") { $0.contains("WATCHDOG=1") }
    }

    @Test func sighupReloadsWithRELOADINGThenREADY() throws {
        let daemon = try DevDaemon()
        _ = try message(daemon, "READY=1") { $0.contains("READY=1") }
        #expect(try daemon.ctl(["put", "k"], stdin: "v").status == 0)
        kill(daemon.pid, SIGHUP)
        let reloading = try message(daemon, "RELOADING=1") { $0.contains("RELOADING=1") }
        #expect(reloading.contains("MONOTONIC_USEC="))
        let again = try message(daemon, "READY=1 after the reload", after: index(daemon, of: reloading)) { $0.contains("READY=1") }
        #expect(again.contains("serving 1 secrets"))
        #expect(again.contains("STATUS="))
    }

    @Test func sighupAppliesNewLimitsToNewConnections() throws {
        let daemon = try DevDaemon.with(config: #"{"limits": {"max_connections": 50}}"#)
        _ = try message(daemon, "READY=1") { $0.contains("READY=1") }
        let held = try LineClient(socketPath: daemon.serviceSocket)
        #expect(try held.call(#"{"op":"ping"}"#)["ok"] as? Bool == true)
        try #"{"limits": {"max_connections": 1}, "policy_file": "/elsewhere"}"#
            .write(toFile: daemon.directory.file("cofferd.json"), atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        let reloading = try message(daemon, "RELOADING=1") { $0.contains("RELOADING=1") }
        _ = try message(daemon, "READY=1 after the reload", after: index(daemon, of: reloading)) { $0.contains("READY=1") }
        #expect(try waitUntil("the reload is logged") { daemon.output.contains("configuration reloaded") })
        #expect(daemon.output.contains("policy_file"), "a setting that needs a restart is named")
        let refused = try LineClient(socketPath: daemon.serviceSocket)
        #expect(try refused.readLine()?.contains("UNAVAILABLE") == true, "the new limit holds for new connections")
        #expect(try held.call(#"{"op":"ping"}"#)["ok"] as? Bool == true, "the open connection is kept")
    }

    @Test func sigtermStopsCleanly() throws {
        let daemon = try DevDaemon()
        _ = try message(daemon, "READY=1") { $0.contains("READY=1") }
        #expect(daemon.stop(SIGTERM) == 0)
        #expect(daemon.notify?.messages.contains { $0.contains("STOPPING=1") } == true
                || daemon.notify?.waitFor(timeout: .seconds(2)) { $0.contains("STOPPING=1") } != nil)
        for socket in ["coffer.sock", "admin.sock", "credentials.sock"] {
            #expect(!FileManager.default.fileExists(atPath: daemon.devPath + "/run/" + socket), "\(socket) left behind")
        }
    }

    @Test func servesOnSocketsFromSystemdSocketActivate() throws {
        let directory = try TemporaryDirectory("activated")
        let run = directory.path + "/dev/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let launcher = ["/usr/bin/systemd-socket-activate",
                        "-l", run + "/coffer.sock", "-l", run + "/admin.sock", "-l", run + "/credentials.sock",
                        "--fdname=coffer:admin:credentials", "-E", "NOTIFY_SOCKET", "-E", "PATH"]
        // systemd-socket-activate starts cofferd on the first connection
        // (as systemd does without Accept=): this client is that connection,
        // made as soon as the socket exists; its ping is answered once
        // cofferd has taken the sockets over.
        let firstAnswer = FirstConnection(socket: run + "/coffer.sock")
        let daemon = try DevDaemon(directory: directory, launcher: launcher)
        #expect(firstAnswer.wait()?["pong"] as? Bool == true)
        #expect(try LineClient(socketPath: daemon.serviceSocket).call(#"{"op":"ping"}"#)["pong"] as? Bool == true)
        let admin = try LineClient(socketPath: daemon.adminSocket)
        #expect(try admin.call(#"{"op":"put","name":"a","value":"1"}"#)["ok"] as? Bool == true)
        #expect(try admin.call(#"{"op":"get","name":"a"}"#)["value"] as? String == "1")
        #expect(daemon.output.components(separatedBy: "listening on a socket from systemd").count - 1 == 3, "\(daemon.output)")
    }

    @Test func theMasterKeyComesFromCredentialsDirectory() throws {
        guard try requireRoot() else { return }
        let dir = try TemporaryDirectory("credentials-dir")
        try FileManager.default.createDirectory(atPath: dir.path + "/creds", withIntermediateDirectories: true)
        let hex = String(repeating: "5a", count: 32)
        try Data((hex + "\n").utf8).write(to: URL(fileURLWithPath: dir.path + "/creds/master-key"))
        chmod(dir.path + "/creds/master-key", 0o600)
        let config = dir.file("cofferd.json")
        let json = #"{"state":{"directory":"\#(dir.path)/state"},"runtime":{"directory":"\#(dir.path)/run"},"key_file":"/nonexistent"}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: config))
        let daemon = try DevDaemon(directory: dir, arguments: ["--config", config],
                                   environment: ["CREDENTIALS_DIRECTORY": dir.path + "/creds"], development: false)
        let status = try runProgram(binaryPath("cofferctl"), ["status", "--socket", dir.path + "/run/admin.sock", "--json"])
        let keys = (try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])?["keys"] as? [String: Any]
        try TestKeys.prepareSecureHeap()
        let expected = try MasterKey(bytes: try LockedBytes(count: 32) { $0.copyBytes(from: [UInt8](repeating: 0x5a, count: 32)) }).id.hex
        #expect(keys?["current"] as? String == expected)
        withExtendedLifetime(daemon) {}
    }

    @Test func initWritesAnEncryptedCredentialThatCofferdLoads() throws {
        // systemd-creds writes its host key under /var/lib/systemd: only in
        // scripts/test's namespace, where that is a tmpfs.
        guard ProcessInfo.processInfo.environment["COFFER_TEST_NAMESPACE"] == "1" else {
            try #require(!requireAllPrerequisites, "run under scripts/test")
            return
        }
        let dir = try TemporaryDirectory("init")
        let credential = dir.file("coffer-master-key")
        let initialised = try runProgram(binaryPath("cofferctl"), ["init", "--output", credential, "--with-key", "host"])
        #expect(initialised.status == 0, "\(initialised.stderr)")
        #expect(initialised.stdoutText.contains("LoadCredentialEncrypted=master-key:\(credential)"))
        #expect(try FileManager.default.attributesOfItem(atPath: credential)[.posixPermissions] as? Int == 0o600)
        #expect(try runProgram(binaryPath("cofferctl"), ["init", "--output", credential]).status != 0, "never replaces a key")

        // What systemd would put in $CREDENTIALS_DIRECTORY for the unit.
        try FileManager.default.createDirectory(atPath: dir.path + "/creds", withIntermediateDirectories: true)
        let decrypted = try runProgram("/usr/bin/systemd-creds", ["decrypt", "--name=master-key", credential, dir.path + "/creds/master-key"])
        #expect(decrypted.status == 0, "\(decrypted.stderr)")
        chmod(dir.path + "/creds/master-key", 0o600)
        let text = try String(contentsOfFile: dir.path + "/creds/master-key", encoding: .utf8)
        #expect(text.count == 65 && text.dropLast().allSatisfy(\.isHexDigit))
        let config = dir.file("cofferd.json")
        let json = #"{"state":{"directory":"\#(dir.path)/state"},"runtime":{"directory":"\#(dir.path)/run"},"key_file":"/nonexistent"}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: config))
        let daemon = try DevDaemon(directory: dir, arguments: ["--config", config],
                                   environment: ["CREDENTIALS_DIRECTORY": dir.path + "/creds"], development: false)
        let admin = try LineClient(socketPath: dir.path + "/run/admin.sock")
        #expect(try admin.call(#"{"op":"put","name":"k","value":"v"}"#)["ok"] as? Bool == true)
        _ = daemon
    }

    @Test func theUnitFilesVerify() throws {
        let systemd = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("systemd").path
        let dir = try TemporaryDirectory("units")
        var units: [String] = []
        for name in ["cofferd.service", "cofferd.socket", "cofferd-admin.socket", "cofferd-credentials.socket"] {
            var text = try String(contentsOfFile: systemd + "/" + name, encoding: .utf8)
            // verify checks that ExecStart= exists: point it at a binary that does.
            text = text.replacingOccurrences(of: "/usr/bin/cofferd", with: binaryPath("cofferd"))
            try text.write(toFile: dir.file(name), atomically: true, encoding: .utf8)
            units.append(dir.file(name))
        }
        let result = try runProgram("/usr/bin/systemd-analyze", ["verify"] + units)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains(dir.path), "warnings about our units: \(result.stderr)")
    }

    @Test func theUnitsExposureScoreIsAtMostOnePointFive() throws {
        let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("systemd/cofferd.service").path
        let result = try runProgram("/usr/bin/systemd-analyze", ["security", "--offline=true", "--no-pager", unit])
        let line = try #require(result.stdoutText.split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(result.stderr)")
        let score = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) })
        #expect(score <= 1.5, "\(line)")
    }
}

/// Connects (from another thread) as soon as `socket` exists and pings.
final class FirstConnection: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var answer: [String: Any]?

    init(socket: String) {
        DispatchQueue.global().async { [self] in
            defer { done.signal() }
            let deadline = ContinuousClock.now + .seconds(20)
            while !FileManager.default.fileExists(atPath: socket), ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.01)
            }
            answer = try? LineClient(socketPath: socket).call(#"{"op":"ping"}"#)
        }
    }

    func wait() -> [String: Any]? {
        _ = done.wait(timeout: .now() + 30)
        return answer
    }
}
