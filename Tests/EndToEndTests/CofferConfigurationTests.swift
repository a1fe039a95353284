import CofferClient
import CofferConfiguration
import CofferTestSupport
import Configuration
import Foundation
import Testing

/// CofferConfigProvider under a real ConfigReader, against a real cofferd.
@Suite struct CofferConfigurationTests {
    @Test func aConfigReaderReadsSecretsAsSecretValuesByKey() async throws {
        try await withDevDaemon { daemon in
            let password = uniqueValue("db"), key = uniqueValue("api")
            #expect(try await daemon.ctl(["put", "db/password"], stdin: password).status == 0)
            #expect(try await daemon.ctl(["put", "prod/api/key"], stdin: key).status == 0)
            #expect(try await daemon.ctl(["put", "login/hash", "--protection", "hashed"], stdin: "pw").status == 0)
            try await withClient(of: daemon) { client in
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
        }
    }

    @Test func aRotationReachesTheReadersWatchAtOnce() async throws {
        try await withDevDaemon { daemon in
            let first = uniqueValue("first"), second = uniqueValue("second")
            #expect(try await daemon.ctl(["put", "db/password"], stdin: first).status == 0)
            try await withClient(of: daemon) { client in
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
    }
}
