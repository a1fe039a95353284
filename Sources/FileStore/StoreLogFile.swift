import Seal
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// The open store log (StoreLogFormat): appends commits' frames and syncs
/// them, and knows where each generation's frame ends, so a compaction can
/// carry over what was written after its snapshot.
///
/// Only one thread uses it at a time: the store's syncer while it writes a
/// batch, or an operation that runs while no commit does; and always
/// through the store's mutex over it (so `@unchecked`).
final class StoreLogFile: @unchecked Sendable {
    static let fileName = "store.log"
    /// A new log is written here, synced, then renamed over `store.log`.
    static let nextFileName = "store.log.next"

    private let fd: OwnedFileDescriptor
    let header: StoreLogFormat.Header
    /// Where the next frame goes: the end of the last synced frame.
    private(set) var end: Int
    /// The file's size: past `end` it holds zeros, written ahead of the
    /// frames (`append` says why).
    private var allocated: Int
    /// How far ahead of the frames the file is extended with zeros.
    static let allocationStep = 1 << 20
    /// The MAC of the last frame: the next frame's chain input.
    private(set) var lastMAC: [UInt8]
    private(set) var lastGeneration: UInt64
    /// Where each generation's frame ends (the header's end for the base).
    private var ends: [UInt64: Int]
    /// Bytes of entries (everything after the header): what compaction weighs.
    var entryBytes: Int { end - ends[header.baseGeneration]! }
    /// Appends synced so far (each a group of commits): for tests.
    private(set) var syncs = 0
    /// The file's identity, to notice it replaced or removed from outside.
    let identity: (device: UInt64, inode: UInt64)

    private init(fd: consuming OwnedFileDescriptor, header: StoreLogFormat.Header, headerEnd: Int, headerMAC: [UInt8]) throws {
        let info = try fd.status()
        self.identity = (UInt64(info.st_dev), UInt64(info.st_ino))
        self.fd = fd
        self.header = header
        end = headerEnd
        allocated = Int(info.st_size)
        lastMAC = headerMAC
        lastGeneration = header.baseGeneration
        ends = [header.baseGeneration: headerEnd]
    }

    // MARK: writing

