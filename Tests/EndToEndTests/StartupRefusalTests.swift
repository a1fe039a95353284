import CofferTestSupport
import Foundation
import Testing

/// cofferd refuses to start, saying why, rather than run unprotected.
@Suite struct StartupRefusalTests {
    @Test func aKeyFileOthersCanReadIsRefused() throws {
        let first = try DevDaemon()
        #expect(first.stop() == 0)
        chmod(first.devPath + "/master.key", 0o644)
        let result = try runCofferdExpectingRefusal(["--dev", first.devPath, "--audit", "stderr"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("master.key"))
        #expect(result.stderr.contains("0600"))
    }

    @Test func withoutLockableMemoryCofferdRefusesToStart() throws {
        guard try requireRoot() else { return }
        // As nobody, with no CAP_IPC_LOCK and RLIMIT_MEMLOCK 0, mlock fails.
        let dir = try TemporaryDirectory("memlock")
        chown(dir.path, 65534, 65534)
        let launcher = ["/usr/bin/prlimit", "--memlock=0:0",
                        "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        let result = try runCofferdExpectingRefusal(["--dev", dir.path + "/dev", "--audit", "stderr"], launcher: launcher)
        #expect(result.status == 1)
        #expect(result.stderr.contains("LimitMEMLOCK"))
        #expect(result.stderr.contains("CAP_IPC_LOCK"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/dev/run/admin.sock"))
    }

    @Test func aSecondInstanceDoesNotStealTheSockets() throws {
        let running = try DevDaemon()
        let result = try runCofferdExpectingRefusal(["--dev", running.devPath, "--audit", "stderr"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("already running"))
        #expect(try running.ctl(["ping"]).status == 0)
    }

    /// A production configuration in a temp directory (config file keys as
    /// in docs/operator-guide.md).
    private func productionConfig(in dir: TemporaryDirectory, keyFile: String) throws -> String {
        let config = dir.file("cofferd.json")
        let json = #"{"state":{"directory":"\#(dir.path)/state"},"runtime":{"directory":"\#(dir.path)/run"},"key_file":"\#(keyFile)"}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: config))
        return config
    }

    @Test func productionRefusesAMissingKeyFile() throws {
        let dir = try TemporaryDirectory("prod")
        let result = try runCofferdExpectingRefusal(["--config", try productionConfig(in: dir, keyFile: dir.file("none.key"))])
        #expect(result.status == 1)
        #expect(result.stderr.contains("none.key"))
    }

    @Test func productionRefusesToRunWithoutItsAuditJournal() throws {
        guard try requireRoot() else { return }
        let dir = try TemporaryDirectory("prod")
        let key = dir.file("master.key")
        try Data((String(repeating: "ab", count: 32) + "\n").utf8).write(to: URL(fileURLWithPath: key))
        chmod(key, 0o600)
        // A mount namespace where a tmpfs hides the journal's socket (and
        // with it any journald scripts/test runs).
        let hidden = ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                      "mkdir -p /run/systemd/journal && mount -t tmpfs tmpfs /run/systemd/journal && exec \"$@\"", "sh"]
        let result = try runCofferdExpectingRefusal(["--config", try productionConfig(in: dir, keyFile: key)], launcher: hidden)
        #expect(result.status == 1)
        #expect(result.stderr.contains("journal is not reachable"))
        #expect(result.stderr.contains("--audit stderr"))
    }
}
