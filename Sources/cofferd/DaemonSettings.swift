import Configuration
import Keyring
import LockedMemory
import Model
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

    enum Mode: Sendable, Equatable {
        case production
        /// The dev directory; its invoking user may do everything.
        case development(directory: String)
    }

    static let defaultStateDirectory = "/var/lib/coffer"
    static let defaultRuntimeDirectory = "/run/coffer"
    static let defaultKeyFile = "/etc/coffer/master.key"

    static func resolve(config path: String?, dev: String?, audit: AuditChoice?) async throws -> DaemonSettings {
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
        let heap = reader.int(forKey: "memory.secure_heap_bytes", default: SecureHeap.defaultSize)
        guard heap >= 64 * 1024, heap & (heap - 1) == 0 else {
            throw StartupRefusal("memory.secure_heap_bytes must be a power of two of at least 65536")
        }
        guard limits.maxLineBytes >= 1024, limits.maxPipelinedRequests >= 1, limits.maxConnections >= 1 else {
            throw StartupRefusal("limits must be positive (max_line_bytes at least 1024)")
        }
        let credentials = ProcessInfoEnvironment.value("CREDENTIALS_DIRECTORY")

        if let dev {
            let directory = dev.hasPrefix("/") ? dev : currentDirectory() + "/" + dev
            return DaemonSettings(
                mode: .development(directory: directory),
                stateDirectory: directory + "/state",
                runtimeDirectory: directory + "/run",
                keySource: .keyFile(path: directory + "/master.key"),
                audit: audit ?? .auto,
                limits: limits,
                secureHeapBytes: heap
            )
        }
        let auditSetting = reader.string(forKey: "audit").flatMap(AuditChoice.init(rawValue:))
        return DaemonSettings(
            mode: .production,
            stateDirectory: firstPath(reader.string(forKey: "state.directory")) ?? defaultStateDirectory,
            runtimeDirectory: firstPath(reader.string(forKey: "runtime.directory")) ?? defaultRuntimeDirectory,
            keySource: .resolve(credentialsDirectory: credentials,
                                keyFile: reader.string(forKey: "key_file") ?? defaultKeyFile),
            audit: audit ?? auditSetting ?? .journal,
            limits: limits,
            secureHeapBytes: heap
        )
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
    /// the daemon's own user may administer; services get nothing until a
    /// policy grants it (default deny).
    var policy: AccessPolicy {
        switch mode {
        case .development:
            return .owner(uid: getuid())
        case .production:
            var grants = AccessPolicy.owner(uid: 0).grants
            if geteuid() != 0 { grants += AccessPolicy.owner(uid: geteuid()).grants }
            return AccessPolicy(grants: grants)
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
