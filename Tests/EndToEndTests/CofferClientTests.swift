import CofferClient
import CofferTestSupport
import Foundation
import Testing

/// The Swift client library against a real cofferd, on coffer.sock.
/// cofferd starts and cofferctl runs off the cooperative pool
/// (AsyncTestSupport.swift).
@Suite struct CofferClientTests {
    func text(_ value: SecretValue) -> String? { value.text }

    @Test func getVerifyListAndDescribeAnswerAsTheProtocolSays() async throws {
        try await withDevDaemon { daemon in
            let password = uniqueValue("client")
            #expect(try await daemon.ctl(["put", "db/password", "--kind", "password"], stdin: password).status == 0)
            try await withClient(of: daemon) { coffer in
                let secret = try await coffer.get("db/password")
                #expect(secret.name == "db/password" && secret.version == 1 && secret.stage == "current" && secret.kind == "password")
                #expect(text(secret.value) == password)
                #expect("\(secret.value)" == "SecretValue(\(password.utf8.count) bytes)", "a value never prints")
                #expect(!String(describing: secret).contains(password))
                #expect(text(try await coffer.get("db/password", default: "other")) == password, "a default only for what is missing")

                #expect(try await coffer.verify("db/password", candidate: Array(password.utf8)))
                #expect(try await !coffer.verify("db/password", candidate: Array("wrong".utf8)))

                let listed = try await coffer.list(prefix: "db/")
                #expect(listed.map(\.name) == ["db/password"])
                #expect(listed.first?.protection == "sealed" && listed.first?.version == 1)
                let described = try await coffer.describe("db/password")
                #expect(described.name == "db/password" && described.kind == "password")
            }
        }
    }

    @Test func errorsCarryTheProtocolsCodeAndPrintNoMessage() async throws {
        try await withDevDaemon { daemon in
            try await withClient(of: daemon) { coffer in
                do throws(CofferClientError) {
                    _ = try await coffer.get("no/such/secret")
                    Issue.record("a missing secret was answered")
                } catch {
                    #expect(error.code == .notFound)
                    #expect(error.description == "CofferClientError(NOT_FOUND)")
                    #expect(error.debugDescription.contains("no/such/secret"))
                }
                let fallback = try await coffer.get("no/such/secret", default: "fallback")
                #expect(text(fallback) == "fallback")
                do throws(CofferClientError) {
                    _ = try await CofferClient.connect(to: daemon.directory.file("nothing.sock"))
                    Issue.record("connected to nothing")
                } catch {
                    #expect(error.code == .unreachable)
                }
            }
        }
    }

    /// Many requests at once on one connection: each gets its own answer.
    @Test func concurrentRequestsArePipelinedAndEachGetsItsOwnAnswer() async throws {
        try await withDevDaemon { daemon in
            let names = (0..<40).map { "app/s\($0)" }
            var values: [String: String] = [:]
            for name in names {
                let value = uniqueValue(name)
                values[name] = value
                #expect(try await daemon.ctl(["put", name], stdin: value).status == 0)
            }
            try await withClient(of: daemon) { coffer in
                let answers = try await withThrowingTaskGroup(of: (String, String?).self) { group in
                    for name in names + names {
                        group.addTask { (name, try await coffer.get(name).value.text) }
                    }
                    var out: [(String, String?)] = []
                    for try await answer in group { out.append(answer) }
                    return out
                }
                #expect(answers.count == 2 * names.count)
                #expect(answers.allSatisfy { values[$0.0] == $0.1 })
            }
        }
    }

    @Test func aWatchHearsARotationAsItHappens() async throws {
        try await withDevDaemon { daemon in
            #expect(try await daemon.ctl(["put", "app/token"], stdin: uniqueValue("one")).status == 0)
            try await withClient(of: daemon) { coffer in
                let changes = try await coffer.watch(["app/**"])
                // Requests still work on the watching connection.
                #expect(try await coffer.get("app/token").version == 1)
                let second = uniqueValue("two")
                #expect(try await daemon.ctl(["rotate", "app/token"], stdin: second).status == 0)
                let event = try await withDeadline(.seconds(30), "the rotation's event") {
                    var iterator = changes.makeAsyncIterator()
                    return try await iterator.next()
                }
                #expect(event == ChangeEvent(kind: .rotate, name: "app/token", version: 2, stage: "current"))
                #expect(text(try await coffer.get("app/token").value) == second)
            }
        }
    }
}

/// A client of `daemon`'s coffer.sock for `body`, closed when it ends.
func withClient<R: Sendable>(of daemon: DevDaemon, _ body: (CofferClient) async throws -> R) async throws -> R {
    let coffer = try await CofferClient.connect(to: daemon.serviceSocket)
    let result: Result<R, any Error>
    do { result = .success(try await body(coffer)) } catch { result = .failure(error) }
    await coffer.close()
    return try result.get()
}
