import CLibCrypto
import JSON
import LockedMemory
import Model
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A connection to cofferd's service socket, for Swift services
/// (docs/clients.md).
///
/// Requests may be made from many tasks at once: they are pipelined on the
/// one connection, and cofferd answers them in order. Values come back as
/// `SecretValue`s, zeroed when released and never printed.
///
/// ```swift
/// let coffer = try await CofferClient.connect()
/// let password = try await coffer.get("db/password").value
/// ```
public final class CofferClient: Sendable {
    public static let defaultSocket = "/run/coffer/coffer.sock"
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects to `path`, else `$COFFER_SOCKET`, else /run/coffer/coffer.sock.
    public static func connect(to path: String? = nil) async throws(CofferClientError) -> CofferClient {
        let socket = path ?? getenv("COFFER_SOCKET").map { String(cString: $0) } ?? defaultSocket
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(AnswerRouter())
                    }
                }
                .connect(unixDomainSocketPath: socket).get()
            return CofferClient(channel: channel)
        } catch {
            throw CofferClientError(.unreachable, "cannot connect to \(socket): \(error)")
        }
    }

    /// Closes the connection; a watch's stream ends.
    public func close() async {
        try? await channel.close()
    }

    // MARK: operations (docs/protocol.md, "Service operations")

    /// The current version of `name`, or the one `version` or `stage` names.
    public func get(_ name: String, version: UInt64? = nil, stage: Stage? = nil) async throws(CofferClientError) -> Secret {
        let line = try await call { w in
            w.key("op"); w.string("get")
            w.key("name"); w.string(name)
            if let version { w.key("version"); w.integer(version) }
            if let stage { w.key("stage"); w.string(stage.rawValue) }
        }
        return try Answer.read(line) { answer throws(CofferClientError) in try Secret(answer) }
    }

    /// The value of `name`, or `fallback` when no such secret exists
    /// (the protocol's `default`: cofferd answers, and audits, either).
    public func get(_ name: String, default fallback: String) async throws(CofferClientError) -> SecretValue {
        let line = try await call { w in
            w.key("op"); w.string("get")
            w.key("name"); w.string(name)
            w.key("default"); w.string(fallback)
        }
        return try Answer.read(line) { answer throws(CofferClientError) in try answer.value() }
    }

    /// Whether `candidate` is the value of `name` (the current version, or
    /// the previous one within its grace period), without revealing it.
    public func verify(_ name: String, candidate: some Collection<UInt8>) async throws(CofferClientError) -> Bool {
        let bytes = Array(candidate)
        defer { var copy = bytes; copy.wipe() }
        let line = try await call { w in
            w.key("op"); w.string("verify")
            w.key("name"); w.string(name)
            w.key("value_base64")
            bytes.withUnsafeBytes { raw in
                w.quoted(count: Base64.encodedCount(raw.count)) { emit in Base64.encode(raw, emit: emit) }
            }
        }
        return try Answer.read(line) { answer throws(CofferClientError) in answer.bool("match") ?? false }
    }

    /// The secrets this caller may list, by name; never values.
    public func list(prefix: String? = nil) async throws(CofferClientError) -> [SecretInfo] {
        let line = try await call { w in
            w.key("op"); w.string("list")
            if let prefix { w.key("prefix"); w.string(prefix) }
        }
        return try Answer.read(line) { answer throws(CofferClientError) in
            try answer.objects("secrets").map { (item) throws(CofferClientError) in try SecretInfo(item) }
        }
    }

    /// One secret's metadata; never its value.
    public func describe(_ name: String) async throws(CofferClientError) -> SecretInfo {
        let line = try await call { w in
            w.key("op"); w.string("describe")
            w.key("name"); w.string(name)
        }
        return try Answer.read(line) { answer throws(CofferClientError) in try SecretInfo(answer) }
    }

    /// Changes to the names or globs given, as they happen. One watch per
    /// connection (a second is CONFLICT); the stream ends when the
    /// connection does.
    public func watch(_ names: [String]) async throws(CofferClientError) -> AsyncThrowingStream<ChangeEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<ChangeEvent, any Error>.makeStream()
        let channel = self.channel
        do {
            try await channel.eventLoop.submit {
                let router = try channel.pipeline.syncOperations.handler(type: AnswerRouter.self)
                router.events = { line in
                    if let event = try? Answer.event(line) { continuation.yield(event) }
                }
                router.closed = { error in continuation.finish(throwing: error) }
            }.get()
        } catch {
            throw CofferClientError(.unreachable, "the connection is closed")
        }
        let line = try await call { w in
            w.key("op"); w.string("watch")
            w.key("names"); w.open("["); for name in names { w.element(); w.string(name) }; w.close("]")
        }
        do {
            try Answer.read(line) { _ throws(CofferClientError) in }
        } catch {
            // Refused (a second watch, a name the policy denies): lines are
            // answers again, and the stream nobody will get is ended.
            continuation.finish(throwing: error)
            channel.eventLoop.execute {
                guard let router = try? channel.pipeline.syncOperations.handler(type: AnswerRouter.self) else { return }
                router.events = nil
                router.closed = nil
            }
            throw error
        }
        return stream
    }

    // MARK: the wire

    /// Sends one request object (`{"id":0,` then what `members` writes) and
    /// waits for its answer line. The request's bytes are zeroed once
    /// written: a verify candidate is in them.
    private func call(_ members: (inout JSONWriter) -> Void) async throws(CofferClientError) -> ByteBuffer {
        var w = JSONWriter(capacity: 128, wiping: .clientRequest)
        w.open("{")
        w.key("id"); w.integer(0)
        members(&w)
        w.close("}")
        w.raw("\n")
        var buffer = channel.allocator.buffer(capacity: w.bytes.count)
        buffer.writeBytes(w.bytes)
        w.wipe()
        let answer = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let written = channel.eventLoop.makePromise(of: Void.self)
        let sent = buffer
        written.futureResult.whenComplete { result in
            sent.zeroInPlace()
            // A write to a closed channel never reaches AnswerRouter, so
            // nothing else would ever answer this request. (A promise
            // already completed ignores this.)
            if case .failure(let error) = result {
                answer.fail(error as? CofferClientError ?? CofferClientError(.unreachable, "cannot send: \(error)"))
            }
        }
        channel.writeAndFlush((buffer, answer), promise: written)
        do {
            return try await answer.futureResult.get()
        } catch let error as CofferClientError {
            throw error
        } catch {
            throw CofferClientError(.unreachable, "\(error)")
        }
    }
}

/// The stage a get may ask for.
public enum Stage: String, Sendable {
    case current, previous, pending
}

extension JSONWriter.Wiping {
    /// A request may carry a candidate: grown by moving, the old storage
    /// zeroed.
    static let clientRequest = JSONWriter.Wiping(reserve: { $0.reserveWiping($1) }, erase: { $0.wipe() })
}

extension ByteBuffer {
    /// Zeroes the readable bytes where they are, in the storage every copy
    /// shares (NIO's, once written).
    func zeroInPlace() {
        withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            OPENSSL_cleanse(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}
