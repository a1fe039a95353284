import Audit
import CLibSystemd
import CofferCore
import FileStore
import Keyring
import LockedMemory
import Logging
import Mirror
import Model
import NIOPosix
import Seal
import Server
import Syscalls
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// Wires the pieces together in dependency order: key, store, audit,
/// dispatcher, listeners; then runs until SIGTERM/SIGINT and shuts down
/// gracefully (connections drain; socket files are removed).
struct Daemon {
    let settings: DaemonSettings
    var migrateStoreV1 = false

    func run() async throws {
        var logger = Logger(label: "cofferd")
        logger.logLevel = .info

        let generatedKey: Bool
        switch settings.mode {
        case .development(let directory):
            generatedKey = try DevInstance.prepare(directory: directory, keyFile: settings.keySource.path)
        case .production:
            generatedKey = false
            try DevInstance.ensureDirectory(settings.stateDirectory, mode: 0o700)
            try DevInstance.ensureDirectory(settings.runtimeDirectory, mode: 0o755)
        }

        // The configured key plus any a master-key rotation added; the
        // newest is current (docs/operator-guide.md, "Master key rotation").
        let keyLocations = MasterKeyLocations(primary: settings.keySource, stateDirectory: settings.stateDirectory)
        let loaded: MasterKeyLocations.Loaded
        do {
            loaded = try keyLocations.load()
        } catch let error as KeyringError {
            throw StartupRefusal(error.message)
        }
        for skipped in loaded.skipped {
            logger.warning("a key file listed in \(MasterKeyLocations.listName) was not loaded", metadata: ["reason": "\(skipped)"])
        }
        let key = loaded.current
        if generatedKey {
            FileHandleStderr.write("""
                cofferd: WARNING: generated a new master key at \(settings.keySource.path) (key id \(key.id)).
                cofferd: WARNING: development only: anyone who can read that file can open every secret under \(settings.stateDirectory).\n
                """)
        }
        let keyring = Keyring(current: key, retired: loaded.all)
        let sealer = RecordSealer()
        let store: SecretStore
        do {
            store = try SecretStore.open(
                directory: settings.stateDirectory, authenticator: try StoreAuthenticator(keyring: keyring, sealer: sealer),
                migrateVersion1: migrateStoreV1)
        } catch let error as StoreError {
            throw StartupRefusal(error.message)
        }
        // The file's bytes and its parse are garbage now (for 100k secrets,
        // more than the store itself): give the pages back.
        HeapPages.returnFree()
        // Keys that neither a record nor the file's MAC needs (the old
        // primary after a finished rotation) are not kept in memory.
        let needed = store.neededKeyIDs
        let loadedIDs = Set(loaded.all.map(\.id))
        let missing = needed.subtracting(loadedIDs)
        guard missing.isEmpty else {
            // Fail closed and say so, rather than serve a store part of
            // which cannot be opened.
            throw StartupRefusal("""
                the store holds records sealed under master key \(missing.map(\.hex).sorted().joined(separator: ", ")), \
                which neither \(settings.keySource) nor \(settings.stateDirectory)/\(MasterKeyLocations.listName) provides
                """)
        }
        _ = keyring.retire(keeping: needed)

        // The mirror, before the audit chain: a restore at startup changes
        // the store id, which names the chain.
        let relay = MirrorEventRelay(logger: logger)
        let mirror = try startMirror(store: store, keyring: keyring, sealer: sealer, relay: relay, logger: logger)
        let chainer: AuditChainer
        do {
            let chainKey = try sealer.mac(with: key, for: .auditChain)
            chainer = try AuditChainer(
                chainID: store.snapshot.storeID, keys: AuditChainKeys(keyID: key.id.hex, mac: { try chainKey($0) }),
                statePath: settings.stateDirectory + "/audit-chain",
                lanes: try Self.claimAuditLanes(MultiThreadedEventLoopGroup.singleton))
        } catch {
            throw StartupRefusal("cannot open the audit chain state in \(settings.stateDirectory): \(error)")
        }
        let chained = try chooseAuditSink(chainer: chainer, logger: logger)
        let coalescing = settings.auditCoalesceSeconds > 0
            ? CoalescingAuditSink(inner: chained, windowSeconds: settings.auditCoalesceSeconds) : nil
        let audit: any AuditSink = coalescing ?? chained
        let policySource = settings.policySource
        let policy: AccessPolicy
        do {
            policy = try policySource.load()
        } catch {
            throw StartupRefusal(error.message)
        }
        // User and group names are looked up on a thread of their own
        // (AccountLookups): a directory that hangs holds no other work.
        let lookupThread = NIOThreadPool(numberOfThreads: 1)
        lookupThread.start()
        defer { lookupThread.shutdownGracefully { _ in } }
        let services = CofferServices(
            store: store, keyring: keyring, sealer: sealer, policy: policy, policySource: policySource, audit: audit,
            mode: settings.mode == .production ? .production : .development, blockingPool: ThreadPoolWork(),
            accountLookupThread: ThreadPoolWork(lookupThread),
            retainVersions: settings.retainVersions, keyLocations: keyLocations,
            resealPausePerBatch: settings.developmentResealPause, maxConcurrentScrypt: settings.limits.maxConcurrentScrypt,
            mirror: mirror, auditChainKeys: chainer.keys
        )
        relay.attach(services.audit)
        let dispatcher = RequestDispatcher(services: services, logger: logger)
        var serverConfiguration = ServerConfiguration(runtimeDirectory: settings.runtimeDirectory)
        serverConfiguration.limits = settings.limits
        serverConfiguration.adminSocketGroup = settings.adminSocketGroup
        let activation = SocketActivation.passedSockets()
        serverConfiguration.activatedSockets = activation.sockets
        if !activation.unknown.isEmpty {
            logger.warning("ignoring sockets systemd passed with unknown names", metadata: ["names": "\(activation.unknown)"])
        }
        let mode = settings.mode
        let server = CofferServer(
            configuration: serverConfiguration, dispatcher: dispatcher,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger,
            onReady: { sockets in
                // READY only now: the key is loaded, the store open and
                // every socket listening.
                SystemdNotifier.ready(SystemdNotifier.describe(services))
                if case .development(let directory) = mode { DevInstance.announce(directory: directory, sockets: sockets) }
            },
            onShutdown: { SystemdNotifier.stopping() }
        )

        if !PeerResolution.kernelPinsPeers {
            logger.warning("this kernel has no SO_PEERPIDFD (Linux 6.5 or later): no caller's unit or supplementary groups can be confirmed, so unit rules (and group rules through supplementary groups) grant nothing and credentials.sock serves no credential")
        }
        try? audit.record(AuditEvent(kind: .started, result: .ok))
        logger.info("cofferd starting", metadata: [
            "store": "\(store.path)", "key_id": "\(key.id)", "audit": "\(audit.name)",
            "policy": "\(settings.policyFile) (\(policy.rules.count) rules, \(policy.operators.count) operators)",
            "locked_bytes": "\(ProcessHardening.lockedBytesReportedByKernel() ?? 0)",
        ])
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [server, ReloadOnHangup(services: services, logger: logger, reloadSettings: { [settings, logger] in
                           await Self.reloadSettings(settings, server: server, lookups: services.accountLookups, logger: logger)
                       }),
                       StoreWatch(services: services, logger: logger)]
                + [AuditUpkeep(coalescing: coalescing, journal: chained as? JournalAuditSink, logger: logger)]
                + (mirror.map { [MirrorService(mirror: $0)] } ?? [])
                + (SystemdNotifier.watchdogInterval().map { [WatchdogPing(interval: $0, services: services, group: MultiThreadedEventLoopGroup.singleton)] } ?? []),
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        coalescing?.flushAll()
        try? audit.record(AuditEvent(kind: .stopped, result: .ok))
        chainer.sync()
        logger.info("cofferd stopped")
    }

