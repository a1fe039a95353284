import CofferCore
import Configuration
import Keyring
import LockedMemory
import Model
import NIOCore
import Server
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Everything cofferd needs to start, resolved from (highest first) the
/// command line, the config file, systemd's environment and the defaults.
struct DaemonSettings: Sendable {
    var mode: Mode
    var stateDirectory: String
    var runtimeDirectory: String
    var keySource: MasterKeySource
    var audit: AuditChoice
    var limits: ServerLimits
    var secureHeapBytes: Int
    /// The policy file (docs/policy.md); a missing file grants nothing.
    var policyFile: String
    /// The coalescing window for repeated successful reads; 0: off.
    var auditCoalesceSeconds: Double = 0
    /// How long one journal send may wait for a journald that does not
    /// read (audit_send_timeout_ms; JournalSendTimeout).
    var auditSendTimeout: Duration = .milliseconds(500)
    /// How many versions of each secret are kept (retain_versions).
    var retainVersions: Int = CofferServices.defaultRetainVersions
    /// Development only: COFFER_DEV_RESEAL_PAUSE_MS slows a master-key
    /// rotation down so that a test can kill cofferd in its middle.
    var developmentResealPause: Duration? = nil
    /// The PostgreSQL mirror's libpq conninfo (docs/mirror.md); nil: none.
    var postgres: String? = nil
    /// Where the mirror's password comes from: a file, or the systemd
    /// credential `postgres-password`. Read at startup, never logged.
    var postgresPasswordFile: String? = nil
    var postgresArgument: String? = nil
    /// admin.sock's group (0660) when operators who are not root use it.
    var adminSocketGroup: gid_t? = nil
    /// What cofferd was started with, to read the configuration again on SIGHUP.
    var configPath: String? = nil
    var devArgument: String? = nil
    var auditArgument: AuditChoice? = nil
    var auditCoalesceArgument: Double? = nil

    /// Settings that differ in `fresh` but only take effect at a restart.
    func differencesNeedingRestart(_ fresh: DaemonSettings) -> [String] {
        var out: [String] = []
        if fresh.stateDirectory != stateDirectory { out.append("state.directory") }
        if fresh.runtimeDirectory != runtimeDirectory { out.append("runtime.directory") }
        if fresh.keySource != keySource { out.append("key_file") }
        if fresh.audit != audit { out.append("audit") }
        if fresh.auditCoalesceSeconds != auditCoalesceSeconds { out.append("audit_coalesce_seconds") }
        if fresh.auditSendTimeout != auditSendTimeout { out.append("audit_send_timeout_ms") }
        if fresh.policyFile != policyFile { out.append("policy_file") }
        if fresh.adminSocketGroup != adminSocketGroup { out.append("admin_socket_group") }
        if fresh.secureHeapBytes != secureHeapBytes { out.append("memory.secure_heap_bytes") }
        if fresh.retainVersions != retainVersions { out.append("retain_versions") }
        if fresh.postgres != postgres || fresh.postgresPasswordFile != postgresPasswordFile { out.append("postgres") }
        return out
    }

    enum Mode: Sendable, Equatable {
        case production
        /// The dev directory; its invoking user may do everything.
        case development(directory: String)
    }

    static let defaultStateDirectory = "/var/lib/coffer"
    static let defaultRuntimeDirectory = "/run/coffer"
    static let defaultKeyFile = "/etc/coffer/master.key"
    static let defaultPolicyFile = "/etc/coffer/policy"

    /// `groupNamed` resolves `admin_socket_group` when it is a name (NSS,
    /// which may hang: a running daemon asks on its account lookups' thread).
    static func resolve(
        config path: String?, dev: String?, audit: AuditChoice?, auditCoalesce: Double? = nil, postgres: String? = nil,
        groupNamed: @Sendable (String) async throws -> gid_t? = { SystemAccounts().groupID(named: $0) }
    ) async throws -> DaemonSettings {
        var settings = try await resolveValues(config: path, dev: dev, audit: audit, auditCoalesce: auditCoalesce, postgres: postgres,
                                               groupNamed: groupNamed)
        settings.postgresArgument = postgres
        settings.configPath = path
        settings.devArgument = dev
        settings.auditArgument = audit
        settings.auditCoalesceArgument = auditCoalesce
        return settings
    }

