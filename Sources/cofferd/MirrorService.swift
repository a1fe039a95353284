import Audit
import CofferCore
import FileStore
import LockedMemory
import Logging
import Mirror
import NIOPosix
import Server
import ServiceLifecycle
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Runs the mirror's loop on a thread of its own (libpq blocks) until
/// graceful shutdown; what is still in the outbox stays there, durable, for
/// the next start.
struct MirrorService: Service {
    let mirror: Mirror

    func run() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let mirror = self.mirror
        async let loop: Void = pool.runIfActive { mirror.run() }
        try? await gracefulShutdown()
        mirror.stop()
        try? await loop
        try? await pool.shutdownGracefully()
    }
}

/// Carries the mirror's events to the audit trail and the log. The mirror
/// starts (and may restore) before the audit chain exists, since a restore
/// names the chain: events from then are kept and recorded once the trail
/// is attached. Watchers hear of the changes the mirror takes from the
/// store itself (SecretStore.onCommit).
final class MirrorEventRelay: Sendable {
    private let logger: Logger
    private let state = Mutex<(audit: AuditTrail?, pending: [Mirror.Event])>((nil, []))

    init(logger: Logger) {
        self.logger = logger
    }

    func attach(_ audit: AuditTrail) {
        let pending = state.withLock { s -> [Mirror.Event] in
            s.audit = audit
            defer { s.pending = [] }
            return s.pending
        }
        for event in pending { record(event, in: audit) }
    }

    @Sendable func handle(_ event: Mirror.Event) {
        log(event)
        let audit = state.withLock { s -> AuditTrail? in
            if s.audit == nil { s.pending.append(event) }
            return s.audit
        }
        if let audit { record(event, in: audit) }
    }

    private func log(_ event: Mirror.Event) {
        switch event {
        case .error(let error):
            logger.error("PostgreSQL mirror failing; writes queue in the outbox", metadata: ["error": "\(error.debugDescription)"])
        case .recovered:
            logger.notice("PostgreSQL mirror recovered")
        case .tampered(let name):
            logger.error("a PostgreSQL row failed its checks and was not taken", metadata: ["secret": "\(name)"])
        }
    }

    private func record(_ event: Mirror.Event, in audit: AuditTrail) {
        switch event {
        case .error(let error):
            try? audit.record(AuditEvent(kind: .mirrorError, result: .error, reason: error.message))
        case .recovered:
            try? audit.record(AuditEvent(kind: .mirrorRecovered, result: .ok))
        case .tampered(let name):
            try? audit.record(AuditEvent(kind: .tamper, result: .error, secret: name, reason: "mirror_row_refused"))
        }
    }
}

/// A password file: 0600 (or a systemd credential), one line. Kept in
/// locked memory, NUL-terminated, as libpq takes it.
enum PasswordFile {
    static func read(_ path: String) throws -> LockedBytes {
        let fd = try OwnedFileDescriptor.open(path, O_RDONLY | O_NOFOLLOW)
        var bytes = try fd.readSecret(limit: 4096)
        defer { bytes.wipe() }
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return try LockedBytes(count: end + 1) { out in
            bytes.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<end])) }
        }
    }
}
