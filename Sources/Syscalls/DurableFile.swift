import CCofferShims
#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file so that after a crash or power loss either the old or the
/// new contents are there, never a mix, and once `replace` returns the new
/// contents are on disk:
///
/// 1. write a temp file in the same directory (O_EXCL, 0600), fsync it;
/// 2. rename(2) it over the target (atomic within a filesystem);
/// 3. fsync the directory, which makes the rename itself durable
///    (fsync(2): "calling fsync() on the file does not ensure that the entry
///    in the directory containing the file has also reached disk").
public enum DurableFile {
    public static let tempMarker = ".tmp-"

    /// Returns the new file's status (taken before the rename, which keeps
    /// it), so that cofferd knows its own file when the watcher sees it.
    @discardableResult
    public static func replace(_ path: String, in directory: String, with bytes: [UInt8]) throws -> stat {
        let (temp, written) = try writeTemporary(for: path, bytes)
        try install(temp, over: path, in: directory, written: written)
        return written
    }

    /// Step 1 alone: `bytes` in a new temp file beside `path`, synced. The
    /// caller installs it (or unlinks it) later.
    public static func writeTemporary(for path: String, _ bytes: [UInt8]) throws -> (temp: String, written: stat) {
        let temp = path + tempMarker + randomSuffix()
        do {
            let fd = try OwnedFileDescriptor.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
            try fd.writeAll(bytes)
            try fd.fsync()
            let written = try fd.status()
            try fd.close()
            return (temp, written)
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// Steps 2 and 3: `temp` renamed over `path`, and the directory synced
    /// (by `syncDirectory`, which tests make fail).
    public static func install(
        _ temp: String, over path: String, in directory: String, written: stat,
        syncDirectory: (String) throws -> Void = DurableFile.syncDirectory
    ) throws {
        do {
            try syscall("rename") { rename(temp, path) }
        } catch {
            unlink(temp)
            throw error
        }
        try syncAfterRename(directory, written: written, syncDirectory)
    }

    /// Steps 2 and 3 over a file that must still be the one `isExpected`
    /// recognises (by its status), checked atomically with the replacement:
    /// `temp` and `path` swap names (renameat2(2), `RENAME_EXCHANGE`); if
    /// what came out is another file (one dropped in since the caller last
    /// looked), they swap back, that file stays at `path`, and
    /// `ReplacedMeanwhile` is thrown with nothing changed. A plain rename
    /// where the file system cannot exchange (it checks nothing then).
    public static func install(
        _ temp: String, over path: String, in directory: String, written: stat, onlyOver isExpected: (stat) -> Bool,
        syncDirectory: (String) throws -> Void = DurableFile.syncDirectory
    ) throws {
        guard try renamed(coffer_rename_exchange(temp, path), notThere: ENOENT, temp: temp) else {
            return try install(temp, over: path, in: directory, written: written, syncDirectory: syncDirectory)
        }
        // `temp` now names the file that was at `path`.
        var replaced = stat()
        if lstat(temp, &replaced) != 0 || !isExpected(replaced) {
            // Put the dropped-in file back; ours goes.
            if coffer_rename_exchange(temp, path) == 0 {
                unlink(temp)
                throw ReplacedMeanwhile()
            }
            // Ours stays in place (what the caller asked for, done): the
            // other file is kept beside it under a name no start removes.
            rename(temp, path + displacedMarker + randomSuffix())
        } else {
            unlink(temp)
        }
        try syncAfterRename(directory, written: written, syncDirectory)
    }

    /// Steps 2 and 3 where no file may be at `path` (one created since the
    /// caller found none is not replaced: `ReplacedMeanwhile`).
    public static func installIfAbsent(
        _ temp: String, at path: String, in directory: String, written: stat,
        syncDirectory: (String) throws -> Void = DurableFile.syncDirectory
    ) throws {
        guard try renamed(coffer_rename_noreplace(temp, path), notThere: EEXIST, temp: temp) else {
            return try install(temp, over: path, in: directory, written: written, syncDirectory: syncDirectory)
        }
        try syncAfterRename(directory, written: written, syncDirectory)
    }

    /// What a renameat2(2) that returned `result` did: true when it renamed,
    /// false where the file system lacks the flag (a plain rename then);
    /// throws otherwise (`ReplacedMeanwhile` for `notThere`), `temp` removed.
    private static func renamed(_ result: Int32, notThere: Int32, temp: String) throws -> Bool {
        guard result != 0 else { return true }
        let error = errno
        guard error == EINVAL || error == ENOSYS else {
            unlink(temp)
            throw error == notThere ? ReplacedMeanwhile() : SyscallError(function: "renameat2", errno: error)
        }
        return false
    }

    private static func syncAfterRename(_ directory: String, written: stat, _ syncDirectory: (String) throws -> Void) throws {
        do {
            try syncDirectory(directory)
        } catch {
            // The new file is in place (and is what a reader sees now); only
            // its surviving a power loss is in doubt.
            throw RenamedButNotSynced(written: written, underlying: error)
        }
    }

    /// The file at the target was not the one expected: nothing was replaced.
    public struct ReplacedMeanwhile: Error {}

    /// Marks a file dropped in that a failed swap back left beside ours.
    public static let displacedMarker = ".displaced-"

    /// fsync(2) of a directory: makes the renames and creations in it durable.
    public static func syncDirectory(_ directory: String) throws {
        let dir = try OwnedFileDescriptor.open(directory, O_RDONLY | O_DIRECTORY)
        try dir.fsync()
    }

    public struct RenamedButNotSynced: Error {
        public let written: stat
        public let underlying: any Error
    }

    /// 12 hex digits from the system generator (getrandom(2) underneath):
    /// temp names nobody can guess ahead.
    private static func randomSuffix() -> String {
        let value = UInt64.random(in: 0..<(1 << 48))
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 12 - hex.count) + hex
    }

    /// Removes temp files a crash left between steps 1 and 2. They are never
    /// loaded: the target still holds the last committed state.
    public static func removeLeftovers(of fileName: String, in directory: String) {
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        let prefix = fileName + tempMarker
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) { unlink(directory + "/" + name) }
        }
    }
}
