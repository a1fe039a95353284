import Model
import Testing

@testable import Mirror

/// The mirror takes nothing older than what it has: the decision alone,
/// without a database (docs/mirror.md, "Nothing older than what it has").
@Suite struct ChangeMarksTests {
    let k = try! SecretName("app/k")
    let other = try! SecretName("app/other")

    @Test func aRowOlderThanTheNamesMarkIsRefused() {
        var marks = ChangeMarks(floor: 10)
        marks.note(k, at: 40)
        #expect(marks.judge(k, at: 55, checkingFloor: false) == .newer)
        #expect(marks.judge(k, at: 40, checkingFloor: false) == .held)
        #expect(marks.judge(k, at: 39, checkingFloor: false) == .older, "an authentic older row put back")
        #expect(marks.judge(other, at: 11, checkingFloor: false) == .newer, "a name never seen: anything above the floor")
    }

    @Test func aRowReadBackByNameMustBeAboveTheFloor() {
        let marks = ChangeMarks(floor: 100)
        #expect(marks.judge(k, at: 100, checkingFloor: true) == .older, "every row up to the floor was read already")
        #expect(marks.judge(k, at: 90, checkingFloor: true) == .older)
        #expect(marks.judge(k, at: 101, checkingFloor: true) == .newer)
    }

    @Test func notingKeepsTheNewest() {
        var marks = ChangeMarks(floor: 0)
        marks.note(k, at: 7)
        marks.note(k, at: 5)
        #expect(marks.judge(k, at: 6, checkingFloor: false) == .older)
        #expect(marks.judge(k, at: 7, checkingFloor: false) == .held)
    }
}

/// What the mirror will connect with (PostgresConnection.parse, mayUseTCP).
@Suite struct ConninfoTests {
    @Test(arguments: [
        "host=/run/postgresql dbname=x password=p",
        "host=/run/postgresql dbname=x sslpassword=p",
        "postgresql://user:p@/x?host=/run/postgresql",
        "postgresql:///x?host=/run/postgresql&sslpassword=p",
    ])
    func aSecretOptionIsRefusedWithoutRepeatingIt(conninfo: String) {
        #expect {
            try PostgresConnection.parse(conninfo)
        } throws: { error in
            let text = "\(error)"
            return text.contains("password") && !text.contains("=p")
        }
    }

    @Test(arguments: [
        ("host=/run/postgresql dbname=x", false),
        ("host=@abstract dbname=x", false),
        ("host=db.example dbname=x", true),
        ("hostaddr=10.0.0.1 dbname=x", true),
        ("host=/run/postgresql,db.example dbname=x", true),
        ("dbname=x", true),
        ("postgresql://db.example/x", true),
        ("postgresql:///x?host=/run/postgresql", false),
    ])
    func tcpIsAssumedWheneverItIsPossible(conninfo: String, tcp: Bool) throws {
        #expect(PostgresConnection.mayUseTCP(try PostgresConnection.parse(conninfo)) == tcp, "\(conninfo)")
    }
}
