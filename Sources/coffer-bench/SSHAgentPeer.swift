import Foundation
import Syscalls

/// OpenSSH's ssh-agent as a peer row: a local agent in C, one thread, no
/// audit, answering REQUEST_IDENTITIES for one added key. Started with a
/// key made for the run; stopped on `stop`.
final class SSHAgentPeer {
    let socket: String
    private let agent: Process

    init(directory: String) throws {
        let key = directory + "/agent-key"
        socket = directory + "/agent.sock"
        try Self.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "coffer-bench", "-f", key])
        agent = Process()
        agent.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-agent")
        // -D: in the foreground, so that this process owns it.
        agent.arguments = ["-D", "-a", socket]
        agent.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        agent.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try agent.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? UnixSocket.connect(to: socket)) == nil {
            guard ContinuousClock.now < deadline else { stop(); throw POSIXError(.ETIMEDOUT) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        try Self.run("/usr/bin/ssh-add", ["-q", key], environment: ["SSH_AUTH_SOCK": socket])
    }

    var pid: Int32 { agent.processIdentifier }

    func stop() {
        agent.terminate()
        agent.waitUntilExit()
    }

    private static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw POSIXError(.EIO) }
    }
}

/// SSH2_AGENTC_REQUEST_IDENTITIES (11) over the agent protocol: a 4-byte
/// big-endian length, then the message; the answer is
/// SSH2_AGENT_IDENTITIES_ANSWER (12). https://datatracker.ietf.org/doc/draft-miller-ssh-agent/
final class BlockingAgentClient: RoundTripClient, @unchecked Sendable {
    private let socket: OwnedFileDescriptor
    private var buffer = [UInt8](repeating: 0, count: 65536)
    private var pending: [UInt8] = []
    private static let request: [UInt8] = [0, 0, 0, 1, 11]

    init(path: String) throws {
        socket = try UnixSocket.connect(to: path)
    }

    func roundTrip() -> Bool {
        guard BlockingLineClient.send(Self.request, on: socket.rawValue) else { return false }
        while true {
            if pending.count >= 4 {
                let length = pending[0..<4].reduce(0) { $0 << 8 | Int($1) }
                if pending.count >= 4 + length {
                    let ok = length > 0 && pending[4] == 12
                    pending.removeSubrange(0..<(4 + length))
                    return ok
                }
            }
            let n = recv(socket.rawValue, &buffer, buffer.count, 0)
            guard n > 0 else { return false }
            pending.append(contentsOf: buffer[0..<n])
        }
    }
}

/// CPU time a process has used (utime + stime from /proc/PID/stat), to
/// print each server's CPU per request beside its throughput.
enum ProcessCPU {
    static func seconds(of pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name, which may hold spaces: state is
        // field 3, utime 14 and stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The journald of this run (scripts/bench starts one in its own PID
    /// namespace, so there is one).
    static func journald() -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                  let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { continue }
            if comm.hasPrefix("systemd-journal") { return pid }
        }
        return nil
    }
}
