import JSON
import LockedMemory
import Model

extension JSONWriter {
    /// A writer for answers: they may carry a value, so the buffer grows
    /// only through `reserveWiping` and is wiped after the write.
    static func answer(capacity: Int = 256) -> JSONWriter {
        JSONWriter(capacity: capacity, wiping: .lockedMemory)
    }

    /// Base64 of `data`, quoted, straight into the buffer.
    mutating func base64(_ data: UnsafeRawBufferPointer) {
        quoted(count: Base64.encodedCount(data.count)) { emit in Base64.encode(data, emit: emit) }
    }
}

extension JSONWriter.Wiping {
    /// LockedMemory's: old storage zeroed (OPENSSL_cleanse) before it goes.
    static let lockedMemory = JSONWriter.Wiping(reserve: { $0.reserveWiping($1) }, erase: { $0.wipe() })
}
