import CLibSystemd
import CofferCore
import Model
import Server
#if canImport(Glibc)
import Glibc
#endif

/// What cofferd tells systemd (sd_notify(3)); a no-op without NOTIFY_SOCKET.
enum SystemdNotifier {
    static func ready(_ status: String) { send("READY=1\nSTATUS=\(status)") }

    static func status(_ status: String) { send("STATUS=\(status)") }

    /// Type=notify-reload's protocol, also right for Type=notify: RELOADING=1
    /// with the monotonic time it started, then READY=1 when done.
    static func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)\nSTATUS=reloading")
    }

    static func stopping() { send("STOPPING=1\nSTATUS=stopping: draining connections") }

    static func watchdog() { send("WATCHDOG=1") }

    /// Half of WATCHDOG_USEC when systemd asks this process for pings
    /// (sd_watchdog_enabled(3) checks WATCHDOG_PID is ours); nil otherwise.
    static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec / 2))
    }

    private static func send(_ message: String) {
        _ = sd_notify(0, message)
    }

    /// The short state systemctl status shows.
    static func describe(_ services: CofferServices) -> String {
        let secrets = services.store.snapshot.secrets.count
        let rules = services.policy.rules.count
        let audit = services.audit.isReachable ? services.audit.name : "\(services.audit.name) UNREACHABLE"
        return "serving \(secrets) secrets; policy \(rules) rules; audit \(audit)"
    }
}

/// Socket activation (sd_listen_fds_with_names(3)): the sockets systemd
/// passed, by the FileDescriptorName= of their .socket units (coffer, admin,
/// credentials). Others are ignored, with a warning, and closed.
enum SocketActivation {
    static func passedSockets() -> (sockets: [Listener: Int32], unknown: [String]) {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        // unset_environment: children never see LISTEN_FDS meant for us.
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return ([:], []) }
        defer {
            for i in 0..<Int(count) { free(names?[i]) }
            free(names)
        }
        var sockets: [Listener: Int32] = [:]
        var unknown: [String] = []
        for i in 0..<Int(count) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? ""
            if let listener = Listener.allCases.first(where: { $0.activationName == name }), sockets[listener] == nil {
                sockets[listener] = fd
            } else {
                unknown.append(name)
                close(fd)
            }
        }
        return (sockets, unknown)
    }
}
