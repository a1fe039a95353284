import Model
import Testing

/// A fixed account table, so policy parsing is tested without /etc/passwd.
struct FixtureAccounts: AccountDirectory {
    func userID(named name: String) -> UInt32? { ["alice": 1000, "deploy": 1002][name] }
    func groupID(named name: String) -> UInt32? { ["dbusers": 2000, "coffer-admins": 2001][name] }
}

@Suite struct PolicyFileTests {
    let example = """
        # services
        allow get,verify on app/db/*,app/cache/token to unit:web.service group:dbusers
        allow read on shared/** to anyone   # every local user
        allow put,rotate on app/** to user:deploy
        operator group:coffer-admins uid:0
        credential web.service db-password app/db/password
        """

    @Test func parsesEveryStatement() throws {
        let file = try PolicyFile.parse(example, directory: FixtureAccounts())
        #expect(file.rules.count == 3)
        #expect(file.rules[0].operations == [.get, .verify])
        #expect(file.rules[0].names == [NamePattern("app/db/*"), NamePattern("app/cache/token")])
        #expect(file.rules[0].principals == [.unit(NamePattern("web.service")), .gid(2000)])
        #expect(file.rules[1].operations == [.get, .verify, .list, .describe, .watch])
        #expect(file.rules[1].principals == [.anyone])
        #expect(file.rules[2].principals == [.uid(1002)])
        #expect(file.operators == [.gid(2001), .uid(0)])
        #expect(file.credentials == [.init(unit: NamePattern("web.service"), id: "db-password", name: try SecretName("app/db/password"))])
    }

    @Test(arguments: [
        ("allow gett on a to uid:1", 1, "unknown operation 'gett'"),
        ("\n\nallow get on a uid:1", 3, "expected 'allow OPERATIONS on NAMES to PRINCIPALS'"),
        ("allow get on ../x to uid:1", 1, "invalid name pattern"),
        ("allow get on a to user:nosuch", 1, "no user named 'nosuch'"),
        ("allow get on a to group:nosuch", 1, "no group named 'nosuch'"),
        ("allow get on a to unit:web/x", 1, "is not a unit name"),
        ("allow get on a to uid:x", 1, "is not a number"),
        ("deny get on a to uid:1", 1, "unknown statement 'deny'"),
        ("operator", 1, "needs at least one principal"),
        ("credential web.service a/b", 1, "expected 'credential UNIT ID SECRET-NAME'"),
        ("allow get on a/*/*/*/*/* to uid:1", 1, "at most 4 wildcards"),
    ])
    func refusesABrokenLineNamingIt(text: String, line: Int, fragment: String) {
        #expect {
            try PolicyFile.parse("allow get on ok to uid:1\n" + text, directory: FixtureAccounts())
        } throws: { error in
            guard let error = error as? PolicyFileError else { return false }
            return error.line == line + 1 && error.message.contains(fragment)
        }
    }

    @Test func blankAndCommentLinesAreIgnored() throws {
        #expect(try PolicyFile.parse("\n# nothing\n   \n", directory: FixtureAccounts()) == PolicyFile())
    }
}

@Suite struct PolicyDecisionTests {
    let web = PeerIdentity(uid: 998, gid: 998, pid: 10, groups: [], unit: "web.service")
    let carol = PeerIdentity(uid: 1005, gid: 1005, pid: 11, groups: [2000])
    let deploy = PeerIdentity(uid: 1002, gid: 1002, pid: 12)
    let admin = PeerIdentity(uid: 1003, gid: 1003, pid: 13, groups: [2001])
    let nobody = PeerIdentity(uid: 65534, gid: 65534, pid: 14)
    let dbPassword = try! SecretName("app/db/password")

    var policy: AccessPolicy {
        get throws {
            AccessPolicy(superusers: [0]).with(try PolicyFile.parse(PolicyFileTests().example, directory: FixtureAccounts()))
        }
    }

