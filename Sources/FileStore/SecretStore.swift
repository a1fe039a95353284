import Model
import Synchronization
import Syscalls
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// The encrypted file store: one file, `store.json`, in the state directory.
///
/// Readers take `snapshot` (an immutable value, swapped atomically); writers
/// go through `commit`, one at a time, and a commit returns only after the
/// new file is durable. The in-memory state changes only after the disk has
/// it, so nothing is ever served that a crash could lose.
public final class SecretStore: Sendable {
    public static let fileName = "store.json"

    public let directory: String
    public var path: String { directory + "/" + Self.fileName }

    private let current: Mutex<StoreSnapshot>
    /// Serialises writers; held across the disk write (readers never take it).
    private let writer = Mutex<Void>(())

    private init(directory: String, snapshot: StoreSnapshot) {
        self.directory = directory
        self.current = Mutex(snapshot)
    }

    /// Opens the store in `directory`, creating an empty one with a new
    /// random store id if there is none. The file must be 0600 and owned by
    /// the daemon's user.
    public static func open(directory: String) throws -> SecretStore {
        DurableFile.removeLeftovers(of: fileName, in: directory)
        let path = directory + "/" + fileName
        let fd: OwnedFileDescriptor
        do {
            fd = try .open(path, O_RDONLY | O_NOFOLLOW)
        } catch let error as SyscallError where error.errno == ENOENT {
            let empty = StoreSnapshot(storeID: try SecureRandom.hex(16), generation: 0, secrets: [:])
            try DurableFile.replace(path, in: directory, with: StoreFileFormat(empty).encoded())
            return SecretStore(directory: directory, snapshot: empty)
        }
        if let problem = secretFileProblem(try fd.status()) {
            throw StoreError(.permissions, "refusing the store file \(path): it \(problem)")
        }
        let snapshot = try StoreFileFormat.decode(try fd.readAll())
        return SecretStore(directory: directory, snapshot: snapshot)
    }

    public var snapshot: StoreSnapshot { current.withLock { $0 } }

    /// Applies `change` to a copy of the current secrets, writes the result
    /// durably as the next generation, then publishes it. If `change` throws,
    /// or the write fails, nothing changes.
    public func commit<Result>(
        _ change: (_ storeID: String, _ secrets: inout [SecretName: Secret]) throws -> Result
    ) throws -> Result {
        try writer.withLock { _ in
            let base = snapshot
            var secrets = base.secrets
            let result = try change(base.storeID, &secrets)
            let next = StoreSnapshot(storeID: base.storeID, generation: base.generation + 1, secrets: secrets)
            do {
                try DurableFile.replace(path, in: directory, with: StoreFileFormat(next).encoded())
            } catch {
                throw StoreError(.io, "could not write the store file", underlying: "\(error)")
            }
            current.withLock { $0 = next }
            return result
        }
    }
}
