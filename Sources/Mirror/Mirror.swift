import FileStore
import Keyring
import LockedMemory
import Model
import Seal
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL mirror (docs/mirror.md): carries every committed change to
/// the database, replays what an outage or a crash left in the outbox,
/// takes the other hosts' changes (LISTEN/NOTIFY plus a periodic catch-up),
/// and restores an empty store from the database.
///
/// It runs on a thread of its own (libpq blocks); `run` returns after
/// `stop`. Writes never wait for it: a commit only adds to the outbox,
/// which lives in the store file itself (the daemon opens the store with
/// `keepsOutbox`). The mirror subscribes to the store's commits to push
/// at once rather than at the next tick.
public final class Mirror: Sendable {
    public struct Settings: Sendable {
        /// A libpq conninfo or URI. Never logged (it may hold a password).
        public var conninfo: String
        /// From a file or a systemd credential: NUL-terminated, in locked
        /// memory, passed to libpq apart from the conninfo, never logged.
        public var password: LockedBytes?
        public var catchUpInterval: Duration = .seconds(5)
        /// While backing off, how often to ask whether the server is back.
        public var serverCheckInterval: Duration = .milliseconds(250)
        /// The daemon's retain_versions: what a merge of another host's
        /// versions keeps, as a local write would.
        public var retainVersions = 10
        public var batchSize = 1000
        public var maxBackoff: Duration = .seconds(30)
        /// Confirmed entries left in the store file's outbox before the
        /// mirror drops them in a commit of its own (SettledChanges).
        public var settledEntriesToPrune = 1000

        public init(conninfo: String, password: LockedBytes? = nil) {
            self.conninfo = conninfo
            self.password = password
        }
    }

    /// What the daemon audits or tells watchers about.
    public enum Event: Sendable {
        case error(MirrorError)
        case recovered
        /// A row that failed its MAC or did not open: never taken.
        case tampered(name: String)
    }

    public struct Status: Sendable {
        public var connected = false
        public var lastError: String?
        public var lastPushAt: Int64?
        public var pushedRows = 0
        public var pulledSequence: Int64 = 0
        public var refusedRows = 0
        /// Names that collided again after a merge in the last pass.
        public var stuck = 0
    }

    let settings: Settings
    let store: SecretStore
    let rows: RowAuthenticator
    let state: MirrorState
    let events: @Sendable (Event) -> Void
    private let wakeup: WakePipe
    private let stopped = Atomic<Bool>(false)
    private let current = Mutex(Status())
    /// What this host holds of the database's history (ChangeMarks): used
    /// by the mirror's own thread, and by restore before it runs.
    private let marks = Mutex(ChangeMarks(floor: 0))
    /// What PostgreSQL has confirmed of the outbox: changed on the mirror's
    /// thread, read by status.
    private let settled: Mutex<SettledChanges>

    public init(
        settings: Settings, store: SecretStore, keyring: Keyring, sealer: RecordSealer, stateDirectory: String,
        events: @escaping @Sendable (Event) -> Void
    ) throws {
        // A conninfo cofferd would refuse to connect with is a startup
        // refusal, not a mirror that retries forever.
        _ = try PostgresConnection.parse(settings.conninfo)
        self.settings = settings
        self.store = store
        self.rows = RowAuthenticator(keyring: keyring, sealer: sealer)
        self.state = MirrorState(directory: stateDirectory)
        // A watermark ahead of the store (its file rolled back, with
        // store-generation removed: docs/operations.md) would take the
        // writes that reuse those generations as pushed, and never send
        // them: it goes back to the store's generation, on disk too, before
        // any such write is made.
        let snapshot = store.snapshot
        var pushed = state.pushed(storeID: snapshot.storeID)
        if pushed > snapshot.generation {
            pushed = snapshot.generation
            try state.recordPushed(storeID: snapshot.storeID, generation: pushed)
        }
        self.settled = Mutex(SettledChanges(watermark: pushed))
        self.events = events
        // Local writes reach the database only through the outbox: the
        // store must keep one (cofferd opens it so when a mirror is set).
        precondition(store.keepsOutbox, "a mirror needs a store that keeps an outbox")
        let wakeup = try WakePipe()
        self.wakeup = wakeup
        // Push what a write queued now rather than at the next tick. The
        // mirror's own commits (taken changes, outbox upkeep) need no wake.
        store.onCommit { commit in
            if commit.origin == .local || commit.origin == .file { wakeup.signal() }
        }
    }