    /// Appends the frames of `payloads` (generations `lastGeneration + 1`
    /// on) and syncs them: they are durable when this returns. On failure
    /// the file is cut back to where it was, and nothing changes here.
    ///
    /// Frames are written over zeros the file was extended with ahead of
    /// time, a MiB at a time: a write that grows a file makes its sync
    /// commit the file system's journal too (the new size), and here that
    /// made fdatasync take 600-770 µs against 270 µs for a write into
    /// place, and twice the CPU. Replay stops at the zeros as it does at
    /// any frame that does not check.
    func append(_ payloads: [[UInt8]], key: MACKey) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(payloads.reduce(0) { $0 + $1.count + 4 + StoreLogFormat.macCount })
        var mac = lastMAC
        var frameEnds: [Int] = []
        for payload in payloads {
            mac = try StoreLogFormat.entryMAC(payload, after: mac, key: key)
            StoreLogFormat.frame(payload, mac: mac, into: &bytes)
            frameEnds.append(end + bytes.count)
        }
        do {
            if end + bytes.count > allocated {
                let target = (end + bytes.count) / Self.allocationStep * Self.allocationStep + Self.allocationStep
                try writeAll([UInt8](repeating: 0, count: target - allocated), at: allocated)
                allocated = target
            }
            try writeAll(bytes, at: end)
            try syscall("fdatasync") { fdatasync(fd.rawValue) }
        } catch {
            // A frame half there would be dropped as torn at the next load
            // anyway; cutting it now keeps the next append's offset true.
            _ = ftruncate(fd.rawValue, off_t(end))
            _ = fdatasync(fd.rawValue)
            allocated = end
            throw error
        }
        for frameEnd in frameEnds {
            lastGeneration += 1
            ends[lastGeneration] = frameEnd
        }
        end += bytes.count
        lastMAC = mac
        syncs += 1
    }

    private func writeAll(_ bytes: [UInt8], at offset: Int) throws {
        var done = 0
        try bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let count = min(raw.count - done, 1 << 20)
                done += try syscall("pwrite") { pwrite(fd.rawValue, raw.baseAddress! + done, count, off_t(offset + done)) }
            }
        }
    }

    /// The payloads of the entries after `generation`, in order (what a
    /// compaction to that generation's snapshot carries into the new log),
    /// read back and checked against the chain: they are MAC'd again in
    /// the new log, so nothing changed on disk may pass into it.
    func payloads(after generation: UInt64, key: MACKey) throws -> [[UInt8]] {
        guard let start = ends[generation], generation <= lastGeneration else {
            throw StoreError(.io, "the store log holds no generation \(generation)")
        }
        // From the MAC of `generation`'s frame (or the header's), which
        // chains the first frame carried.
        let from = start - StoreLogFormat.macCount
        var bytes = [UInt8](repeating: 0, count: end - from)
        var done = 0
        try bytes.withUnsafeMutableBytes { raw in
            while done < raw.count {
                let count = try syscall("pread") { pread(fd.rawValue, raw.baseAddress! + done, raw.count - done, off_t(from + done)) }
                guard count > 0 else { throw SyscallError(function: "pread", errno: EIO) }
                done += count
            }
        }
        var previous = Array(bytes[0..<StoreLogFormat.macCount])
        let body = Array(bytes[StoreLogFormat.macCount...])
        var payloads: [[UInt8]] = []
        for frame in StoreLogFormat.frames(in: body).frames {
            let payload = Array(body[frame.payload])
            let mac = try StoreLogFormat.entryMAC(payload, after: previous, key: key)
            guard ConstantTime.equals(mac, Array(body[frame.mac])) else {
                throw StoreError(.tampered, "the store log changed on disk under cofferd (an entry no longer matches its MAC)")
            }
            payloads.append(payload)
            previous = mac
        }
        guard payloads.count == Int(lastGeneration - generation), ConstantTime.equals(previous, lastMAC) else {
            throw StoreError(.tampered, "the store log changed on disk under cofferd (its entries no longer end where they were written)")
        }
        return payloads
    }

    /// Whether `store.log` in `directory` is still this file, whole: not
    /// replaced, removed or cut short by something other than cofferd, nor
    /// written over in place (an older copy `cp`'d onto it keeps the inode,
    /// and with the zeros ahead of the frames often the size): the last
    /// frame's MAC must still end where cofferd wrote it.
    func isInPlace(directory: String) -> Bool {
        var info = stat()
        guard lstat(directory + "/" + Self.fileName, &info) == 0,
              UInt64(info.st_dev) == identity.device, UInt64(info.st_ino) == identity.inode, Int(info.st_size) >= end
        else { return false }
        var found = [UInt8](repeating: 0, count: lastMAC.count)
        let read = found.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, $0.count, off_t(end - lastMAC.count)) }
        return read == lastMAC.count && ConstantTime.equals(found, lastMAC)
    }

    // MARK: new logs

    /// A new log continuing `header`'s snapshot with `payloads` after it,
    /// written and synced as `store.log.next`; `install` puts it in place.
    static func prepare(
        in directory: String, header: StoreLogFormat.Header, carrying payloads: [[UInt8]] = [], key: MACKey
    ) throws -> StoreLogFile {
        let path = directory + "/" + nextFileName
        unlink(path)
        let fd = try OwnedFileDescriptor.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        let headerPayload = StoreLogFormat.encode(header)
        let headerMAC = try StoreLogFormat.headerMAC(headerPayload, key: key)
        var bytes: [UInt8] = []
        StoreLogFormat.frame(headerPayload, mac: headerMAC, into: &bytes)
        let log = try StoreLogFile(fd: fd, header: header, headerEnd: bytes.count, headerMAC: headerMAC)
        do {
            try log.writeAll(bytes, at: 0)
            log.allocated = bytes.count
            try log.append(payloads, key: key)
        } catch {
            unlink(path)
            throw error
        }
        return log
    }

    /// Renames a prepared `store.log.next` over `store.log`. The caller
    /// syncs the directory (after any other rename that goes with it).
    func install(in directory: String) throws {
        try syscall("rename") { rename(directory + "/" + Self.nextFileName, directory + "/" + Self.fileName) }
    }

    // MARK: reading

    /// What `store.log` held: the log, open for appends, and the entries it
    /// holds after its header, checked (chain, generations).
    struct Recovered {
        let log: StoreLogFile
        let entries: [StoreLogFormat.Entry]
        /// Bytes after the last frame that checks (a torn write, or
        /// frames that do not check), left out of `entries`.
        let droppedTail: Int
    }

    /// Reads `store.log` and checks its chain. Returns nil when there is no
    /// log. The file is not changed: what did not check is only counted
    /// (`droppedTail`), and `dropTail` cuts it once the caller accepts.
    static func open(
        in directory: String, fileName: String = fileName, keyFor: (String) -> MACKey?
    ) throws(StoreError) -> Recovered? {
        let path = directory + "/" + fileName
        let fd: OwnedFileDescriptor
        let bytes: [UInt8]
        do {
            fd = try .open(path, O_RDWR | O_NOFOLLOW)
        } catch let error as SyscallError where error.errno == ENOENT {
            return nil
        } catch {
            throw StoreError(.io, "cannot open the store log", underlying: "\(error)")
        }
        do {
            let info = try fd.status()
            guard info.st_mode & S_IFMT == S_IFREG else { throw StoreError(.permissions, "refusing the store log: it is not a regular file") }
            if let problem = secretFileProblem(info) { throw StoreError(.permissions, "refusing the store log: it \(problem)") }
            bytes = try fd.readAll()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot read the store log", underlying: "\(error)")
        }
        let frames = StoreLogFormat.frames(in: bytes).frames
        guard let first = frames.first else {
            throw StoreError(.tampered, "the store log has no header")
        }
        let headerPayload = Array(bytes[first.payload])
        let header = try StoreLogFormat.header(parsing: headerPayload)
        guard let key = keyFor(header.macKeyID) else {
            // Not a verdict on the log: the key may only not be loaded.
            throw StoreError(.notFound, "the store log is chained under key \(header.macKeyID.prefix(16)), which this keyring does not hold")
        }
        let headerMAC: [UInt8]
        do { headerMAC = try StoreLogFormat.headerMAC(headerPayload, key: key) } catch {
            throw StoreError(.io, "the store log's MAC could not be computed", underlying: "\(error)")
        }
        guard ConstantTime.equals(headerMAC, Array(bytes[first.mac])) else {
            throw StoreError(.tampered, "the store log's header does not match its MAC")
        }
        var entries: [StoreLogFormat.Entry] = []
        var previous = headerMAC
        var goodEnd = first.mac.upperBound
        var frameEnds: [Int] = []
        // Replay stops at the first frame that does not check: a write a
        // crash cut short, or an entry changed, removed or moved. What
        // follows it cannot be trusted either, and is dropped. Whether an
        // acknowledged commit went with it is for the caller to tell, from
        // store-generation (commits answer only once that is written).
        for (index, frame) in frames.enumerated().dropFirst() {
            let payload = Array(bytes[frame.payload])
            let mac: [UInt8]
            do { mac = try StoreLogFormat.entryMAC(payload, after: previous, key: key) } catch {
                throw StoreError(.io, "the store log's MAC could not be computed", underlying: "\(error)")
            }
            guard ConstantTime.equals(mac, Array(bytes[frame.mac])) else { break }
            let entry = try StoreLogFormat.entry(parsing: payload, formatVersion: header.formatVersion)
            guard entry.generation == header.baseGeneration + UInt64(index) else {
                throw StoreError(.tampered, "store log entry \(index) has generation \(entry.generation), out of sequence")
            }
            entries.append(entry)
            previous = mac
            goodEnd = frame.mac.upperBound
            frameEnds.append(goodEnd)
        }
        let log: StoreLogFile
        do {
            log = try StoreLogFile(fd: fd, header: header, headerEnd: first.mac.upperBound, headerMAC: headerMAC)
        } catch {
            throw StoreError(.io, "cannot read the store log", underlying: "\(error)")
        }
        for (entry, frameEnd) in zip(entries, frameEnds) {
            log.ends[entry.generation] = frameEnd
            log.lastGeneration = entry.generation
        }
        log.end = goodEnd
        log.lastMAC = previous
        // Zeros after the last frame are the room appends write into, not
        // a frame that failed.
        let dropped = bytes[goodEnd...].contains { $0 != 0 } ? bytes.count - goodEnd : 0
        return Recovered(log: log, entries: entries, droppedTail: dropped)
    }

    /// Cuts the file back to its last good frame (what `open` dropped).
    func dropTail() throws {
        try syscall("ftruncate") { ftruncate(fd.rawValue, off_t(end)) }
        try syscall("fdatasync") { fdatasync(fd.rawValue) }
        allocated = end
    }
}
