import FileStore
import Model
import Testing

@testable import Server

/// A write the store made and serves, but could not confirm durable, is not
/// told as "nothing was changed": the client would retry believing nothing
/// happened, or give up on a change that is live.
@Suite struct StoreErrorWireTests {
    @Test func aChangeNotConfirmedDurableIsNotToldAsNothingChanged() {
        let notDurable = CofferError.from(StoreError(.notDurable, "the change is written, but its generation could not be recorded"))
        #expect(notDurable.code == .unavailable)
        #expect(notDurable.message.contains("is served") && !notDurable.message.contains("nothing was changed"))
        let failed = CofferError.from(StoreError(.io, "could not write the store log"))
        #expect(failed.code == .unavailable && failed.message.contains("nothing was changed"))
    }
}
