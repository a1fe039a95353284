import ArgumentParser
import Audit
import FileStore
import Keyring
import LockedMemory
import Logging
import Model
import NIOPosix
import Seal
import Server
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

@main
struct CofferDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cofferd",
        abstract: "The Coffer secrets daemon.",
        discussion: """
            Production: cofferd [--config PATH] (systemd provides $STATE_DIRECTORY, \
            $RUNTIME_DIRECTORY and $CREDENTIALS_DIRECTORY; see docs/operator-guide.md).
            Development: cofferd --dev DIR runs a self-contained instance under DIR.
            Exit status: 0 after a clean shutdown, 1 when startup is refused (the reason is printed).
            """
    )

    @Option(name: .long, help: "A JSON configuration file (docs/operator-guide.md).")
    var config: String?

    @Option(name: .long, help: "Run a self-contained development instance under this directory.")
    var dev: String?

    @Option(name: .long, help: "Where audit events go: journal, stderr, or auto (journal when reachable).")
    var audit: AuditChoice?

    @Option(name: .customLong("audit-coalesce"), help: "Count repeated successful reads by one caller of one secret into one summary event per this many seconds (0: off).")
    var auditCoalesce: Double?

    @Option(name: .long, help: "Mirror every write to PostgreSQL (a libpq conninfo or URI; docs/mirror.md). Also postgres.conninfo or COFFER_POSTGRES_URL.")
    var postgres: String?

    @Flag(name: .customLong("migrate-store-v1"), help: "Take a version 1 store file (from before the store MAC) once: every record is checked, then it is rewritten with a MAC.")
    var migrateStoreV1 = false

    mutating func run() async throws {
        // Harden first, before any key material exists: no core dumps, no
        // ptrace by same-user processes, files private by default.
        umask(0o077)
        StandardError.neverWait()
        do {
            try ProcessHardening.apply()
            let settings = try await DaemonSettings.resolve(config: config, dev: dev, audit: audit, auditCoalesce: auditCoalesce,
                                                            postgres: postgres)
            try SecureHeap.initialize(size: settings.secureHeapBytes)
            try await Daemon(settings: settings, migrateStoreV1: migrateStoreV1).run()
        } catch let error as StartupRefusal {
            FileHandleStderr.write("cofferd: \(error.message)\n")
            throw ExitCode(1)
        } catch {
            FileHandleStderr.write("cofferd: \(error)\n")
            throw ExitCode(1)
        }
    }
}

enum AuditChoice: String, ExpressibleByArgument, Sendable {
    case journal, stderr, auto
}

/// A reason cofferd will not start, worded for the operator.
struct StartupRefusal: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Under systemd, standard error is a stream socket into journald. If
/// journald stops reading, a write to it blocks the thread that logs (an
/// event loop, say), however bounded the audit's own sends are. So when
/// standard error is a socket, writes to it never wait: a line that finds
/// it full is dropped. (The log is not the audit: audit events go through
/// the journal's datagram socket, bounded and checked.) A terminal or a
/// file is left as it is: its file description may be shared with the
/// shell that started cofferd.
enum StandardError {
    static func neverWait() {
        var info = stat()
        guard fstat(2, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return }
        let flags = fcntl(2, F_GETFL)
        if flags >= 0 { _ = fcntl(2, F_SETFL, flags | O_NONBLOCK) }
    }
}

enum FileHandleStderr {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
