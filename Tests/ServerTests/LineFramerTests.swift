import Audit
import CofferTestSupport
import LockedMemory
import Testing

@testable import Server

@Suite struct LineFramerTests {
    func feed(_ framer: inout LineFramer, _ text: String) {
        Array(text.utf8).withUnsafeBytes { framer.append($0) }
    }

    func lines(_ framer: inout LineFramer) -> [String] {
        var out: [String] = []
        while let frame = framer.next() {
            switch frame {
            case .line(let bytes): out.append(bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) })
            case .tooLarge: out.append("<too large>")
            }
        }
        return out
    }

    @Test func splitsOnNewlinesAcrossChunks() {
        var framer = LineFramer(maxLineBytes: 100)
        feed(&framer, "{\"a\":1}\n{\"b\"")
        #expect(lines(&framer) == ["{\"a\":1}"])
        feed(&framer, ":2}\r\n\n{\"c\":3}\n")
        #expect(lines(&framer) == ["{\"b\":2}", "{\"c\":3}"])
        #expect(framer.bufferedBytes == 0)
    }

    @Test func anOverlongLineIsReportedWithoutWaitingForItsEnd() {
        var framer = LineFramer(maxLineBytes: 8)
        feed(&framer, "123456789")
        #expect(lines(&framer) == ["<too large>"])
        var complete = LineFramer(maxLineBytes: 8)
        feed(&complete, "12345678\n123456789\n")
        #expect(lines(&complete) == ["12345678", "<too large>"])
    }

    @Test func longStreamsDoNotGrowTheBuffer() {
        var framer = LineFramer(maxLineBytes: 64)
        for i in 0..<10_000 {
            feed(&framer, "{\"id\":\(i)}\n")
            #expect(lines(&framer).count == 1)
        }
        #expect(framer.bufferedBytes == 0)
    }
}

@Suite struct ResponseEncodingTests {
    @Test func escapesControlCharactersAndQuotes() throws {
        try TestKeys.prepareSecureHeap()
        let value = try LockedBytes(count: 5) { $0.copyBytes(from: [0x22, 0x5C, 0x0A, 0x01, 0x41]) }
        var response = Response.success(RequestID(number: "1"), [("value", .secret(value, .text))])
        #expect(response.reveals)
        #expect(String(decoding: response.encoded().bytes, as: UTF8.self).contains("UNAVAILABLE"), "no receipt, no value")
        response.receipt = try AuditTrail(RecordingAuditSink()).receipt(recording: AuditEvent(kind: .get, result: .ok))
        #expect(String(decoding: response.encoded().bytes, as: UTF8.self) == #"{"id":1,"ok":true,"value":"\"\\\n\u0001A"}"# + "\n")
    }

    @Test func errorsCarryCodeAndMessage() {
        let response = Response.failure(RequestID(string: "a\"b"), .init(.notFound, "no secret named x"))
        #expect(String(decoding: response.encoded().bytes, as: UTF8.self)
            == #"{"id":"a\"b","ok":false,"error":{"code":"NOT_FOUND","message":"no secret named x"}}"# + "\n")
        #expect(!response.reveals)
    }
}