    /// The mirror when one is configured; an empty store is restored from
    /// it first (docs/mirror.md, "Restore"). PostgreSQL being down is not a
    /// reason to refuse to start: writes queue in the outbox meanwhile.
    private func startMirror(
        store: SecretStore, keyring: Keyring, sealer: RecordSealer, relay: MirrorEventRelay, logger: Logger
    ) throws -> Mirror? {
        guard let conninfo = settings.postgres else { return nil }
        var password: LockedBytes?
        if let file = settings.postgresPasswordFile {
            do {
                password = try PasswordFile.read(file)
            } catch {
                throw StartupRefusal("cannot read the PostgreSQL password file \(file): \(error)")
            }
        }
        // Every local write now also queues its names for PostgreSQL, in
        // the same durable write as the change.
        store.keepsOutbox = true
        let mirror: Mirror
        do {
            var mirrorSettings = Mirror.Settings(conninfo: conninfo, password: password)
            mirrorSettings.retainVersions = settings.retainVersions
            mirror = try Mirror(settings: mirrorSettings, store: store, keyring: keyring,
                                sealer: sealer, stateDirectory: settings.stateDirectory, events: relay.handle)
        } catch {
            throw StartupRefusal("cannot start the PostgreSQL mirror: \(error)")
        }
        // Only a store that has never been written (a new host): one that
        // was emptied has its own history, and maybe deletions to push.
        if store.snapshot.generation == 0 {
            do {
                let restored = try mirror.restore()
                if restored.secrets > 0 || !restored.refused.isEmpty {
                    logger.notice("restored the empty store from PostgreSQL", metadata: [
                        "store_id": "\(restored.storeID)", "secrets": "\(restored.secrets)", "refused": "\(restored.refused.count)"])
                }
            } catch {
                logger.warning("the store is empty and PostgreSQL could not restore it now; `cofferctl restore --from-postgres` later",
                               metadata: ["reason": "\(error)"])
            }
        }
        return mirror
    }

