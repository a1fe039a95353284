import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Where cofferd finds its master keys (docs/operator-guide.md, "Master
/// key rotation"): the configured source (systemd credential or key file),
/// then every key file a `rotate-master-key` added, listed one path per
/// line in STATE/master-keys. The list holds paths, never key bytes.
///
/// A rotation adds the new key's file to the list before any record is
/// sealed with it, so whatever a crash leaves on disk, the next start loads
/// every key a record may need.
public struct MasterKeyLocations: Sendable {
    public static let listName = "master-keys"

    public let primary: MasterKeySource
    public let stateDirectory: String

    public init(primary: MasterKeySource, stateDirectory: String) {
        self.primary = primary
        self.stateDirectory = stateDirectory
    }

    var listPath: String { stateDirectory + "/" + Self.listName }

    /// What `load` found: the key to seal with (the newest listed key that
    /// loaded, else the primary), every key loaded, and why any listed
    /// file was skipped (a file the operator removed once its key became
    /// the primary one is not an error).
    public struct Loaded: Sendable {
        public let current: MasterKey
        public let all: [MasterKey]
        public let skipped: [String]
    }

    /// Loads the primary key (or the key file `primaryPath` instead, for
    /// `unseal` with a key file), then every listed file.
    public func load(primaryPath: String? = nil) throws -> Loaded {
        let first = try (primaryPath.map { MasterKeySource.keyFile(path: $0) } ?? primary).load()
        var all = [first]
        var current = first
        var skipped: [String] = []
        for path in try listed() {
            do {
                let key = try MasterKeySource.keyFile(path: path).load()
                if !all.contains(where: { $0.id == key.id }) { all.append(key) }
                current = all.first { $0.id == key.id }!
            } catch {
                skipped.append("\(error)")
            }
        }
        return Loaded(current: current, all: all, skipped: skipped)
    }

    /// The listed key files, oldest first.
    public func listed() throws -> [String] {
        let fd: OwnedFileDescriptor
        do {
            fd = try .open(listPath, O_RDONLY | O_NOFOLLOW)
        } catch let error as SyscallError where error.errno == ENOENT {
            return []
        }
        if let problem = secretFileProblem(try fd.status()) {
            throw KeyringError(.keyFilePermissions, "refusing \(listPath): it \(problem)")
        }
        return String(decoding: try fd.readAll(limit: 1 << 20), as: UTF8.self)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// Adds `path` as the newest key file, durably, before the caller seals
    /// anything with its key.
    public func add(_ path: String) throws {
        var paths = try listed().filter { $0 != path }
        paths.append(path)
        try DurableFile.replace(listPath, in: stateDirectory, with: Array(paths.map { $0 + "\n" }.joined().utf8))
    }

    /// Writes a key cofferd generated to STATE/master-key-ID (0600, synced
    /// with its directory) and returns the path, for `add`.
    public func storeGenerated(_ key: MasterKey) throws -> String {
        let path = stateDirectory + "/master-key-" + key.id.hex
        try MasterKeySource.createKeyFile(at: path, key: key)
        let dir = try OwnedFileDescriptor.open(stateDirectory, O_RDONLY | O_DIRECTORY)
        try dir.fsync()
        return path
    }
}
