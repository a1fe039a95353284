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
/// A restore, which may put another store's file in place, first adds a
/// second line, `pending STORE GENERATION`, naming what it puts there, so
/// that a start after a crash in the middle accepts either state; the next
/// record removes it.
///
/// It lives beside the store file, so it stops mistakes and stale copies,
/// not someone who can write both (docs/file-format.md).
final class StoreHighWater: Sendable {
    static let fileName = "store-generation"
    let last: (storeID: String, generation: UInt64)?
    /// What a restore a crash may have cut short was putting in place.
    let pending: (storeID: String, generation: UInt64)?

    private struct State: ~Copyable {
        let file: OwnedFileDescriptor
        /// The file holds a pending line now.
        var pending: Bool
    }
    private let state: Mutex<State>

    init(directory: String) throws {
        let opened = try OwnedFileDescriptor.open(directory + "/" + Self.fileName, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
        let read = try opened.readAll(limit: 4096)
        // Zeros only: a file system that wrote the size before the data
        // (ext4 data=writeback) and a crash before its first sync.
        let text = read.allSatisfy { $0 == 0 } ? "" : String(decoding: read, as: UTF8.self)
        let lines = text.split(separator: "\n")
        func parsed(_ line: Substring, marked marker: String? = nil) -> (String, UInt64)? {
            var parts = line.split(separator: " ")
            if let marker {
                guard parts.first.map(String.init) == marker else { return nil }
                parts.removeFirst()
            }
            guard parts.count == 2, let generation = UInt64(parts[1]) else { return nil }
            return (String(parts[0]), generation)
        }
        last = lines.count <= 2 ? lines.first.flatMap { parsed($0) } : nil
        pending = lines.count == 2 && last != nil ? parsed(lines[1], marked: "pending") : nil
        // Read as "never served", a garbled file would turn the rollback
        // check off: refused instead (deleting it turns it off on purpose).
        guard text.isEmpty || last != nil, lines.count < 2 || pending != nil else {
            throw StoreError(.corrupt, "\(directory)/\(Self.fileName) cannot be read; to start without the rollback check, remove it (docs/file-format.md)")
        }
        state = Mutex(State(file: opened, pending: lines.count > 1))
    }

    private static func line(_ storeID: String, _ generation: UInt64, marked marker: String = "") -> [UInt8] {
        let digits = String(generation)
        return Array("\(marker)\(storeID) \(String(repeating: "0", count: max(0, 20 - digits.count)))\(digits)\n".utf8)
    }

    /// Writes `snapshot`'s generation and, unless `sync` is false, syncs it
    /// (the caller then calls `sync()` when it is ready to wait for it).
    func record(_ snapshot: StoreSnapshot, sync: Bool = true) throws {
        let line = Self.line(snapshot.storeID, snapshot.generation)
        try state.withLock { state in
            let fd = state.file.rawValue
            _ = try syscall("pwrite") { line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
            if state.pending {
                // What the restore put in place is recorded: its line goes.
                _ = try syscall("ftruncate") { ftruncate(fd, off_t(line.count)) }
                state.pending = false
            }
            if sync { _ = try syscall("fdatasync") { fdatasync(fd) } }
        }
    }

    /// Before a restore renames `next` into place over `current`: both are
    /// written, `next` as the pending line, and synced.
    func recordPending(_ next: StoreSnapshot, after current: StoreSnapshot) throws {
        let lines = Self.line(current.storeID, current.generation) + Self.line(next.storeID, next.generation, marked: "pending ")
        try state.withLock { state in
            let fd = state.file.rawValue
            // Before the write: should its sync fail, the next record must
            // still cut the line.
            state.pending = true
            _ = try syscall("pwrite") { lines.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
            _ = try syscall("ftruncate") { ftruncate(fd, off_t(lines.count)) }
            _ = try syscall("fdatasync") { fdatasync(fd) }
        }
    }

    func sync() throws {
        try state.withLock { state in _ = try syscall("fdatasync") { fdatasync(state.file.rawValue) } }
        syncs.add(1, ordering: .relaxed)
    }

    /// How many times `sync()` synced the file (tests).
    var syncCount: Int { syncs.load(ordering: .relaxed) }
    private let syncs = Atomic<Int>(0)
}
