import CCofferShims
import Foundation

/// The result of running a program to completion.
public struct ProgramResult: Sendable {
    public let status: Int32
    public let stdout: Data
    public let stderr: String

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs `executable` with `arguments`, feeding `stdin`, and waits for it
/// (bounded: a program still running after `timeout` is killed and the
/// result says so).
public func runProgram(
    _ executable: String, _ arguments: [String], stdin: Data? = nil,
    environment: [String: String]? = nil, timeout: Duration = .seconds(60)
) throws -> ProgramResult {
    // posix_spawn and waitpid rather than Foundation's Process: its exit
    // notification was lost, now and then, for a child whose own children
    // outlive it (pg_ctl starting a server), and waitUntilExit then never
    // returned.
    var input: [Int32] = [0, 0], output: [Int32] = [0, 0], errors: [Int32] = [0, 0]
    // Close-on-exec from the start: tests run in parallel, and a child
    // spawned by another test must not inherit these ends (a cofferctl
    // would never see EOF on its stdin, a reader never on its pipe).
    guard coffer_pipe_cloexec(&input) == 0, coffer_pipe_cloexec(&output) == 0, coffer_pipe_cloexec(&errors) == 0 else {
        throw POSIXError(.EMFILE)
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errors[1], 2)

    var pid: pid_t = 0
    let spawned = spawn(&pid, [executable] + arguments, environment ?? ProcessInfo.processInfo.environment, &actions)
    close(input[0]); close(output[1]); close(errors[1])
    guard spawned == 0 else {
        close(input[1]); close(output[0]); close(errors[0])
        throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .ENOENT)
    }
    let writer = FileHandle(fileDescriptor: input[1], closeOnDealloc: true)
    if let stdin { try? writer.write(contentsOf: stdin) }
    try? writer.close()
    let killer = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout.components.seconds * 1000)), execute: killer)
    // Read both pipes at once, so a child that fills one is never stuck.
    let errorHandle = FileHandle(fileDescriptor: errors[0], closeOnDealloc: true)
    let errorData = LockedData()
    let errorReader = Thread { errorData.set(errorHandle.readDataToEndOfFile()) }
    errorReader.start()
    let out = FileHandle(fileDescriptor: output[0], closeOnDealloc: true).readDataToEndOfFile()
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    killer.cancel()
    while !errorData.isSet { usleep(1000) }
    return ProgramResult(status: exitCode(waitStatus: status), stdout: out, stderr: String(decoding: errorData.value, as: UTF8.self))
}

/// posix_spawn(3) of `arguments[0]` with `arguments` and `environment`;
/// its return value (0, or the error).
private func spawn(
    _ pid: inout pid_t, _ arguments: [String], _ environment: [String: String], _ actions: inout posix_spawn_file_actions_t
) -> Int32 {
    let argv = arguments.map { strdup($0) } + [nil]
    let env = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        env.forEach { free($0) }
    }
    return posix_spawn(&pid, arguments[0], &actions, nil, argv, env)
}

/// A waitpid(2) status as a shell gives it: the exit status, or 128 + the
/// signal that ended the process.
private func exitCode(waitStatus status: Int32) -> Int32 {
    (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// The other pipe's contents, handed from its reader thread.
private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ d: Data) { lock.withLock { data = d } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}

/// Where the built binaries are: $COFFER_BIN_DIR (scripts/test sets it), else
/// the package's .build/debug.
public func binaryPath(_ name: String, file: String = #filePath) -> String {
    if let dir = ProcessInfo.processInfo.environment["COFFER_BIN_DIR"] { return dir + "/" + name }
    var root = URL(fileURLWithPath: file)
    while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
        root.deleteLastPathComponent()
    }
    return root.appendingPathComponent(".build/debug/\(name)").path
}

/// A child process started with posix_spawn and reaped with waitpid on its
/// own pid, for the long-running ones (a cofferd).
///
/// Foundation's `Process` was dropped for them: its exit notification was
/// lost now and then, and `waitUntilExit` then never returned, holding one
/// of the concurrency pool's two threads; with both held, every other test
/// of the run waited for ever.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `arguments[0]` with `arguments`, `environment`, stdin from
    /// /dev/null and stdout and stderr to `output` (a descriptor the caller
    /// keeps open until this returns).
    public init(_ arguments: [String], environment: [String: String], output: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        var pid: pid_t = 0
        let spawned = spawn(&pid, arguments, environment, &actions)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .ENOENT) }
        self.pid = pid
    }

    /// Whether it has not ended yet (reaps it if it has).
    public var isRunning: Bool { lock.withLock { reap(blocking: false) == nil } }

    /// Waits for it to end; its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 { lock.withLock { reap(blocking: true)! } }

    public func signal(_ signal: Int32) {
        lock.withLock { if status == nil { kill(pid, signal) } }
    }

    private func reap(blocking: Bool) -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        while true {
            let reaped = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
            if reaped == -1 && errno == EINTR { continue }
            guard reaped == pid else { return nil }
            let code = exitCode(waitStatus: raw)
            status = code
            return code
        }
    }
}
