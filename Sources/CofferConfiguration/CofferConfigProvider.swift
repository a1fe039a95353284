import CofferClient
import Configuration
import Synchronization

/// Coffer's secrets as a swift-configuration provider: a `ConfigReader`
/// reads them like any other configuration, and its watch APIs see a
/// rotation at once (docs/clients.md).
///
/// Keys map to secret names: by default `db.password` is `db/password`
/// (every secret the caller may list under `prefix`); `mapping` adds
/// explicit ones (`["database.password": "prod/db/pw"]`). Every value is
/// marked secret (`isSecret`), so access reporters redact it. Values are
/// read once when the provider is made and kept current by `run()`, which
/// follows cofferd's `watch`; reads never wait on the socket.
///
/// A ConfigReader hands values out as Strings, which Swift does not wipe:
/// where a value must not linger, read it with `CofferClient` instead.
public final class CofferConfigProvider: ConfigProvider, Sendable {
    public var providerName: String { "CofferConfigProvider" }
    private let client: CofferClient
    private let prefix: String?
    /// Config key (dot-separated) → secret name, given by the caller.
    private let mapping: [String: String]
    private let values: MutableInMemoryProvider
    /// Secret name → the keys it stands under now.
    private let keys = Mutex<[String: [AbsoluteConfigKey]]>([:])

    private init(client: CofferClient, prefix: String?, mapping: [String: String]) {
        self.client = client
        self.prefix = prefix
        self.mapping = mapping
        values = MutableInMemoryProvider(name: "coffer", initialValues: [:])
    }

    /// Reads the secrets the caller may list (under `prefix`) and those
    /// `mapping` names, on `client`'s connection.
    public static func load(
        client: CofferClient, prefix: String? = nil, mapping: [String: String] = [:]
    ) async throws(CofferClientError) -> CofferConfigProvider {
        let provider = CofferConfigProvider(client: client, prefix: prefix, mapping: mapping)
        try await provider.readAll()
        return provider
    }

    /// Follows changes until cancelled or the connection ends: each put,
    /// rotation or deletion replaces (or removes) that secret's value, and a
    /// reload reads everything again. Run it beside the service (a task, or
    /// a ServiceGroup service). It takes the client's one watch (a
    /// connection has one): give the provider a client of its own if the
    /// service watches too.
    public func run() async throws {
        var watched = [(prefix ?? "") + "**"]
        watched += Set(mapping.values).sorted()
        let changes = try await client.watch(watched)
        // What changed between load() and the watch is read now.
        try await readAll()
        for try await change in changes {
            switch change.kind {
            case .put, .rotate, .delete:
                if let name = change.name { try await read(name) }
            case .reload, .other:
                try await readAll()
            }
        }
    }

    /// The config key a secret name stands under by default.
    static func defaultKey(for name: String) -> AbsoluteConfigKey {
        AbsoluteConfigKey(name.split(separator: "/").map(String.init))
    }

    private func keys(for name: String) -> [AbsoluteConfigKey] {
        var found: [AbsoluteConfigKey] = []
        if prefix.map({ name.hasPrefix($0) }) ?? true { found.append(Self.defaultKey(for: name)) }
        for (key, mapped) in mapping where mapped == name {
            found.append(AbsoluteConfigKey(key.split(separator: ".").map(String.init)))
        }
        return found
    }

    private func readAll() async throws(CofferClientError) {
        var names = Set(mapping.values)
        for secret in try await client.list(prefix: prefix) where secret.protection != "hashed" {
            names.insert(secret.name)
        }
        let gone = keys.withLock { Set($0.keys).subtracting(names) }
        for name in gone { forget(name) }
        for name in names.sorted() { try await read(name) }
    }

    /// Reads `name` again; a secret that is gone (or not readable) is
    /// removed from the configuration.
    private func read(_ name: String) async throws(CofferClientError) {
        let content: ConfigContent
        do {
            let value = try await client.get(name).value
            content = value.text.map(ConfigContent.string) ?? .bytes(value.withUnsafeBytes { Array($0) })
        } catch where [.notFound, .denied, .conflict, .expired].contains(error.code) {
            forget(name)
            return
        }
        let under = keys(for: name)
        keys.withLock { $0[name] = under }
        for key in under { values.setValue(ConfigValue(content, isSecret: true), forKey: key) }
    }

    private func forget(_ name: String) {
        let under = keys.withLock { $0.removeValue(forKey: name) } ?? []
        for key in under { values.setValue(nil, forKey: key) }
    }

    // MARK: ConfigProvider, through the values kept

    public func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        try values.value(forKey: key, type: type)
    }

    public func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try await values.fetchValue(forKey: key, type: type)
    }

    public func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey, type: ConfigType,
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>) async throws -> Return
    ) async throws -> Return {
        try await values.watchValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    public func snapshot() -> any ConfigSnapshot {
        values.snapshot()
    }

    public func watchSnapshot<Return: ~Copyable>(
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws -> Return
    ) async throws -> Return {
        try await values.watchSnapshot(updatesHandler: updatesHandler)
    }
}