    private static func resolveValues(
        config path: String?, dev: String?, audit: AuditChoice?, auditCoalesce: Double?, postgres: String?,
        groupNamed: @Sendable (String) async throws -> gid_t?
    ) async throws -> DaemonSettings {
        var providers: [any ConfigProvider] = []
        if let path {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw StartupRefusal("cannot read the configuration file \(path): \(error)")
            }
        }
        // systemd's StateDirectory=/RuntimeDirectory= export STATE_DIRECTORY
        // and RUNTIME_DIRECTORY (systemd.exec(5)): the keys state.directory
        // and runtime.directory read them.
        providers.append(EnvironmentVariablesProvider())
        let reader = ConfigReader(providers: providers)

        var limits = ServerLimits()
        limits.maxLineBytes = reader.int(forKey: "limits.max_line_bytes", default: limits.maxLineBytes)
        limits.maxPipelinedRequests = reader.int(forKey: "limits.max_pipelined_requests", default: limits.maxPipelinedRequests)
        limits.maxConnections = reader.int(forKey: "limits.max_connections", default: limits.maxConnections)
        limits.maxConnectionsPerUser = reader.int(forKey: "limits.max_connections_per_user", default: limits.maxConnectionsPerUser)
        limits.maxQueuedEvents = reader.int(forKey: "limits.max_queued_events", default: limits.maxQueuedEvents)
        limits.maxBufferedBytesPerUser = reader.int(forKey: "limits.max_buffered_bytes_per_user", default: limits.maxBufferedBytesPerUser)
        limits.maxBufferedBytes = reader.int(forKey: "limits.max_buffered_bytes", default: limits.maxBufferedBytes)
        limits.maxConcurrentScrypt = reader.int(forKey: "limits.max_concurrent_scrypt", default: limits.maxConcurrentScrypt)
        limits.idleTimeout = try timeout(reader, "limits.idle_timeout_ms", default: limits.idleTimeout)
        limits.requestTimeout = try timeout(reader, "limits.request_timeout_ms", default: limits.requestTimeout)
        limits.writeTimeout = try timeout(reader, "limits.write_timeout_ms", default: limits.writeTimeout)
        let policyFile = reader.string(forKey: "policy_file")
        let coalesce = auditCoalesce ?? reader.double(forKey: "audit_coalesce_seconds", default: 0)
        guard coalesce >= 0, coalesce <= 3600 else {
            throw StartupRefusal("audit_coalesce_seconds must be between 0 (off) and 3600")
        }
        let sendTimeoutMilliseconds = reader.int(forKey: "audit_send_timeout_ms", default: 500)
        guard (10...60_000).contains(sendTimeoutMilliseconds) else {
            throw StartupRefusal("audit_send_timeout_ms must be between 10 and 60000")
        }
        let sendTimeout = Duration.milliseconds(sendTimeoutMilliseconds)
        var adminSocketGroup: gid_t?
        if let group = reader.string(forKey: "admin_socket_group") {
            let named = gid_t(group) == nil ? try await groupNamed(group) : nil
            guard let gid = gid_t(group) ?? named else {
                throw StartupRefusal("admin_socket_group: no group named \(group)")
            }
            adminSocketGroup = gid
        }
        let retain = reader.int(forKey: "retain_versions", default: CofferServices.defaultRetainVersions)
        guard (3...1000).contains(retain) else {
            throw StartupRefusal("retain_versions must be between 3 (current, previous, pending) and 1000")
        }
        let heap = reader.int(forKey: "memory.secure_heap_bytes", default: SecureHeap.defaultSize)
        guard heap >= 64 * 1024, heap & (heap - 1) == 0 else {
            throw StartupRefusal("memory.secure_heap_bytes must be a power of two of at least 65536")
        }
        guard limits.maxLineBytes >= 1024, limits.maxPipelinedRequests >= 1, limits.maxConnections >= 1,
              limits.maxQueuedEvents >= 1, limits.maxConnectionsPerUser >= 1, limits.maxConcurrentScrypt >= 1,
              limits.maxBufferedBytesPerUser >= limits.maxLineBytes, limits.maxBufferedBytes >= limits.maxBufferedBytesPerUser else {
            throw StartupRefusal("limits must be positive (max_line_bytes at least 1024, max_buffered_bytes_per_user at least max_line_bytes, max_buffered_bytes at least max_buffered_bytes_per_user)")
        }
        let credentials = ProcessInfoEnvironment.value("CREDENTIALS_DIRECTORY")
        // --postgres, else the config file's postgres.conninfo, else
        // COFFER_POSTGRES_URL. The password: postgres.password_file, else
        // the systemd credential postgres-password when it exists.
        let conninfo = postgres ?? reader.string(forKey: "postgres.conninfo") ?? ProcessInfoEnvironment.value("COFFER_POSTGRES_URL")
        var passwordFile = reader.string(forKey: "postgres.password_file")
        if passwordFile == nil, let credentials, access(credentials + "/postgres-password", F_OK) == 0 {
            passwordFile = credentials + "/postgres-password"
        }

