import Foundation
import Testing

/// Another process's memory as root reads it (/proc/PID/smaps for the
/// mappings, /proc/PID/mem for the bytes): how the tests look for plaintext
/// a running cofferd left behind, freed or not.
struct ProcessMemory {
    struct Mapping {
        let start: UInt64
        let end: UInt64
        let permissions: String
        let name: String
        /// VmFlags from smaps: `lo` is mlock'd (OpenSSL's secure heap),
        /// `dd` excluded from core dumps.
        let flags: Set<String>

        var isLocked: Bool { flags.contains("lo") }
        var description: String { "\(String(start, radix: 16))-\(String(end, radix: 16)) \(permissions) \(name)" }
    }

    struct Hit: CustomStringConvertible {
        let needle: String
        let mapping: Mapping
        let address: UInt64
        var description: String { "\(needle) at 0x\(String(address, radix: 16)) in \(mapping.description)" }
    }

    let pid: Int32

    func mappings() throws -> [Mapping] {
        // Read to the end by hand: /proc files have no size to go by.
        let fd = open("/proc/\(pid)/smaps", O_RDONLY)
        try #require(fd >= 0, "cannot open /proc/\(pid)/smaps: errno \(errno)")
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: data, as: UTF8.self)
        var out: [Mapping] = []
        var header: (UInt64, UInt64, String, String)?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("VmFlags:"), let (start, end, permissions, name) = header {
                let flags = Set(line.dropFirst("VmFlags:".count).split(separator: " ").map(String.init))
                out.append(Mapping(start: start, end: end, permissions: permissions, name: name, flags: flags))
                header = nil
                continue
            }
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            let range = fields.first?.split(separator: "-") ?? []
            if range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
               fields.count >= 2, fields[1].count == 4 {
                let name = fields.count == 6 ? String(fields[5]).trimmingCharacters(in: .whitespaces) : ""
                header = (start, end, String(fields[1]), name)
            }
        }
        return out
    }

    /// Every place outside locked mappings where one of `needles` occurs.
    func unlockedCopies(of needles: [String: [UInt8]]) throws -> [Hit] {
        let mem = open("/proc/\(pid)/mem", O_RDONLY)
        try #require(mem >= 0, "cannot open /proc/\(pid)/mem: errno \(errno)")
        defer { close(mem) }
        var hits: [Hit] = []
        for mapping in try mappings() where mapping.permissions.hasPrefix("r") && !mapping.isLocked {
            guard mapping.name != "[vvar]", mapping.name != "[vsyscall]", mapping.name != "[vvar_vclock]" else { continue }
            let size = Int(mapping.end - mapping.start)
            var bytes = [UInt8](repeating: 0, count: size)
            let read = bytes.withUnsafeMutableBytes { pread(mem, $0.baseAddress, size, off_t(Int64(bitPattern: mapping.start))) }
            guard read > 0 else { continue }
            bytes.withUnsafeBytes { haystack in
                for (label, needle) in needles {
                    var offset = 0
                    while offset + needle.count <= read {
                        // memchr for the first byte, then compare the rest
                        // (memmem is a GNU extension Swift does not import).
                        guard let first = memchr(haystack.baseAddress! + offset, Int32(needle[0]), read - offset) else { break }
                        let at = haystack.baseAddress!.distance(to: UnsafeRawPointer(first))
                        if at + needle.count <= read,
                           needle.withUnsafeBytes({ memcmp(haystack.baseAddress! + at, $0.baseAddress!, needle.count) }) == 0 {
                            hits.append(Hit(needle: label, mapping: mapping, address: mapping.start + UInt64(at)))
                        }
                        offset = at + 1
                    }
                }
            }
        }
        return hits
    }
}
