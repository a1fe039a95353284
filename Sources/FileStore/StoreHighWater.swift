import Model
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// `store-generation` in the state directory: the store id and the highest
/// generation this directory has served, so that a restart cannot bring
/// back an older file (an old backup, a stale `git pull`) or another
/// store's. One fixed-width line rewritten in place after every commit and
/// reload and fdatasync'd (after commits are answered, and under load only
/// every so often: docs/file-format.md, "Commits and group commit"); it can
/// lag the store after a crash, never lead it.
///
/// It lives beside the store file, so it stops mistakes and stale copies,
/// not someone who can write both (docs/file-format.md).
final class StoreHighWater: Sendable {
    static let fileName = "store-generation"
    let last: (storeID: String, generation: UInt64)?
    private let fd: Mutex<OwnedFileDescriptor>

    init(directory: String) throws {
        let opened = try OwnedFileDescriptor.open(directory + "/" + Self.fileName, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
        let parts = String(decoding: try opened.readAll(limit: 4096), as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        if parts.count == 2, let generation = UInt64(parts[1]) {
            last = (String(parts[0]), generation)
        } else {
            last = nil
        }
        fd = Mutex(opened)
    }

    /// Writes `snapshot`'s generation and, unless `sync` is false, syncs it
    /// (the caller then calls `sync()` when it is ready to wait for it).
    func record(_ snapshot: StoreSnapshot, sync: Bool = true) throws {
        let generation = String(snapshot.generation)
        let line = Array("\(snapshot.storeID) \(String(repeating: "0", count: max(0, 20 - generation.count)))\(generation)\n".utf8)
        try fd.withLock { fd in
            _ = try syscall("pwrite") { line.withUnsafeBytes { pwrite(fd.rawValue, $0.baseAddress, $0.count, 0) } }
            if sync { _ = try syscall("fdatasync") { fdatasync(fd.rawValue) } }
        }
    }

    func sync() throws {
        try fd.withLock { fd in _ = try syscall("fdatasync") { fdatasync(fd.rawValue) } }
        syncs.add(1, ordering: .relaxed)
    }

    /// How many times `sync()` synced the file (tests).
    var syncCount: Int { syncs.load(ordering: .relaxed) }
    private let syncs = Atomic<Int>(0)
}
