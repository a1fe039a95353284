// swift-tools-version: 6.2
import PackageDescription

// One module per piece of the design, one job each (README.md, "Layout").
// The three C library targets hold module maps only; CCofferShims holds the few
// prefixed C wrappers Swift cannot import directly (struct ucred, macros, variadics).
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "coffer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cofferd", targets: ["cofferd"]),
        .executable(name: "cofferctl", targets: ["cofferctl"]),
        .library(name: "CofferClient", targets: ["CofferClient"]),
        .library(name: "CofferConfiguration", targets: ["CofferConfiguration"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // System libraries from Debian: module maps only.
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLibSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(
            name: "CCofferShims",
            dependencies: ["CLibCrypto"],
            cSettings: [.define("_GNU_SOURCE")]
        ),

        .target(name: "Syscalls", dependencies: ["CCofferShims"], swiftSettings: strict),
        .target(name: "LockedMemory", dependencies: ["CLibCrypto", "CCofferShims", "Syscalls"], swiftSettings: strict),
        .target(name: "Keyring", dependencies: ["CLibCrypto", "LockedMemory", "Syscalls", "Model"], swiftSettings: strict),
        .target(name: "Seal", dependencies: ["CLibCrypto", "CCofferShims", "LockedMemory", "Keyring", "Model"], swiftSettings: strict),
        // Plain values and the policy: no C library, no crypto.
        .target(name: "Model", swiftSettings: strict),
        .target(name: "JSON", swiftSettings: strict),
        .target(name: "FileStore", dependencies: ["Model", "Seal", "Keyring", "Syscalls", "JSON"], swiftSettings: strict),
        .target(name: "Audit", dependencies: ["CLibSystemd", "Model", "Syscalls"], swiftSettings: strict),
        .target(name: "Mirror", dependencies: ["CLibPQ", "CCofferShims", "Model", "Seal", "Keyring", "LockedMemory", "FileStore", "Syscalls"], swiftSettings: strict),
        // The application core: the use cases, with no sockets and no NIO.
        .target(
            name: "CofferCore",
            dependencies: ["Model", "Seal", "Keyring", "LockedMemory", "FileStore", "Audit", "Syscalls", "Mirror"],
            swiftSettings: strict
        ),
        .target(
            name: "Server",
            dependencies: [
                "CofferCore", "CCofferShims", "CLibCrypto", "Model", "Seal", "Keyring", "LockedMemory", "FileStore", "Audit", "Syscalls", "JSON", "Mirror",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cofferd",
            dependencies: [
                "CLibSystemd", "CofferCore", "Server", "Keyring", "LockedMemory", "FileStore", "Audit", "Model", "Seal", "Syscalls", "Mirror",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The Swift client library (docs/clients.md).
        .target(
            name: "CofferClient",
            dependencies: [
                "JSON", "Model", "LockedMemory", "CLibCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Coffer's secrets for swift-configuration's ConfigReader.
        .target(
            name: "CofferConfiguration",
            dependencies: ["CofferClient", .product(name: "Configuration", package: "swift-configuration")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cofferctl",
            dependencies: [
                "Syscalls", "Model", "JSON", "LockedMemory", "CCofferShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // scripts/bench: figures for the speed goals (docs/benchmarks.md).
        .executableTarget(
            name: "coffer-bench",
            dependencies: [
                "FileStore", "Seal", "Keyring", "LockedMemory", "Model", "Syscalls", "CLibSystemd", "Mirror",
                // The echo baseline on NIO: what the event loop costs before cofferd does any work.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // Shared by the test targets only: temp directories, fixed keys, a core over a temp store.
        .target(
            name: "CofferTestSupport",
            dependencies: ["LockedMemory", "Keyring", "Model", "Seal", "FileStore", "Audit", "CofferCore", "Syscalls", "CCofferShims"],
            path: "Tests/CofferTestSupport"
        ),
        .testTarget(name: "SystemLibrariesTests", dependencies: ["CLibCrypto", "CLibPQ", "CLibSystemd", "CCofferShims"]),
        .testTarget(name: "SyscallsTests", dependencies: ["Syscalls", "CofferTestSupport"]),
        .testTarget(name: "LockedMemoryTests", dependencies: ["LockedMemory", "CLibCrypto", "CofferTestSupport"]),
        .testTarget(name: "KeyringTests", dependencies: ["Keyring", "LockedMemory", "Model", "CofferTestSupport"]),
        .testTarget(name: "SealTests", dependencies: ["Seal", "Keyring", "LockedMemory", "Model", "CofferTestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "FileStoreTests", dependencies: ["FileStore", "Model", "Seal", "Keyring", "LockedMemory", "CofferTestSupport", "CLibCrypto"]),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "Model"]),
        .testTarget(name: "MirrorTests", dependencies: ["Mirror", "Model", "FileStore", "Seal", "Keyring", "CofferTestSupport"]),
        .testTarget(name: "CofferCoreTests", dependencies: ["CofferCore", "Model", "Seal", "Keyring", "LockedMemory", "FileStore", "Audit", "CofferTestSupport"]),
        .testTarget(
            name: "ServerTests",
            dependencies: ["Server", "CofferCore", "Model", "Seal", "Keyring", "LockedMemory", "FileStore", "Audit", "CofferTestSupport",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio")]
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["CofferTestSupport", "Keyring", "LockedMemory", "CofferClient", "CofferConfiguration",
            .product(name: "Configuration", package: "swift-configuration")]),
    ]
)

// The libFuzzer target (scripts/fuzz) exists only when COFFER_FUZZ is set:
// without -sanitize=fuzzer it has no main and would break `swift build`.
if Context.environment["COFFER_FUZZ"] != nil {
    package.targets.append(.executableTarget(
        name: "RequestFuzzer",
        dependencies: [
            "Server", "CofferCore", "Model", "Seal", "Keyring", "LockedMemory", "FileStore", "Audit",
            .product(name: "Logging", package: "swift-log"),
        ],
        path: "Fuzz/RequestFuzzer"
    ))
}
