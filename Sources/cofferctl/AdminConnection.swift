import Foundation
import LockedMemory
import Syscalls

/// One connection to a cofferd socket: send a request line, read the answer.
struct AdminConnection: ~Copyable {
    private let fd: OwnedFileDescriptor
    private var pending: [UInt8] = []

    init(path: String) throws(ClientFailure) {
        do {
            fd = try UnixSocket.connect(to: path)
        } catch let error as SyscallError {
            switch error.errno {
            case ENOENT: throw ClientFailure(.unreachable, "cofferd is not running: no socket at \(path)")
            case ECONNREFUSED: throw ClientFailure(.unreachable, "cofferd is not running: nothing accepts on \(path)")
            case EACCES, EPERM:
                throw ClientFailure(.denied, "permission denied on \(path): the admin socket serves the daemon's user and root")
            default: throw ClientFailure(.unreachable, "cannot connect to \(path): \(error)")
            }
        } catch {
            throw ClientFailure(.unreachable, "cannot connect to \(path)")
        }
    }

    /// The descriptor, to wait on (a watch's event lines).
    var descriptor: Int32 { fd.rawValue }

    /// Sends one request object and returns the response object.
    mutating func call(_ request: [String: Any]) throws(ClientFailure) -> (JSONAnswer, [UInt8]) {
        try Self.decoded(try exchange(request))
    }

    /// Sends one request and returns the answer line as sent, undecoded
    /// (a value in it is decoded into a buffer the caller wipes, never a
    /// String).
    mutating func exchange(_ request: [String: Any]) throws(ClientFailure) -> [UInt8] {
        var line: [UInt8]
        do {
            line = try RequestJSON.encode(request, line: true)
        } catch {
            throw ClientFailure(.usage, "cannot encode the request")
        }
        defer { line.wipe() }
        do {
            try fd.writeAll(line)
        } catch {
            throw ClientFailure(.unreachable, "cofferd closed the connection")
        }
        return try readLine()
    }

    /// The next line cofferd sends (an answer, or a watch's event line).
    mutating func nextAnswer() throws(ClientFailure) -> (JSONAnswer, [UInt8]) {
        try Self.decoded(try readLine())
    }

    private static func decoded(_ answer: [UInt8]) throws(ClientFailure) -> (JSONAnswer, [UInt8]) {
        guard let decoded = try? JSONDecoder().decode(JSONAnswer.self, from: Data(answer)),
              case .object = decoded
        else {
            throw ClientFailure(.failed, "cofferd sent an answer that is not a JSON object")
        }
        return (decoded, answer)
    }

    /// Whether a whole line is already read and waiting.
    var hasBufferedLine: Bool { pending.contains(UInt8(ascii: "\n")) }

    private mutating func readLine() throws(ClientFailure) -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                return line
            }
            let count = chunk.withUnsafeMutableBytes { buffer in
                (try? syscall("read") { read(fd.rawValue, buffer.baseAddress, buffer.count) }) ?? -1
            }
            guard count > 0 else { throw ClientFailure(.unreachable, "cofferd closed the connection without answering") }
            pending.append(contentsOf: chunk[0..<count])
        }
    }
}
