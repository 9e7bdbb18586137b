// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Portcullis",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "portcullis", targets: ["portcullis"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // Prometheus exposition (depends only on swift-atomics and swift-metrics' CoreMetrics: no SwiftNIO).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries, each wrapped once.
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .systemLibrary(name: "CNFTables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // libpq, loaded with dlopen when [fleet] is configured (its header from libpq-dev at build time).
        .target(name: "CLibPQ"),
        // Linux system calls Swift's Glibc module cannot express (setns, gettid, the nf_tables netlink monitor).
        .target(name: "CNetlink"),

        // Pure stages.
        .target(name: "Core"),
        .target(name: "Configuration", dependencies: ["Core"]),
        .target(name: "Filter", dependencies: ["CPCRE2", "Configuration", "Core"]),
        .target(name: "Jail", dependencies: ["Core"]),

        // I/O stages.
        .target(name: "Firewall", dependencies: ["CNFTables", "CNetlink", "Configuration", "Core"]),
        .target(name: "Store", dependencies: ["CSQLite", "Core"]),
        // Host firewall policy: firewall.conf → typed policy → nft text (pure); imports; the exposure audit's logic.
        .target(name: "Policy", dependencies: ["Configuration", "Core", "Firewall"]),
        // The policy in the kernel: listing, scratch-namespace check, apply with revert, listening sockets.
        .target(name: "HostFirewall", dependencies: ["CNetlink", "Core", "Firewall", "Policy"]),
        .target(name: "Control", dependencies: ["Core"]),
        .target(name: "LogSource", dependencies: ["Core", "CSystemd"]),
        // Prometheus metrics: the registry and a minimal HTTP responder for GET /metrics.
        .target(
            name: "MetricsExport", dependencies: ["Core", .product(name: "Prometheus", package: "swift-prometheus")]),
        // Fleet sharing through PostgreSQL (libpq, on a dedicated thread).
        .target(name: "Fleet", dependencies: ["CLibPQ", "Core"]),
        .target(
            name: "Daemon",
            dependencies: [
                "Core", "Configuration", "Filter", "Jail", "Firewall", "Store", "Control", "LogSource", "CNetlink",
                "Fleet",
                "MetricsExport", "Policy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "portcullis",
            dependencies: [
                "Core", "Configuration", "Filter", "Jail", "Daemon", "Control", "LogSource", "Firewall", "Policy",
                "HostFirewall",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Sample-suite harness: checks `# failJSON:` annotated logs against filters.
        .executableTarget(name: "portcullis-samples", dependencies: ["Core", "Configuration", "Filter"]),

        // Child process for StoreTests' crash-durability test.
        .executableTarget(name: "portcullis-store-probe", dependencies: ["Store", "Core"], path: "Tests/StoreProbe"),

        // Firewall benchmark (run by bench/firewall.sh inside a namespace).
        .executableTarget(
            name: "portcullis-firewall-bench", dependencies: ["Firewall", "Core"], path: "bench/firewall-bench"),
        // Filter engine benchmark (run by bench/filter.sh).
        .executableTarget(
            name: "portcullis-filter-bench", dependencies: ["Filter", "Configuration"], path: "bench/filter-bench"),
        // Date detection benchmark (run by bench/dates.sh).
        .executableTarget(name: "portcullis-date-bench", dependencies: ["Filter"], path: "bench/date-bench"),

        // Fuzz targets (FuzzTargets) and their driver: scripts/fuzz.sh builds portcullis-fuzz with libFuzzer
        // into .build-fuzz (flags on its command line); the normal build replays inputs through the same code.
        .target(name: "FuzzTargets", dependencies: ["Configuration", "Control", "Core", "Daemon", "Filter"]),
        .executableTarget(name: "portcullis-fuzz", dependencies: ["FuzzTargets"], path: "fuzz/driver"),

        .target(name: "PortcullisTestKit", dependencies: ["Jail", "Firewall"]),

        .testTarget(name: "CoreTests", dependencies: ["Core", "PortcullisTestKit"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "PortcullisTestKit"]),
        .testTarget(name: "FilterTests", dependencies: ["Filter", "Configuration", "PortcullisTestKit"]),
        .testTarget(name: "JailTests", dependencies: ["Jail", "Core"]),
        .testTarget(name: "FleetTests", dependencies: ["Fleet", "Core"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "Configuration", "Core", "Firewall"]),
        .testTarget(name: "FirewallTests", dependencies: ["Firewall", "PortcullisTestKit"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "portcullis-store-probe", "PortcullisTestKit"]),
        .testTarget(name: "ControlTests", dependencies: ["Control", "Core", "PortcullisTestKit"]),
        .testTarget(name: "LogSourceTests", dependencies: ["LogSource", "PortcullisTestKit"]),
        .testTarget(name: "MetricsExportTests", dependencies: ["MetricsExport", "Core", "PortcullisTestKit"]),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "Daemon", "PortcullisTestKit", "Configuration", "Filter", "Core",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "CLITests", dependencies: ["PortcullisTestKit"]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "RealDaemonTests", dependencies: ["Configuration", "Filter", "Firewall", "Core"]),
    ],
    swiftLanguageModes: [.v6]
)
