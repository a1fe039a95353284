/// A snapshot the store has just put in service, as its observers are told
/// (SecretStore.onCommit): the one it replaced, and where the change came
/// from, so each observer acts on its own kind.
public struct StoreCommit: Sendable {
    public enum Origin: Sendable, Equatable {
        /// A write through this cofferd (a request, a key operation).
        case local
        /// Changes taken from elsewhere: another host's, or a restore.
        case taken
        /// The store file changed on disk and was read again.
        case file
        /// Only the outbox changed: no secret did.
        case outbox
    }

    public let old: StoreSnapshot
    public let new: StoreSnapshot
    public let origin: Origin
}
