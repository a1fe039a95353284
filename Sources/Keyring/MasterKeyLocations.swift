import Model
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Where cofferd finds its master keys (docs/operator-guide.md, "Master
/// key rotation"): the configured source (systemd credential or key file),
/// then every key file a `rotate-master-key` added, listed one path per
/// line (`KEYID PATH`) in STATE/master-keys. The list holds key ids and
/// paths, never key bytes; a listed file that now holds another key is
/// skipped, so reusing a path cannot silently swap a key the store needs.
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
        for (listedID, path) in try listed() {
            do {
                let key = try MasterKeySource.keyFile(path: path).load()
                if let listedID, key.id != listedID {
                    skipped.append("\(path) holds key \(key.id), but was listed for key \(listedID)")
                    continue
                }
                if !all.contains(where: { $0.id == key.id }) { all.append(key) }
                current = all.first { $0.id == key.id }!
            } catch {
                skipped.append("\(error)")
            }
        }
        return Loaded(current: current, all: all, skipped: skipped)
    }

    /// The listed key files with the key id each must hold, oldest first.
    public func listed() throws -> [(keyID: KeyID?, path: String)] {
        let fd: OwnedFileDescriptor
        do {
            fd = try .open(listPath, O_RDONLY | O_NOFOLLOW)
        } catch let error as SyscallError where error.errno == ENOENT {
            return []
        }
        if let problem = secretFileProblem(try fd.status()) {
            throw KeyringError(.keyFilePermissions, "refusing \(listPath): it \(problem)")
        }
        return String(decoding: try fd.readAll(limit: 1 << 20), as: UTF8.self).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let id = KeyID(hex: String(parts[0])) { return (id, String(parts[1])) }
            return line.isEmpty ? nil : (nil, String(line))
        }
    }

    /// Adds `path` as the newest key file, durably, before the caller seals
    /// anything with its key.
    public func add(_ path: String, keyID: KeyID) throws {
        var entries = try listed().filter { $0.path != path }
        entries.append((keyID, path))
        let text = entries.map { ($0.keyID.map { $0.hex + " " } ?? "") + $0.path + "\n" }.joined()
        try DurableFile.replace(listPath, in: stateDirectory, with: Array(text.utf8))
    }

    /// fsync(2)s a key file and its directory.
    public static func syncToDisk(_ path: String) throws {
        let file = try OwnedFileDescriptor.open(path, O_RDONLY | O_NOFOLLOW)
        try file.fsync()
        let slash = path.lastIndex(of: "/").map { path[..<$0] }.map(String.init) ?? "."
        let dir = try OwnedFileDescriptor.open(slash.isEmpty ? "/" : slash, O_RDONLY | O_DIRECTORY)
        try dir.fsync()
    }

    /// Writes a key cofferd generated to STATE/master-key-ID (0600, synced
    /// with its directory) and returns the path, for `add`.
    public func storeGenerated(_ key: MasterKey) throws -> String {
        let path = stateDirectory + "/master-key-" + key.id.hex
        try MasterKeySource.createKeyFile(at: path, key: key)
        try Self.syncToDisk(path)
        return path
    }
}