    public var status: Status { current.withLock { $0 } }

    /// The outbox entries PostgreSQL has not confirmed yet.
    public func pending(in outbox: Outbox) -> [SecretName: OutboxEntry] {
        settled.withLock { $0 }.pending(in: outbox)
    }

    public func stop() {
        stopped.store(true, ordering: .releasing)
        wakeup.signal()
    }

    func connect() throws(MirrorError) -> PostgresConnection {
        let connection = try PostgresConnection(conninfo: settings.conninfo, password: settings.password)
        try MirrorSchema.migrate(connection)
        return connection
    }

    // MARK: The loop

    public func run() {
        let origin: String
        do { origin = try state.hostID() } catch {
            events(.error(MirrorError(.state, "cannot read or create the mirror's host id")))
            return
        }
        var connection: PostgresConnection?
        var outage = MirrorOutage(maxBackoff: settings.maxBackoff)
        var pulled = state.pulled(storeID: store.snapshot.storeID)
        current.withLock { $0.pulledSequence = pulled }
        marks.withLock { $0.floor = max($0.floor, pulled) }
        while !stopped.load(ordering: .acquiring) {
            do {
                if connection == nil {
                    let fresh = try connect()
                    try fresh.execute("LISTEN coffer_changes")
                    try queueEverythingIfTheDatabaseLacksThisStore(fresh)
                    connection = fresh
                    current.withLock { $0.connected = true; $0.lastError = nil }
                    if outage.connected() == .recovered { events(.recovered) }
                }
                guard let live = connection else { continue }
                try pushAll(over: live, origin: origin, watermark: pulled)
                pulled = try pullAll(over: live, origin: origin, after: pulled)
                wait(for: settings.catchUpInterval, socket: live.socket)
                _ = try live.notifications()
            } catch {
                connection = nil
                current.withLock { $0.connected = false; $0.lastError = error.message }
                let (report, wait) = outage.failed()
                if report == .failing { events(.error(error)) }
                waitOut(wait)
            }
        }
    }

    /// A mirror added to a store that already holds secrets, or pointed at
    /// an empty database, sends everything once.
    private func queueEverythingIfTheDatabaseLacksThisStore(_ connection: PostgresConnection) throws(MirrorError) {
        let snapshot = store.snapshot
        guard !snapshot.secrets.isEmpty else { return }
        let count = try connection.execute("SELECT count(*) FROM coffer_secrets WHERE store_id = $1", [.text(snapshot.storeID)])
            .integer(0, 0) ?? 0
        guard count == 0 else { return }
        do { try store.queueEverything() } catch {
            throw MirrorError(.state, "cannot queue the store for its first sync", detail: "\(error)")
        }
    }

    private func pushAll(over connection: PostgresConnection, origin: String, watermark: Int64) throws(MirrorError) {
        let writer = MirrorWriter(connection: connection, rows: rows, origin: origin)
        var pass = PushPass(batchSize: settings.batchSize, watermark: watermark)
        defer { acknowledge(pass.confirmed) }
        pass: while !stopped.load(ordering: .acquiring), !rows.keyring.isSealed {
            let snapshot = store.snapshot
            let queue = MirrorWriter.queue(from: snapshot, excluding: pass.done, settled: settled.withLock { $0 })
            guard !queue.isEmpty else { return }
            for batch in pass.batches(of: queue) {
                guard !stopped.load(ordering: .acquiring), !rows.keyring.isSealed else { return }
                let outcome: MirrorWriter.Outcome
                do {
                    outcome = try writer.push(batch.items, storeID: snapshot.storeID, now: Int64(time(nil)), watermark: batch.ceiling)
                } catch let error as MirrorError {
                    throw error
                } catch {
                    throw MirrorError(.state, "cannot sign the mirror rows", detail: "\(error)")
                }
                switch outcome {
                case .conflicted(let names):
                    // Another host wrote these names first: merge theirs in
                    // (ours move to the next numbers) and push again.
                    if case .merge(let fresh) = pass.conflicted(names) {
                        pass.mergedIn(fresh, at: try merge(fresh, over: connection, storeID: snapshot.storeID))
                    }
                    let stuck = pass.stuck.count
                    current.withLock { $0.stuck = stuck }
                    continue pass
                case .written(let sequences):
                    marks.withLock { for (name, sequence) in sequences { $0.note(name, at: sequence) } }
                    pass.written(batch)
                    current.withLock { $0.lastPushAt = Int64(time(nil)); $0.pushedRows += batch.items.count }
                }
            }
        }
    }

