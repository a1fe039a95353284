import CofferTestSupport
import Foundation
import Testing

/// A real `cofferd --dev DIR` process for one test.
final class DevDaemon {
    let directory: TemporaryDirectory
    private var process: ChildProcess!
    let outputPath: String
    /// cofferd's NOTIFY_SOCKET: every sd_notify message it sent.
    private(set) var notify: NotifySocket?
    var devPath: String { directory.path + "/dev" }
    var adminSocket: String { devPath + "/run/admin.sock" }
    var serviceSocket: String { devPath + "/run/coffer.sock" }

    /// Starts cofferd and waits (bounded) for its READY=1.
    /// `audit` is where events go: stderr (the default, read back from
    /// `output`) or journal (the private journald scripts/test starts).
    /// With `unreadOutput`, cofferd's standard output and error are a
    /// stream socket nobody reads, as journald's is when it stops reading
    /// (`output` is then empty).
    private var unread: FileHandle?
    private var unreadEnd: FileHandle?

    init(
        directory: TemporaryDirectory? = nil, arguments: [String] = [], launcher: [String] = [], audit: String = "stderr",
        unreadOutput: Bool = false,
        environment: [String: String] = [:], development: Bool = true
    ) throws {
        self.directory = try directory ?? TemporaryDirectory("e2e")
        outputPath = self.directory.file("cofferd-\(UUID().uuidString.prefix(8)).log")
        if unreadOutput {
            var pair: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
            unread = FileHandle(fileDescriptor: pair[0], closeOnDealloc: true)
            unreadEnd = FileHandle(fileDescriptor: pair[1], closeOnDealloc: true)
        }
        try start(arguments: ["--audit", audit] + arguments, launcher: launcher, environment: environment, development: development)
    }

    /// A dev instance whose policy file (DIR/policy) holds `policy` and
    /// whose `--config` file holds `config` (JSON) before it starts.
    static func with(
        policy: String? = nil, config: String? = nil, launcher: [String] = [], audit: String = "stderr", unreadOutput: Bool = false
    ) throws -> DevDaemon {
        let directory = try TemporaryDirectory("configured")
        try FileManager.default.createDirectory(atPath: directory.path + "/dev", withIntermediateDirectories: true)
        if let policy {
            try policy.write(toFile: directory.path + "/dev/policy", atomically: true, encoding: .utf8)
        }
        var arguments: [String] = []
        if let config {
            try config.write(toFile: directory.file("cofferd.json"), atomically: true, encoding: .utf8)
            arguments = ["--config", directory.file("cofferd.json")]
        }
        return try DevDaemon(directory: directory, arguments: arguments, launcher: launcher, audit: audit, unreadOutput: unreadOutput)
    }

    private func start(arguments: [String], launcher: [String], environment: [String: String], development: Bool) throws {
        let notify = try NotifySocket(path: directory.file("notify-\(UUID().uuidString.prefix(8)).sock"))
        self.notify = notify
        let cofferd = binaryPath("cofferd")
        let command = launcher + [cofferd] + (development ? ["--dev", devPath] : []) + arguments
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let output = unreadEnd ?? log
        let process = try ChildProcess(command, environment: ["PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify.path].merging(environment) { $1 },
                                       output: output.fileDescriptor)
        self.process = process
        unreadEnd = nil
        let ready = notify.waitForReady(timeout: .seconds(60)) { process.isRunning }
        guard ready else {
            process.signal(SIGTERM)
            let status = process.wait()
            throw DaemonDidNotStart(status: status, output: self.output)
        }
    }

    struct DaemonDidNotStart: Error, CustomStringConvertible {
        let status: Int32
        let output: String
        var description: String { "cofferd did not become ready (status \(status)):\n\(output)" }
    }

    var pid: Int32 { process.pid }
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits for the process to end; returns its status.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        process.signal(signal)
        return process.wait()
    }

    deinit {
        guard let process else { return }
        process.signal(SIGKILL)
        process.wait()
    }

    /// Runs cofferctl against this instance.
    func ctl(_ arguments: [String], stdin: String? = nil) throws -> ProgramResult {
        let subcommand = arguments.first.map { [$0] } ?? []
        return try runProgram(binaryPath("cofferctl"), subcommand + ["--dev", devPath] + arguments.dropFirst(),
                              stdin: stdin.map { Data($0.utf8) })
    }
}

/// Runs cofferd to completion when it is expected to refuse to start.
func runCofferdExpectingRefusal(_ arguments: [String], launcher: [String] = []) throws -> ProgramResult {
    let command = launcher + [binaryPath("cofferd")] + arguments
    return try runProgram(command[0], Array(command.dropFirst()), environment: ["PATH": "/usr/bin:/bin"], timeout: .seconds(60))
}

/// A secret value no test file or log could contain by accident.
func uniqueValue(_ label: String) -> String {
    "\(label)-\(UUID().uuidString)"
}

/// Every byte of every regular file under `path` (for plaintext searches).
func allFileContents(under path: String) -> [(String, Data)] {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return [] }
    var found: [(String, Data)] = []
    for case let relative as String in walker {
        let full = path + "/" + relative
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
              let data = FileManager.default.contents(atPath: full)
        else { continue }
        found.append((relative, data))
    }
    return found
}

/// Requires root for tests that act as another user; under scripts/test a
/// missing prerequisite fails instead of skipping.
func requireRoot() throws -> Bool {
    if geteuid() == 0 { return true }
    try #require(!requireAllPrerequisites, "this test needs root (setpriv, chown)")
    return false
}
