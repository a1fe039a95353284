import CofferTestSupport
import Foundation
import Testing

/// This machine's own root, booted with systemd as PID 1 in a container
/// (systemd-nspawn) over a throwaway overlay of `/`: what an operator's
/// host is, without touching the real one (its boot services clean /tmp
/// and more; here they clean the overlay). Commands run inside with
/// nsenter. Removed, overlay and all, on deinit.
final class BootedSystem {
    private let temporary: TemporaryDirectory
    var directory: String { temporary.path }
    var root: String { directory + "/merged" }
    private let nspawn = Process()
    private(set) var pid1: Int32 = 0

    /// The package scripts/test built (COFFER_TEST_PACKAGE), or nil (a
    /// failure under scripts/test).
    static func package() throws -> String? {
        if let path = ProcessInfo.processInfo.environment["COFFER_TEST_PACKAGE"], FileManager.default.fileExists(atPath: path) {
            return path
        }
        try #require(!requireAllPrerequisites, "no Debian package: run the tests with scripts/test (it runs scripts/package)")
        return nil
    }

    init?() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-nspawn") else {
            try #require(!requireAllPrerequisites, "no systemd-nspawn (Debian's systemd-container; scripts/setup installs it)")
            return nil
        }
        temporary = try TemporaryDirectory("booted")
        for part in ["upper", "work", "merged"] {
            try FileManager.default.createDirectory(atPath: directory + "/" + part, withIntermediateDirectories: true)
        }
        let mount = try runProgram("/bin/mount", [
            "-t", "overlay", "overlay", "-o", "lowerdir=/,upperdir=\(directory)/upper,workdir=\(directory)/work", root,
        ])
        try #require(mount.status == 0, "cannot make the overlay: \(mount.stderr)")
        // --capability=CAP_IPC_LOCK: nspawn's seccomp filter refuses mlock
        // without it, and cofferd keeps its key in locked memory. A private
        // network: nothing inside reaches out.
        nspawn.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-nspawn")
        nspawn.arguments = ["-D", root, "-b", "--register=no", "--keep-unit", "--private-network",
                            "--capability=CAP_IPC_LOCK", "--console=passive"]
        _ = FileManager.default.createFile(atPath: directory + "/boot.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/boot.log"))
        nspawn.standardOutput = log
        nspawn.standardError = log
        nspawn.standardInput = FileHandle.nullDevice
        try nspawn.run()
        var found: Int32?
        let started = try waitUntil("systemd starts in the container", timeout: .seconds(60)) {
            found = Self.systemd(under: nspawn.processIdentifier)
            return found != nil || !nspawn.isRunning
        }
        try #require(started && found != nil, "the container did not boot: \(bootLog)")
        pid1 = found!
        // systemctl needs systemd's own socket, which comes a moment after
        // PID 1 itself; then it can wait for the boot to finish.
        let listening = try waitUntil("systemd in the container listens", timeout: .seconds(60)) {
            try run("test -S /run/systemd/private").status == 0
        }
        try #require(listening, "systemd in the container never listened: \(bootLog.suffix(2000))")
        let running = try run("systemctl is-system-running --wait")
        let state = running.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let failed = try run("systemctl --failed --no-legend").stdoutText
        try #require(["running", "degraded"].contains(state),
                     "the container's systemd is '\(state)' (\(running.stderr)): \(failed)\n\(bootLog.suffix(2000))")
    }

    var bootLog: String { (try? String(contentsOfFile: directory + "/boot.log", encoding: .utf8)) ?? "" }

    /// Runs `command` with /bin/sh inside the container, as root.
    @discardableResult
    func run(_ command: String, timeout: Duration = .seconds(120)) throws -> ProgramResult {
        try runProgram("/usr/bin/nsenter", ["-t", "\(pid1)", "-a", "--", "/bin/sh", "-c", command], timeout: timeout)
    }

    /// Writes a file inside the container (through the overlay).
    func write(_ text: String, to path: String, mode: Int = 0o644) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: false, encoding: .utf8)
        chmod(full, mode_t(mode))
    }

    /// systemd, PID 1 of the container: the descendant of nspawn that runs
    /// /usr/lib/systemd/systemd.
    private static func systemd(under ancestor: Int32) -> Int32? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        var parent: [Int32: Int32] = [:]
        var command: [Int32: String] = [:]
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, let ppid = Int32(fields[1]) else { continue }
            parent[pid] = ppid
            command[pid] = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?
                .split(separator: "\0").first.map(String.init)
        }
        for (pid, path) in command where path.hasSuffix("/systemd/systemd") {
            var up = parent[pid]
            while let p = up, p > 1 {
                if p == ancestor { return pid }
                up = parent[p]
            }
        }
        return nil
    }

    deinit {
        if nspawn.isRunning {
            // Powering off lets the container's services stop; a container
            // that does not go in time is killed.
            _ = try? run("systemctl poweroff --no-block", timeout: .seconds(10))
            let deadline = ContinuousClock.now + .seconds(15)
            while nspawn.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.1) }
            if nspawn.isRunning { kill(nspawn.processIdentifier, SIGKILL) }
            nspawn.waitUntilExit()
        }
        // Unmounted before the directory goes: even a removal through the
        // overlay would only write whiteouts into its upper layer, never
        // touch the real root.
        _ = try? runProgram("/bin/umount", ["-l", root])
    }
}
