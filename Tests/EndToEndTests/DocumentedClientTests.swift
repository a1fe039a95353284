import CofferTestSupport
import Foundation
import Synchronization
import Testing

/// Every example of docs/clients.md, read out of the page and run against a
/// real cofferd, with $COFFER_SOCKET naming the test instance's socket.
@Suite struct DocumentedClientTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func example(_ section: String, _ index: Int = 0) throws -> String {
        let blocks = try DocumentPage("docs/clients.md").section(section).codeBlocks
        try #require(blocks.count > index, "docs/clients.md, '\(section)': no example \(index + 1)")
        return blocks[index].joined(separator: "\n")
    }

    /// cofferd with db/password and tls/key, and the environment the examples
    /// run in.
    func instance() throws -> (DevDaemon, [String: String], password: String) {
        let daemon = try DevDaemon()
        let password = uniqueValue("documented")
        #expect(try daemon.ctl(["put", "db/password"], stdin: password).status == 0)
        #expect(try daemon.ctl(["put", "tls/key"], stdin: "-----KEY-----").status == 0)
        let tools = (binaryPath("cofferctl") as NSString).deletingLastPathComponent
        return (daemon, ["COFFER_SOCKET": daemon.serviceSocket, "PATH": "\(tools):/usr/bin:/bin"], password)
    }

    func shell(_ script: String, _ environment: [String: String]) throws -> ProgramResult {
        try runProgram("/bin/sh", ["-c", script], environment: environment, timeout: .seconds(60))
    }

    @Test func theLoadCredentialUnitIsOneSystemdAccepts() throws {
        let directory = try TemporaryDirectory("clients-unit")
        let unit = directory.file("documented-client.service")
        try example("systemd: LoadCredential=").write(toFile: unit, atomically: true, encoding: .utf8)
        let result = try runProgram("/usr/bin/systemd-analyze", ["verify", unit])
        #expect(!result.stderr.contains(unit), "systemd-analyze on the documented unit: \(result.stderr)")
        // Started for real, the credential read from cofferd, under a booted
        // systemd: BootedSystemTests.theOperatorsPathFromThePackageOnABootedSystem.
    }

    @Test func theExecExampleRuns() throws {
        let (daemon, environment, password) = try instance()
        let result = try withExtendedLifetime(daemon) {
            try shell(try example("Programs that know nothing of Coffer: cofferctl exec"), environment)
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText == "password: \(password.count) characters; key file: 13 bytes\n")
    }

    @Test func theWatchExampleEndsAfterTheNextChange() throws {
        let (daemon, environment, _) = try instance()
        let devPath = daemon.devPath
        let done = Atomic<Bool>(false)
        // A rotation every so often until the example has heard one: the
        // watch is in place only once cofferctl has connected.
        let rotations = Thread {
            for _ in 0..<300 where !done.load(ordering: .relaxed) {
                _ = try? runProgram(binaryPath("cofferctl"), ["rotate", "--dev", devPath, "db/password"], stdin: Data("new".utf8))
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        rotations.start()
        let result = try withExtendedLifetime(daemon) {
            try shell(try example("Programs that know nothing of Coffer: cofferctl exec", 1), environment)
        }
        done.store(true, ordering: .relaxed)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText.hasPrefix("rotate db/password "), "\(result.stdoutText)")
    }

    @Test func thePythonExampleRuns() throws {
        let (daemon, environment, password) = try instance()
        let script = daemon.directory.file("client.py")
        try example("Python, with the standard library only").write(toFile: script, atomically: true, encoding: .utf8)
        let result = try withExtendedLifetime(daemon) { try runProgram("/usr/bin/python3", [script], environment: environment) }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText == "db/password: version 1, \(password.count) characters\n")
    }

    @Test func theShellExampleRuns() throws {
        let (daemon, environment, _) = try instance()
        let result = try withExtendedLifetime(daemon) { try shell(try example("Shell, with socat"), environment) }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText == "ok\n")
    }

    /// The two Swift examples as the executables of a package of their own,
    /// which depends on this one for its products, as a service's would.
    @Test func theSwiftExamplesBuildAsAnotherPackageAndRun() throws {
        let (daemon, environment, password) = try instance()
        let package = try TemporaryDirectory("clients-package")
        // A path dependency's identity is its directory's name.
        let coffer = (Self.repository as NSString).lastPathComponent.lowercased()
        let manifest = """
            // swift-tools-version: 6.2
            import PackageDescription

            let package = Package(
                name: "coffer-client-examples",
                platforms: [.macOS(.v15)],
                dependencies: [
                    .package(path: "\(Self.repository)"),
                    .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
                ],
                targets: [
                    .executableTarget(name: "client-example", dependencies: [.product(name: "CofferClient", package: "\(coffer)")]),
                    .executableTarget(name: "config-example", dependencies: [
                        .product(name: "CofferClient", package: "\(coffer)"),
                        .product(name: "CofferConfiguration", package: "\(coffer)"),
                        .product(name: "Configuration", package: "swift-configuration"),
                    ]),
                ]
            )
            """
        try manifest.write(toFile: package.file("Package.swift"), atomically: true, encoding: .utf8)
        for (target, section) in [("client-example", "Swift: CofferClient"), ("config-example", "Swift: CofferConfiguration")] {
            let directory = package.file("Sources/\(target)")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try example(section).write(toFile: directory + "/main.swift", atomically: true, encoding: .utf8)
        }
        let build = try runProgram("/opt/swift/usr/bin/swift", ["build", "--package-path", package.path],
                                   environment: ["PATH": "/opt/swift/usr/bin:/usr/bin:/bin", "HOME": NSHomeDirectory()],
                                   timeout: .seconds(1200))
        try #require(build.status == 0, "the examples' package did not build:\n\(build.stdoutText.suffix(4000))\n\(build.stderr.suffix(4000))")
        let bin = package.file(".build/debug")

        let (client, config) = try withExtendedLifetime(daemon) {
            (try runProgram(bin + "/client-example", [], environment: environment),
             try runProgram(bin + "/config-example", [], environment: environment))
        }
        #expect(client.status == 0, "\(client.stderr)")
        #expect(client.stdoutText == """
            db/password: \(password.utf8.count) bytes
            verify: false
            db/password version 1
            no/such/secret: not found

            """)
        #expect(config.status == 0, "\(config.stderr)")
        #expect(config.stdoutText == "database.password: \(password.count) characters\n")
    }
}