    @Test func unitAndGroupRulesGrantTheirNamesOnly() throws {
        let policy = try policy
        #expect(policy.decide(web, .get, name: dbPassword, on: .service) == .allow)
        #expect(policy.decide(carol, .verify, name: dbPassword, on: .service) == .allow)
        #expect(policy.decide(carol, .get, name: try SecretName("app/other"), on: .service) == .deny(.noGrant))
        #expect(policy.decide(web, .list, name: dbPassword, on: .service) == .deny(.noGrant))
    }

    @Test func aUnitRuleNeedsAConfirmedUnit() throws {
        var unconfirmed = web
        unconfirmed.unit = nil
        #expect(try policy.decide(unconfirmed, .get, name: dbPassword, on: .service) == .deny(.noGrant))
    }

    @Test func nobodyIsDeniedEverythingButSharedNames() throws {
        let policy = try policy
        #expect(policy.decide(nobody, .get, name: dbPassword, on: .service) == .deny(.noGrant))
        #expect(policy.decide(nobody, .get, name: try SecretName("shared/motd"), on: .service) == .allow)
        #expect(!policy.mayList(nobody, dbPassword, on: .service))
    }

    @Test func theAdminSocketAdmitsOperatorsAndAdministrativeGrantsOnly() throws {
        let policy = try policy
        #expect(policy.admitsToAdminSocket(admin))
        #expect(policy.admitsToAdminSocket(deploy))
        #expect(policy.admitsToAdminSocket(PeerIdentity(uid: 0, gid: 0, pid: 1)))
        #expect(!policy.admitsToAdminSocket(carol))
        #expect(!policy.admitsToAdminSocket(web))
        #expect(policy.decide(carol, .get, name: dbPassword, on: .admin) == .deny(.notAnOperator))
        #expect(policy.decide(admin, .delete, name: dbPassword, on: .admin) == .allow)
        #expect(policy.decide(deploy, .put, name: dbPassword, on: .admin) == .allow)
        #expect(policy.decide(deploy, .delete, name: dbPassword, on: .admin) == .deny(.noGrant))
        #expect(policy.decide(deploy, .put, name: dbPassword, on: .service) == .deny(.administrativeOperationOnServiceSocket))
    }

    @Test func aSecretsOwnPrincipalsDecideWhoReadsIt() throws {
        let policy = try policy
        let onlyCarol = SecretAccess(principals: [.uid(1005)], scope: .all)
        #expect(policy.decide(web, .get, name: dbPassword, on: .service, secret: onlyCarol) == .deny(.notASecretPrincipal))
        #expect(policy.decide(carol, .get, name: dbPassword, on: .service, secret: onlyCarol) == .allow)
        #expect(policy.decide(carol, .describe, name: dbPassword, on: .service, secret: onlyCarol) == .allow)
        #expect(policy.decide(PeerIdentity(uid: 0, gid: 0, pid: 1), .get, name: dbPassword, on: .service, secret: onlyCarol) == .allow)
    }

    @Test func aSecretsScopeKeepsItOffOtherSockets() throws {
        let policy = try policy
        let credentialsOnly = SecretAccess(principals: [], scope: .sockets([.credentials]))
        #expect(policy.decide(web, .get, name: dbPassword, on: .service, secret: credentialsOnly) == .deny(.outsideSecretScope))
        let served = policy.credential(unit: "web.service", id: "db-password", secret: { _ in credentialsOnly })
        #expect(served?.0 == dbPassword)
        #expect(served?.1 == .allow)
    }

