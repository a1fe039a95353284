import Foundation
import Model
import Seal

enum JSONEncoderShim {
    static func roundTrip(_ record: SealedRecord) throws -> SealedRecord {
        try JSONDecoder().decode(SealedRecord.self, from: JSONEncoder().encode(record))
    }
}
