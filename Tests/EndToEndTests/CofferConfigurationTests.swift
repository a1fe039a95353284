import CofferClient
import CofferConfiguration
import CofferTestSupport
import Configuration
import Foundation
import Testing

/// CofferConfigProvider under a real ConfigReader, against a real cofferd.
///
/// Off for now, for the reason CofferClientTests gives.
@Suite(.disabled("blocks the cooperative pool; see CofferClientTests"))
struct CofferConfigurationTests {
    @Test func aConfigReaderReadsSecretsAsSecretValuesByKey() async throws {
        let daemon = try DevDaemon()
        let password = uniqueValue("db"), key = uniqueValue("api")
        #expect(try daemon.ctl(["put", "db/password"], stdin: password).status == 0)
        #expect(try daemon.ctl(["put", "prod/api/key"], stdin: key).status == 0)
        #expect(try daemon.ctl(["put", "login/hash", "--protection", "hashed"], stdin: "pw").status == 0)
        let client = try await CofferClient.connect(to: daemon.serviceSocket)
        defer { Task { await client.close() } }
        let provider = try await CofferConfigProvider.load(client: client, mapping: ["api.key": "prod/api/key"])
        let config = ConfigReader(provider: provider)
        #expect(config.string(forKey: "db.password", isSecret: true) == password)
        #expect(config.string(forKey: "api.key", isSecret: true) == key, "an explicit mapping")
        #expect(config.string(forKey: "prod.api.key", isSecret: true) == key, "and the default key too")
        #expect(config.string(forKey: "login.hash") == nil, "a verify-only secret has no value to give")
        // Marked secret by the provider itself, whatever the caller says.
        let found = try provider.value(forKey: AbsoluteConfigKey(["db", "password"]), type: .string)
        #expect(found.value?.isSecret == true)
        #expect(!"\(found)".contains(password), "printed redacted")
    }

    @Test func aRotationReachesTheReadersWatchAtOnce() async throws {
        let daemon = try DevDaemon()
        let first = uniqueValue("first"), second = uniqueValue("second")
        #expect(try daemon.ctl(["put", "db/password"], stdin: first).status == 0)
        let client = try await CofferClient.connect(to: daemon.serviceSocket)
        defer { Task { await client.close() } }
        let provider = try await CofferConfigProvider.load(client: client)
        let following = Task { try await provider.run() }
        defer { following.cancel() }
        let config = ConfigReader(provider: provider)
        let devPath = daemon.devPath
        let seen = try await withDeadline(.seconds(30), "the rotation to reach the reader's watch") {
          try await config.watchString(forKey: "db.password", isSecret: true) { updates in
            var values: [String?] = []
            for await value in updates {
                values.append(value)
                if values.count == 1 {
                    // Heard by run()'s watch, or read by its catch-up
                    // read if it comes before the watch is in place.
                    Thread.detachNewThread {
                        _ = try? runProgram(binaryPath("cofferctl"), ["rotate", "--dev", devPath, "db/password"],
                                            stdin: Data(second.utf8))
                    }
                }
                if value == second { break }
            }
            return values
          }
        }
        #expect(seen.first == first)
        #expect(seen.last == second)
    }
}

struct DeadlinePassed: Error, CustomStringConvertible {
    let what: String
    var description: String { "waited too long for \(what)" }
}

/// `body`, or DeadlinePassed once `limit` has gone by.
func withDeadline<R: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
    try await withThrowingTaskGroup(of: R.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DeadlinePassed(what: what)
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}