    /// "Never handed out on coffer.sock, whoever asks": root there too (a
    /// container sharing the host's uids asks as 0). On the admin socket
    /// root still manages it, and systemd reaches it through the
    /// credentials socket.
    @Test func aSecretsScopeKeepsItFromRootOnOtherSocketsToo() throws {
        let policy = try policy
        let root = PeerIdentity(uid: 0, gid: 0, pid: 1)
        let credentialsOnly = SecretAccess(principals: [], scope: .sockets([.credentials]))
        for operation: Operation in [.get, .verify, .describe] {
            #expect(policy.decide(root, operation, name: dbPassword, on: .service, secret: credentialsOnly) == .deny(.outsideSecretScope))
            #expect(policy.decide(root, operation, name: dbPassword, on: .admin, secret: credentialsOnly) == .allow)
            #expect(policy.decide(root, operation, name: dbPassword, on: .credentials, secret: credentialsOnly) == .allow)
        }
        let serviceOnly = SecretAccess(principals: [], scope: .sockets([.service]))
        #expect(policy.decide(root, .get, name: dbPassword, on: .service, secret: serviceOnly) == .allow)
        #expect(policy.decide(root, .get, name: dbPassword, on: .credentials, secret: serviceOnly) == .deny(.outsideSecretScope))
    }

    @Test func credentialsMapIdsAndFallBackToTheIdAsName() throws {
        let policy = try policy
        #expect(policy.credential(unit: "web.service", id: "db-password", secret: { _ in nil })?.1 == .allow)
        #expect(policy.credential(unit: "mail.service", id: "db-password", secret: { _ in nil })?.1 == .deny(.noGrant))
        // No mapping: the id is the name, and a rule must grant the unit get.
        #expect(policy.credential(unit: "web.service", id: "app", secret: { _ in nil })?.1 == .deny(.noGrant))
        let fallback = policy.credential(unit: "web.service", id: "ok-name", secret: { _ in nil })
        #expect(fallback?.0 == (try SecretName("ok-name")))
        #expect(policy.credential(unit: "web.service", id: "..", secret: { _ in nil }) == nil)
    }
}

@Suite struct ProcessRecordsTests {
    @Test(arguments: [
        ("0::/system.slice/web.service\n", "web.service"),
        ("0::/system.slice/web.service/worker\n", "web.service"),
        ("0::/system.slice/system-getty.slice/getty@tty1.service\n", "getty@tty1.service"),
        ("0::/user.slice/user-1000.slice/user@1000.service/app.slice/evil.service\n", "user@1000.service"),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope"),
        ("0::/init.scope\n", "init.scope"),
        ("0::/system.slice/_cpu.service\n", "cpu.service"),
        ("12:pids:/\n1:name=systemd:/system.slice/cron.service\n0::/\n", "cron.service"),
    ])
    func findsTheSystemUnit(cgroup: String, unit: String) {
        #expect(ProcessRecords.systemUnit(fromCgroup: cgroup) == unit)
    }

    @Test(arguments: ["0::/\n", "0::/docker/0123abcd\n", "", "garbage", "0::/system.slice\n"])
    func findsNoUnitOutsideSystemdsLayout(cgroup: String) {
        #expect(ProcessRecords.systemUnit(fromCgroup: cgroup) == nil)
    }

    @Test func readsSupplementaryGroups() {
        let status = "Name:\tpython3\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 2000 \nVmLck:\t0 kB\n"
        #expect(ProcessRecords.supplementaryGroups(fromStatus: status) == [4, 27, 2000])
        #expect(ProcessRecords.supplementaryGroups(fromStatus: "Groups:\t\n") == [])
        #expect(ProcessRecords.supplementaryGroups(fromStatus: "Name:\tx\n") == nil)
        #expect(ProcessRecords.supplementaryGroups(fromStatus: "Groups:\t4 x\n") == nil)
    }
}

@Suite struct NamePatternMatchingTests {
    @Test(arguments: [
        ("app/*", "app/x", true), ("app/*", "app/x/y", false), ("app/**", "app/x/y", true),
        ("**", "a", true), ("a*b", "ab", true), ("a*b", "a/b", false), ("a**b", "a/x/b", true),
        ("*.service", "web.service", true), ("web-*", "web-", true), ("x", "xy", false), ("", "", true),
    ])
    func matches(pattern: String, text: String, expected: Bool) {
        #expect(NamePattern(pattern).matches(text: text) == expected)
    }

    @Test func aHostileGlobCostsOnePassNotAnExponentialSearch() {
        // 120 alternating wildcards: a backtracking matcher would not finish.
        let hostile = NamePattern(String(repeating: "**a", count: 120) + "Z")
        #expect(!hostile.matches(text: String(repeating: "a", count: 250)))
    }

