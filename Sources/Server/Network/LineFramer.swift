import CLibCrypto
import LockedMemory
#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into request lines (`\n`-terminated; a `\r` before
/// it is dropped; blank lines are skipped). Pure logic: the connection feeds
/// it bytes and takes frames.
///
/// A request may carry a secret, so every byte it copies out of is zeroed
/// behind it, and each line is handed on as `TransientBytes` (wiped when
/// released).
struct LineFramer {
    enum Frame {
        case line(TransientBytes)
        /// A line longer than the limit: answer FRAME_TOO_LARGE and close.
        case tooLarge
    }

    let maxLineBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0

    init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
    }

    var bufferedBytes: Int { buffer.count - start }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfWorthwhile()
        buffer.reserveWiping(bytes.count)
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil until more bytes arrive.
    mutating func next() -> Frame? {
        while true {
            guard let newline = firstNewline() else {
                if buffer.count - start > maxLineBytes { return tooLarge() }
                return nil
            }
            var end = newline
            if end > start, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let length = end - start
            if length > maxLineBytes { return tooLarge() }
            let line: TransientBytes? = length == 0 ? nil : buffer.withUnsafeBytes {
                TransientBytes(copying: UnsafeRawBufferPointer(rebasing: $0[start..<end]))
            }
            wipe(start..<(newline + 1))
            start = newline + 1
            scanned = start
            if let line { return .line(line) }
        }
    }

    /// Forgets everything buffered (the connection is closing).
    mutating func reset() {
        wipe(0..<buffer.count)
        buffer.removeAll()
        start = 0
        scanned = 0
    }

    private mutating func tooLarge() -> Frame {
        reset()
        return .tooLarge
    }

    private mutating func firstNewline() -> Int? {
        while scanned < buffer.count {
            if buffer[scanned] == UInt8(ascii: "\n") { return scanned }
            scanned += 1
        }
        return nil
    }

    private mutating func wipe(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        buffer.withUnsafeMutableBytes { raw in
            OPENSSL_cleanse(raw.baseAddress! + range.lowerBound, range.count)
        }
    }

    /// Drops consumed (already zeroed) bytes once they are most of the
    /// buffer; the bytes moved down are zeroed at their old place.
    private mutating func compactIfWorthwhile() {
        guard start > 0, start >= buffer.count / 2 else { return }
        let remaining = buffer.count - start
        buffer.withUnsafeMutableBytes { raw in
            if remaining > 0 { memmove(raw.baseAddress!, raw.baseAddress! + start, remaining) }
            OPENSSL_cleanse(raw.baseAddress! + remaining, raw.count - remaining)
        }
        buffer.removeLast(buffer.count - remaining)
        scanned -= start
        start = 0
    }
}
