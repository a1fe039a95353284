import Model
import Seal
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// What the mirror keeps in the state directory (never key bytes):
/// - `host-id`: this host's random id, the `origin` of the rows it writes;
/// - `mirror-pulled`: the store id and the last change_seq taken from the
///   other hosts, so a restart resumes instead of reading everything again;
/// - `mirror-pushed`: the store id and the outbox generation up to which
///   every change is in PostgreSQL (SettledChanges).
struct MirrorState {
    let directory: String

    func hostID() throws -> String {
        let path = directory + "/host-id"
        if let fd = try? OwnedFileDescriptor.open(path, O_RDONLY | O_NOFOLLOW),
           let text = try? fd.readAll(limit: 256) {
            let id = String(decoding: text, as: UTF8.self).trimmingSuffixNewlines
            if Hex.isDigits(id, count: 32) { return id }
        }
        let id = try SecureRandom.hex(16)
        try DurableFile.replace(path, in: directory, with: Array((id + "\n").utf8))
        return id
    }

    func pulled(storeID: String) -> Int64 {
        position("mirror-pulled", storeID: storeID).flatMap { Int64($0) } ?? 0
    }

    func recordPulled(storeID: String, sequence: Int64) throws {
        try record("mirror-pulled", storeID: storeID, String(sequence))
    }

    /// The store's outbox generation up to which every change is in
    /// PostgreSQL (SettledChanges); 0 for another store or none yet.
    func pushed(storeID: String) -> UInt64 {
        position("mirror-pushed", storeID: storeID).flatMap { UInt64($0) } ?? 0
    }

    func recordPushed(storeID: String, generation: UInt64) throws {
        try record("mirror-pushed", storeID: storeID, String(generation))
    }

    /// The number in a `STORE_ID NUMBER` file, as text; nil when the file
    /// is missing, unreadable, or of another store.
    private func position(_ file: String, storeID: String) -> Substring? {
        guard let fd = try? OwnedFileDescriptor.open(directory + "/" + file, O_RDONLY | O_NOFOLLOW),
              let text = try? fd.readAll(limit: 256)
        else { return nil }
        let parts = String(decoding: text, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, parts[0] == storeID else { return nil }
        return parts[1]
    }

    private func record(_ file: String, storeID: String, _ number: String) throws {
        try DurableFile.replace(directory + "/" + file, in: directory, with: Array("\(storeID) \(number)\n".utf8))
    }
}