    @Test func validationCountsWildcardRunsAndRefusesTripleStars() throws {
        #expect(throws: CofferError.self) { try NamePattern.validated("a/***") }
        #expect(throws: CofferError.self) { try NamePattern.validated("**a**b**c**d**") }
        #expect(try NamePattern.validated("**/x/*/y*").isLiteral == false)
        #expect(try NamePattern.validated("a/b").isLiteral)
    }
}

@Suite struct SecretAccessRulesTests {
    let policy = AccessPolicy(superusers: [0], operators: [.gid(2001)], credentials: [
        .init(unit: NamePattern("web-*.service"), id: "db", name: try! SecretName("app/db")),
    ])

    @Test func aCredentialMappingRespectsTheSecretsOwnPrincipals() {
        let onlyWeb = SecretAccess(principals: [.unit(NamePattern("web-a.service"))], scope: .all)
        #expect(policy.credential(unit: "web-a.service", id: "db", secret: { _ in onlyWeb })?.1 == .allow)
        #expect(policy.credential(unit: "web-b.service", id: "db", secret: { _ in onlyWeb })?.1 == .deny(.notASecretPrincipal))
    }

    @Test func onlySuperusersAndOperatorsSetASecretsAccess() {
        #expect(policy.mayChangeAccess(PeerIdentity(uid: 0, gid: 0, pid: 1), on: .admin))
        #expect(policy.mayChangeAccess(PeerIdentity(uid: 7, gid: 7, pid: 1, groups: [2001]), on: .admin))
        #expect(!policy.mayChangeAccess(PeerIdentity(uid: 7, gid: 7, pid: 1, groups: [2001]), on: .service))
        #expect(!policy.mayChangeAccess(PeerIdentity(uid: 8, gid: 8, pid: 1), on: .admin))
    }

    @Test func effectiveIDsComeFromTheStatusFile() {
        let status = "Uid:\t1000\t1001\t1001\t1001\nGid:\t50\t51\t51\t51\n"
        #expect(ProcessRecords.effectiveIDs(fromStatus: status)?.uid == 1001)
        #expect(ProcessRecords.effectiveIDs(fromStatus: status)?.gid == 51)
        #expect(ProcessRecords.effectiveIDs(fromStatus: "Uid:\t1\n") == nil)
    }
}

/// Every operation × every kind of principal: a grant scoped to some names
/// never reaches a whole-store operation (docs/policy.md, "Who may run which
/// operation").
@Suite struct OperationReachTests {
    static let policyText = """
        allow all on team-a/** to uid:2001
        allow all on ** to uid:2002
        operator uid:2003
        """
    let policy = AccessPolicy(superusers: [0]).with(try! PolicyFile.parse(policyText, directory: FixtureAccounts()))
    let scoped = PeerIdentity(uid: 2001, gid: 2001, pid: 21)
    let everyName = PeerIdentity(uid: 2002, gid: 2002, pid: 22)
    let anOperator = PeerIdentity(uid: 2003, gid: 2003, pid: 23)
    let root = PeerIdentity(uid: 0, gid: 0, pid: 24)
    let another = PeerIdentity(uid: 2004, gid: 2004, pid: 25)
    let teamA = try! SecretName("team-a/db")
    let teamB = try! SecretName("team-b/db")

    /// The name the dispatcher would check: one for operations that name a
    /// secret, none for list, watch and the whole-store operations.
    func decide(_ peer: PeerIdentity, _ operation: Operation, _ name: SecretName) -> PolicyDecision {
        let listener: Listener = operation.isAdministrative ? .admin : .service
        return policy.decide(peer, operation, name: operation.actsOnSecret ? name : nil, on: listener)
    }