    /// SIGHUP: the configuration again, from the same command line.
    static func reloadSettings(_ running: DaemonSettings, server: CofferServer, lookups: any BlockingWork, logger: Logger) async {
        do {
            let fresh = try await DaemonSettings.resolve(
                config: running.configPath, dev: running.devArgument, audit: running.auditArgument,
                auditCoalesce: running.auditCoalesceArgument, postgres: running.postgresArgument,
                groupNamed: { name in try await lookups.run { SystemAccounts().groupID(named: name) } })
            server.updateLimits(fresh.limits)
            let needRestart = running.differencesNeedingRestart(fresh)
            logger.info("configuration reloaded: limits apply to new connections",
                        metadata: needRestart.isEmpty ? [:] : ["restart_needed_for": "\(needRestart.joined(separator: ", "))"])
        } catch {
            logger.error("configuration reload refused; the running settings stay", metadata: ["error": "\(error)"])
        }
    }

    /// Gives each event loop an audit lane of its own (1, 2, …; lane 0 is
    /// every other thread's), so that the loops never wait for one another
    /// to send an event. Returns how many lanes there are.
    static func claimAuditLanes(_ group: MultiThreadedEventLoopGroup) throws -> Int {
        let loops = Array(group.makeIterator())
        for (index, loop) in loops.enumerated() {
            try loop.submit { AuditLane.claim(index + 1) }.wait()
        }
        return loops.count + 1
    }

    private func chooseAuditSink(chainer: AuditChainer, logger: Logger) throws -> any AuditSink {
        let reachable = JournalAuditSink.isReachable()
        if reachable, settings.audit != .stderr {
            // The state file may be behind the journal after a power loss:
            // never reuse a number the journal already holds.
            for lane in 0..<chainer.laneCount {
                guard let last = try? JournalReader.last(chainID: chainer.chainID, lane: lane, uid: geteuid()),
                      chainer.resume(fromJournal: last.fields) else { continue }
                FileHandleStderr.write("""
                    cofferd: the audit chain state was behind the journal; lane \(lane) continues from seq \(chainer.sequences[lane])

                    """)
            }
        }
        switch settings.audit {
        case .journal:
            guard reachable else {
                throw StartupRefusal("""
                    the systemd journal is not reachable at \(JournalAuditSink.socketPath), and every decision \
                    must be audited. Start journald, or for development only pass --audit stderr.
                    """)
            }
            return try journalSink(chainer: chainer, logger: logger)
        case .stderr:
            return StderrAuditSink(chainer: chainer)
        case .auto:
            if reachable { return try journalSink(chainer: chainer, logger: logger) }
            FileHandleStderr.write("cofferd: WARNING: no systemd journal is running; audit events go to stderr.\n")
            return StderrAuditSink(chainer: chainer)
        }
    }

    /// The journal sink, its sends bounded by the configured timeout.
    private func journalSink(chainer: AuditChainer, logger: Logger) throws -> JournalAuditSink {
        let first = [("MESSAGE", "cofferd starting: audit events go to this journal"), ("PRIORITY", "6"),
                     ("SYSLOG_IDENTIFIER", "cofferd")]
        switch JournalSendTimeout.install(settings.auditSendTimeout, sendingFirst: first) {
        case .bounded:
            break
        case .unbounded:
            logger.warning("could not find libsystemd's journal socket: audit sends are not bounded in time; a stalled journald would block cofferd")
        case .stalled:
            throw StartupRefusal("the systemd journal does not read (a first message waited \(settings.auditSendTimeout)); every decision must be audited, so cofferd does not start")
        }
        return JournalAuditSink(chainer: chainer, sendTimeout: settings.auditSendTimeout)
    }
}
