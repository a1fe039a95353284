import CofferCore
import FileStore
import Logging
import NIOCore
import Server
import ServiceLifecycle
import UnixSignals

/// SIGHUP (`systemctl reload cofferd`): tells systemd RELOADING=1, reads the
/// configuration (limits for new connections), the policy file and the
/// store file again, then READY=1 with the new status. A broken file is
/// logged with its reason and what was in force stays in force. Settings
/// that shape the daemon itself (directories, key source, audit sink, the
/// policy file's path) take a restart, and the log says so
/// (docs/operations.md).
struct ReloadOnHangup: Service {
    let services: CofferServices
    let logger: Logger
    /// Reads the configuration again and applies what can change while
    /// running (the connection limits); says what needs a restart.
    let reloadSettings: @Sendable () async -> Void

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            SystemdNotifier.reloading()
            await reloadSettings()
            // The policy file's user and group names are resolved through
            // NSS, which may hang: on the account lookups' thread.
            switch await services.reloadPolicyOffLoop() {
            case .success(let policy):
                logger.info("policy reloaded", metadata: ["rules": "\(policy.rules.count)", "operators": "\(policy.operators.count)"])
            case .failure(let error):
                logger.error("policy reload refused; the previous policy stays in force", metadata: ["error": "\(error.message)"])
            }
            if case .failure(let error) = services.reloadStore() {
                logger.error("store file refused; still serving the last good one", metadata: ["reason": "\(error.message)"])
            }
            SystemdNotifier.ready(SystemdNotifier.describe(services))
        }
    }
}

/// Pings systemd's watchdog at half of WATCHDOG_USEC while the event loops
/// answer: each ping follows a round trip through every event loop, so a
/// wedged loop stops the pings and systemd restarts cofferd.
struct WatchdogPing: Service {
    let interval: Duration
    let services: CofferServices
    let group: any EventLoopGroup

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            // Cut short by graceful shutdown: the services stop in turn, and
            // a sleep of half the watchdog interval (15 s with the unit's
            // WatchdogSec=30s) would hold up every stop and restart.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard !Task.isShuttingDownGracefully else { break }
            for loop in group.makeIterator() {
                try await loop.submit {}.get()
            }
            SystemdNotifier.watchdog()
            SystemdNotifier.status(SystemdNotifier.describe(services))
        }
    }
}