    @Test(arguments: Operation.allCases.filter { $0 != .ping })
    func eachPrincipalGetsWhatItsKindAllows(operation: Operation) {
        let wholeStore = operation.reach == .wholeStore
        #expect(decide(scoped, operation, teamA).isAllowed == !wholeStore, "a grant on team-a/** and \(operation.rawValue)")
        if operation.actsOnSecret {
            #expect(decide(scoped, operation, teamB) == .deny(.noGrant), "team-b is outside the grant")
        }
        #expect(decide(everyName, operation, teamB) == .allow, "a grant on ** reaches everything it lists")
        #expect(decide(anOperator, operation, teamB) == .allow || !operation.isAdministrative,
                "operators have every administrative operation")
        #expect(decide(root, operation, teamB) == .allow)
        #expect(!decide(another, operation, teamA).isAllowed)
    }

    @Test func everyOperationHasOneReach() {
        let wholeStore = Operation.allCases.filter { $0.reach == .wholeStore }.map(\.rawValue).sorted()
        #expect(wholeStore == ["audit", "export", "reload", "restore", "rotate-master-key", "seal", "status", "unseal"])
        #expect(Operation.allCases.filter { $0.reach == .nothing } == [.ping])
    }

    @Test func aScopedListShowsOnlyItsNames() {
        #expect(policy.mayList(scoped, teamA, on: .service))
        #expect(!policy.mayList(scoped, teamB, on: .service))
    }

    @Test func readOnAllNamesStillGrantsNoWholeStoreOperation() throws {
        let text = "allow read,export,status on ** to uid:2005\nallow all on app/* to uid:2006\n"
        let policy = AccessPolicy(superusers: [0]).with(try PolicyFile.parse(text, directory: FixtureAccounts()))
        let reader = PeerIdentity(uid: 2005, gid: 2005, pid: 26)
        #expect(policy.decide(reader, .export, name: nil, on: .admin) == .allow)
        #expect(policy.decide(reader, .seal, name: nil, on: .admin) == .deny(.noGrant))
        let narrow = PeerIdentity(uid: 2006, gid: 2006, pid: 27)
        for operation in Operation.allCases where operation.reach == .wholeStore {
            #expect(policy.decide(narrow, operation, name: nil, on: .admin) == .deny(.noGrant))
        }
    }
}

/// credentials.sock's decision, without a socket (AccessPolicy.decideCredential).
@Suite struct CredentialDecisionTests {
    let policy = AccessPolicy(superusers: [0], credentials: [
        .init(unit: try! NamePattern("web.service"), id: "db", name: try! SecretName("app/db")),
    ])
    let unitProcess = PeerIdentity(uid: 0, gid: 0, pid: 5, groups: [4, 27], unit: "web.service")

    @Test func onlyRootInTheNamedUnitGetsTheUnitsCredential() throws {
        let served = policy.decideCredential(unitProcess, address: ("web.service", "db"), secret: { _ in nil })
        let db = try SecretName("app/db")
        #expect(served.decision == .allow && served.name == db)
        #expect(served.requester.groups.isEmpty && served.requester.uid == 0)

        var notRoot = unitProcess
        notRoot.uid = 1000
        #expect(policy.decideCredential(notRoot, address: ("web.service", "db"), secret: { _ in nil }).decision
                == .deny(.unitNotTrusted))
        #expect(policy.decideCredential(unitProcess, address: nil, secret: { _ in nil }).decision == .deny(.unknownCredential))

        var elsewhere = unitProcess
        elsewhere.unit = "cron.service"
        let outside = policy.decideCredential(elsewhere, address: ("web.service", "db"), secret: { _ in nil })
        #expect(outside.decision == .deny(.peerOutsideUnit) && outside.name == db)
        #expect(outside.requester == elsewhere, "audited as the process it is")

        var unconfirmed = unitProcess
        unconfirmed.unit = nil
        #expect(policy.decideCredential(unconfirmed, address: ("web.service", "db"), secret: { _ in nil }).decision
                == .deny(.peerOutsideUnit))
        #expect(policy.decideCredential(unitProcess, address: ("web.service", "no/such/../id"), secret: { _ in nil }).decision
                == .deny(.unknownCredential))
    }
}