    /// Merges the database's state of `names` into ours (Secret.merging):
    /// our versions it lacks are re-sealed under their new numbers, and the
    /// result is committed with the merged names queued, so it is pushed
    /// next.
    /// Returns the change_seq of each row merged in: the push that follows
    /// may replace those rows.
    private func merge(_ names: Set<SecretName>, over connection: PostgresConnection, storeID: String) throws(MirrorError) -> [SecretName: Int64] {
        var remote = try MirrorReader(connection: connection, rows: rows).current(storeID: storeID, names: Array(names))
        // Read back by name, a row may be one this host has seen or
        // outgrown: an older authentic row put back is refused, not merged.
        remote.changes = admitted(remote.changes)
        for name in remote.refused { events(.tampered(name: name)) }
        let theirs = Dictionary(remote.changes.compactMap { c in c.secret.map { (c.name, $0) } }, uniquingKeysWith: { a, _ in a })
        let keyring = rows.keyring, sealer = rows.sealer, retain = settings.retainVersions
        let settled = self.settled.withLock { $0 }
        do {
            try store.commitTaken { base, secrets, outbox in
                settled.drop(from: &outbox)
                let queued = OutboxEntry(generation: base.generation + 1, queuedAt: Int64(time(nil)))
                for (name, remoteSecret) in theirs {
                    guard let ours = secrets[name] else { continue }
                    let merged = try Self.merged(ours, remoteSecret, storeID: base.storeID, keyring: keyring, sealer: sealer,
                                                 retain: retain)
                    // Queued as a local write is: only when it changed ours.
                    guard merged != ours else { continue }
                    secrets[name] = merged
                    outbox[name] = queued
                }
            }
        } catch {
            throw MirrorError(.state, "cannot merge another host's versions", detail: "\(error)")
        }
        // Held only now that they are in the store: a commit that failed
        // leaves them to be read and merged again.
        let held = remote.changes
        marks.withLock { marks in for change in held { marks.note(change.name, at: change.sequence) } }
        return Dictionary(remote.changes.map { ($0.name, $0.sequence) }, uniquingKeysWith: { max($0, $1) })
    }

    /// Of the rows read back by name for a merge, those newer than what
    /// this host has (ChangeMarks, above the floor too); the others are
    /// reported as tampered. The caller notes them as held once they are
    /// in the store.
    private func admitted(_ changes: [MirrorReader.Change]) -> [MirrorReader.Change] {
        let (taken, stale) = marks.withLock { marks -> ([MirrorReader.Change], [MirrorReader.Change]) in
            // Two rows of one name in one read cannot happen (one row per
            // name); judged against the marks as they stand.
            var taken: [MirrorReader.Change] = [], stale: [MirrorReader.Change] = []
            for change in changes {
                switch marks.judge(change.name, at: change.sequence, checkingFloor: true) {
                case .newer:
                    taken.append(change)
                case .held:
                    continue
                case .older:
                    stale.append(change)
                }
            }
            return (taken, stale)
        }
        for change in stale { events(.tampered(name: change.name.rawValue)) }
        current.withLock { $0.refusedRows += stale.count }
        return taken
    }

