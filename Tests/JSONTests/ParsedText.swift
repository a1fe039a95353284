@testable import JSON

/// `text` through the parser, as a request line would go.
func parsed(_ text: String) throws(JSONError) -> JSONValue {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { raw in
        Result { () throws(JSONError) in try JSONParser.parse(raw) }
    }.get()
}
