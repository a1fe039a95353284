import Audit
import CofferCore
import Dispatch
import FileStore
import Foundation
import Keyring
import LockedMemory
import Logging
import Model
import Seal
import Server

/// The fuzz callback (scripts/fuzz; main.swift starts libFuzzer): one input is one request line, answered
/// by the real dispatcher over a real store on tmpfs. Besides crashes and
/// sanitizer reports, it stops on a broken invariant:
/// - every answer is exactly one JSON object line with a boolean "ok";
/// - a caller with no grant (uid 65534 on coffer.sock) never sees the
///   seeded secret's value, whatever it sends.
/// The first input byte picks the caller: even, that stranger; odd, the
/// owner on admin.sock (so writes and deletes are fuzzed too).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let fixture = FuzzFixture.shared
    let asOwner = data[0] & 1 == 1
    let line = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let answer = fixture.answer(line, peer: asOwner ? FuzzFixture.owner : FuzzFixture.stranger,
                                listener: asOwner ? .admin : .service)
    guard answer.last == UInt8(ascii: "\n"), answer.dropLast().firstIndex(of: UInt8(ascii: "\n")) == nil,
          let object = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any],
          object["ok"] is Bool
    else { fatalError("not one JSON object line with ok: \(String(decoding: answer, as: UTF8.self))") }
    if !asOwner, answer.firstRange(of: FuzzFixture.seededValue) != nil {
        fatalError("the seeded value reached a caller with no grant")
    }
    return 0
}

final class FuzzFixture: @unchecked Sendable {
    static let owner = PeerIdentity(uid: 1000, gid: 1000, pid: 100)
    static let stranger = PeerIdentity(uid: 65534, gid: 65534, pid: 101)
    static let seededValue = Array("fuzz-seeded-value-7f3a9c".utf8)
    static let shared = FuzzFixture()

    let dispatcher: RequestDispatcher

    private init() {
        do {
            try SecureHeap.initialize()
            let directory = "/dev/shm/coffer-fuzz-\(getpid())"
            mkdir(directory, 0o700)
            let keyring = Keyring(current: try MasterKey.generate())
            let services = CofferServices(
                store: try SecretStore.open(
                    directory: directory, authenticator: try StoreAuthenticator(keyring: keyring, sealer: RecordSealer())),
                keyring: keyring,
                sealer: RecordSealer(),
                policy: AccessPolicy(superusers: [Self.owner.uid]),
                audit: SilentAuditSink(),
                mode: .development,
                blockingPool: ThreadPoolWork()
            )
            var logger = Logger(label: "fuzz")
            logger.logLevel = .critical
            dispatcher = RequestDispatcher(services: services, logger: logger)
        } catch {
            fatalError("fuzz fixture: \(error)")
        }
        let seed = #"{"id":0,"op":"put","name":"fuzz/seeded","value":""# + String(decoding: Self.seededValue, as: UTF8.self) + #""}"#
        _ = answer(Array(seed.utf8), peer: Self.owner, listener: .admin)
    }

    func answer(_ line: [UInt8], peer: PeerIdentity, listener: Listener) -> [UInt8] {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let dispatcher = self.dispatcher
        Task {
            result.bytes = await dispatcher.answer(line: line, peer: peer, listener: listener)
            done.signal()
        }
        done.wait()
        return result.bytes
    }
}

final class ResultBox: @unchecked Sendable {
    var bytes: [UInt8] = []
}

struct SilentAuditSink: AuditSink {
    var name: String { "fuzz" }
    func record(_ event: AuditEvent) throws(AuditError) {}
}