    /// Settles what PostgreSQL confirmed: the watermark moves (a small
    /// file, STATE/mirror-pushed), and the store file is rewritten only
    /// once `settledEntriesToPrune` confirmed entries have gathered in its
    /// outbox (a pull that takes changes, a merge or a restore drops them
    /// sooner, in a commit it makes anyway).
    private func acknowledge(_ confirmed: [SecretName: UInt64]) {
        guard !confirmed.isEmpty else { return }
        let snapshot = store.snapshot
        let (moved, now) = settled.withLock { settled -> (UInt64?, SettledChanges) in
            settled.confirm(confirmed)
            return (settled.advance(over: snapshot.outbox, generation: snapshot.generation), settled)
        }
        // A failure here only means the names are pushed again (upserts).
        if let moved { try? state.recordPushed(storeID: snapshot.storeID, generation: moved) }
        let done = now.confirmed(in: snapshot.outbox)
        if done.count >= settings.settledEntriesToPrune {
            try? store.dropFromOutbox(done)
        }
    }

    private func pullAll(over connection: PostgresConnection, origin: String, after start: Int64) throws(MirrorError) -> Int64 {
        current.withLock { $0.stuck = 0 }
        let reader = MirrorReader(connection: connection, rows: rows)
        var pass = PullPass(origin: origin, after: start)
        while !stopped.load(ordering: .acquiring), !rows.keyring.isSealed {
            let storeID = store.snapshot.storeID
            let page = try reader.changes(storeID: storeID, after: pass.sequence)
            guard let step = marks.withLock({ pass.received(page, marks: $0) }) else { break }
            for name in step.tampered { events(.tampered(name: name)) }
            try take(step.take)
            marks.withLock { pass.applied(step, marks: &$0) }
            try? state.recordPulled(storeID: storeID, sequence: pass.sequence)
            let sequence = pass.sequence, refused = step.tampered.count
            current.withLock { $0.pulledSequence = sequence; $0.refusedRows += refused }
        }
        return pass.sequence
    }

    /// Applies the other hosts' changes that differ from ours, deciding
    /// under the store's writer lock. A name with a change of ours still in
    /// the outbox is merged (Secret.merging: both writes kept) and stays
    /// queued; a remote deletion of it leaves ours, which is pushed next.
    private func take(_ changes: [MirrorReader.Change]) throws(MirrorError) {
        guard !changes.isEmpty else { return }
        let keyring = rows.keyring, sealer = rows.sealer, retain = settings.retainVersions
        let settled = self.settled.withLock { $0 }
        do {
            try store.commitTaken { base, secrets, outbox in
                settled.drop(from: &outbox)
                for change in changes {
                    let ours = secrets[change.name]
                    switch TakeDecision.decide(theirs: change.secret, ours: ours, oursPending: outbox[change.name] != nil) {
                    case .nothing, .keepOurs:
                        continue
                    case .take:
                        // Another host's state, kept to this host's
                        // retention (its own may keep more).
                        var taken = change.secret
                        taken?.applyRetention(keep: retain)
                        secrets[change.name] = taken
                    case .merge:
                        guard let ours, let theirs = change.secret else { continue }
                        secrets[change.name] = try Self.merged(ours, theirs, storeID: base.storeID, keyring: keyring, sealer: sealer,
                                                               retain: retain)
                        outbox[change.name] = OutboxEntry(generation: base.generation + 1, queuedAt: Int64(time(nil)))
                    }
                }
            }
        } catch {
            throw MirrorError(.state, "cannot commit the other hosts' changes", detail: "\(error)")
        }
    }

    /// `ours` with `theirs` merged in, the versions that moved re-sealed
    /// for their new numbers (the number is in the AAD), then cut to
    /// `retain` versions as a local write is: merged versions do not
    /// escape retention.
    static func merged(
        _ ours: Secret, _ theirs: Secret, storeID: String, keyring: Keyring, sealer: RecordSealer, retain: Int
    ) throws -> Secret {
        var merge = ours.merging(remote: theirs)
        for (from, to) in merge.renumbered {
            guard let index = merge.secret.versions.firstIndex(where: { $0.version == to }) else { continue }
            let value = try sealer.open(merge.secret.versions[index].sealed, for: ours.identity(storeID: storeID, version: from),
                                        keyring: keyring)
            merge.secret.versions[index].sealed = try value.withUnsafeBytes {
                try sealer.seal($0, for: merge.secret.identity(storeID: storeID, version: to), with: keyring.current())
            }
        }
        merge.secret.applyRetention(keep: retain)
        return merge.secret
    }