        var result: DaemonSettings
        if let dev {
            let directory = dev.hasPrefix("/") ? dev : currentDirectory() + "/" + dev
            result = DaemonSettings(
                mode: .development(directory: directory),
                stateDirectory: directory + "/state",
                runtimeDirectory: directory + "/run",
                keySource: .keyFile(path: directory + "/master.key"),
                audit: audit ?? .auto,
                limits: limits,
                secureHeapBytes: heap,
                policyFile: policyFile ?? directory + "/policy",
                auditCoalesceSeconds: coalesce,
                retainVersions: retain,
                developmentResealPause: ProcessInfoEnvironment.value("COFFER_DEV_RESEAL_PAUSE_MS")
                    .flatMap { Int($0) }.map { Duration.milliseconds($0) },
                adminSocketGroup: adminSocketGroup
            )
        } else {
        let auditSetting = reader.string(forKey: "audit").flatMap(AuditChoice.init(rawValue:))
        result = DaemonSettings(
            mode: .production,
            stateDirectory: firstPath(reader.string(forKey: "state.directory")) ?? defaultStateDirectory,
            runtimeDirectory: firstPath(reader.string(forKey: "runtime.directory")) ?? defaultRuntimeDirectory,
            keySource: .resolve(credentialsDirectory: credentials,
                                keyFile: reader.string(forKey: "key_file") ?? defaultKeyFile),
            audit: audit ?? auditSetting ?? .journal,
            limits: limits,
            secureHeapBytes: heap,
            policyFile: policyFile ?? defaultPolicyFile,
            auditCoalesceSeconds: coalesce,
            retainVersions: retain,
            adminSocketGroup: adminSocketGroup
        )
        }
        result.auditSendTimeout = sendTimeout
        result.postgres = conninfo.flatMap { $0.isEmpty ? nil : $0 }
        result.postgresPasswordFile = passwordFile
        return result
    }

    private static func timeout(_ reader: ConfigReader, _ key: String, default value: TimeAmount) throws -> TimeAmount {
        let milliseconds = reader.int(forKey: ConfigKey(key), default: Int(value.nanoseconds / 1_000_000))
        guard milliseconds >= 10 else { throw StartupRefusal("\(key) must be at least 10") }
        return .milliseconds(Int64(milliseconds))
    }

    /// systemd joins several directories with ':'; cofferd uses the first.
    private static func firstPath(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value.split(separator: ":").first.map(String.init)
    }

    private static func currentDirectory() -> String {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let ok = buffer.withUnsafeMutableBufferPointer { getcwd(UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) != nil }
        guard ok else { return "." }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Dev mode: the invoking user may do everything. Production: root and
    /// the daemon's own user. Everyone else gets what the policy file grants
    /// (default deny).
    var policySource: PolicySource {
        switch mode {
        case .development:
            return PolicySource(base: .owner(uid: getuid()), path: policyFile)
        case .production:
            return PolicySource(base: AccessPolicy(superusers: [0, geteuid()]), path: policyFile)
        }
    }
}

enum ProcessInfoEnvironment {
    static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        let value = String(cString: raw)
        return value.isEmpty ? nil : value
    }
}
