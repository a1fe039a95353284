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

/// Carries the mirror's events to the audit, the log and the watchers. The
/// mirror starts (and may restore) before the services exist: events from
/// then are kept and delivered once they are attached.
final class MirrorEventRelay: Sendable {
    private let logger: Logger
    private let state = Mutex<(services: CofferServices?, pending: [Mirror.Event])>((nil, []))

    init(logger: Logger) {
        self.logger = logger
    }

    func attach(_ services: CofferServices) {
        let pending = state.withLock { s -> [Mirror.Event] in
            s.services = services
            defer { s.pending = [] }
            return s.pending
        }
        for event in pending { deliver(event, to: services) }
    }

    @Sendable func handle(_ event: Mirror.Event) {
        let services = state.withLock { s -> CofferServices? in
            if s.services == nil { s.pending.append(event) }
            return s.services
        }
        if let services { deliver(event, to: services) }
    }

    private func deliver(_ event: Mirror.Event, to services: CofferServices) {
        switch event {
        case .error(let error):
            logger.error("PostgreSQL mirror failing; writes queue in the outbox", metadata: ["error": "\(error.debugDescription)"])
            try? services.audit.record(AuditEvent(kind: .mirrorError, result: .error, reason: error.message))
        case .recovered:
            logger.notice("PostgreSQL mirror recovered")
            try? services.audit.record(AuditEvent(kind: .mirrorRecovered, result: .ok))
        case .tampered(let name):
            logger.error("a PostgreSQL row failed its checks and was not taken", metadata: ["secret": "\(name)"])
            try? services.audit.record(AuditEvent(kind: .tamper, result: .error, secret: name, reason: "mirror_row_refused"))
        case .pulled(let old, let new):
            services.announce(from: old, to: new)
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