    /// Connects, pushes everything the outbox holds, and returns how many
    /// secrets went (scripts/bench; the daemon uses `run`).
    public func pushOnce() throws -> Int {
        let connection = try connect()
        let before = current.withLock { $0.pushedRows }
        try pushAll(over: connection, origin: try state.hostID(), watermark: current.withLock { $0.pulledSequence })
        return current.withLock { $0.pushedRows } - before
    }

    // MARK: Restore

    public struct Restored: Sendable {
        public let storeID: String
        public let secrets: Int
        public let refused: [String]
    }

    /// Rebuilds an empty store from the database: every secret of the one
    /// store there (or `storeID`), each checked; rows that fail are
    /// skipped, reported as tampered, and never served.
    public func restore(storeID requested: String? = nil) throws -> Restored {
        let connection = try connect()
        let reader = MirrorReader(connection: connection, rows: rows)
        let storeID: String
        if let requested {
            storeID = requested
        } else {
            let ids = try reader.storeIDs()
            guard ids.count <= 1 else {
                throw MirrorError(.state, "the database holds \(ids.count) stores (\(ids.map { "\($0.0.prefix(8))…: \($0.1)" }.joined(separator: ", "))); name one with store_id")
            }
            guard let only = ids.first else { return Restored(storeID: store.snapshot.storeID, secrets: 0, refused: []) }
            storeID = only.0
        }
        var secrets: [SecretName: Secret] = [:]
        var refused: [String] = []
        var sequence: Int64 = 0
        var read: [(SecretName, Int64)] = []
        while true {
            let page = try reader.changes(storeID: storeID, after: sequence)
            guard page.lastSequence > sequence else { break }
            for change in page.changes {
                secrets[change.name] = change.secret
                read.append((change.name, change.sequence))
            }
            refused += page.refused
            sequence = page.lastSequence
        }
        for name in refused { events(.tampered(name: name)) }
        // Confirmed deletions may linger in the outbox (SettledChanges): they
        // are in the database already, so they do not stand in the way.
        let lingering = settled.withLock { $0 }.confirmed(in: store.snapshot.outbox)
        if !lingering.isEmpty { try store.dropFromOutbox(lingering) }
        try store.restore(storeID: storeID, secrets: secrets)
        // Held only once restored: a refused restore leaves the marks as
        // they were.
        let floor = sequence
        marks.withLock { marks in
            for (name, at) in read { marks.note(name, at: at) }
            marks.floor = max(marks.floor, floor)
        }
        try state.recordPulled(storeID: storeID, sequence: sequence)
        current.withLock { $0.pulledSequence = sequence }
        return Restored(storeID: storeID, secrets: secrets.count, refused: refused)
    }

    // MARK: Waiting

    /// After a failure: waits `backoff`, but not past the moment the server
    /// answers again (a PQping every `serverCheckInterval`), so writes made
    /// during an outage reach the database within about that interval of
    /// its return. A commit's wake-up meanwhile is no reason to try again:
    /// it would only fail and double the backoff, and a server back after
    /// a short outage would then wait for the longest backoff.
    /// A server that answers and still failed us (a login refused, a
    /// schema too new) gets the whole backoff: only its coming back cuts
    /// the wait short.
    private func waitOut(_ backoff: Duration) {
        let deadline = ContinuousClock.now + backoff
        let wasDown = !PostgresConnection.serverAnswers(conninfo: settings.conninfo)
        while !stopped.load(ordering: .acquiring) {
            let left = deadline - .now
            guard left > .zero else { return }
            wait(for: min(left, settings.serverCheckInterval), socket: nil)
            if wasDown, PostgresConnection.serverAnswers(conninfo: settings.conninfo) { return }
        }
    }

    private func wait(for duration: Duration, socket: Int32?) {
        var fds = [pollfd(fd: wakeup.readEnd, events: Int16(POLLIN), revents: 0)]
        if let socket, socket >= 0 { fds.append(pollfd(fd: socket, events: Int16(POLLIN), revents: 0)) }
        let milliseconds = Int32(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        _ = try? syscall("poll") { poll(&fds, nfds_t(fds.count), milliseconds) }
        wakeup.drain()
    }
}
