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
            if id.utf8.count == 32, id.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) { return id }
        }
        let id = try SecureRandom.hex(16)
        try DurableFile.replace(path, in: directory, with: Array((id + "\n").utf8))
        return id
    }

    func pulled(storeID: String) -> Int64 {
        guard let fd = try? OwnedFileDescriptor.open(directory + "/mirror-pulled", O_RDONLY | O_NOFOLLOW),
              let text = try? fd.readAll(limit: 256)
        else { return 0 }
        let parts = String(decoding: text, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, parts[0] == storeID, let sequence = Int64(parts[1]) else { return 0 }
        return sequence
    }

    func recordPulled(storeID: String, sequence: Int64) throws {
        try DurableFile.replace(directory + "/mirror-pulled", in: directory, with: Array("\(storeID) \(sequence)\n".utf8))
    }

    /// The store's outbox generation up to which every change is in
    /// PostgreSQL (SettledChanges); 0 for another store or none yet.
    func pushed(storeID: String) -> UInt64 {
        guard let fd = try? OwnedFileDescriptor.open(directory + "/mirror-pushed", O_RDONLY | O_NOFOLLOW),
              let text = try? fd.readAll(limit: 256)
        else { return 0 }
        let parts = String(decoding: text, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, parts[0] == storeID, let generation = UInt64(parts[1]) else { return 0 }
        return generation
    }

    func recordPushed(storeID: String, generation: UInt64) throws {
        try DurableFile.replace(directory + "/mirror-pushed", in: directory, with: Array("\(storeID) \(generation)\n".utf8))
    }
}
