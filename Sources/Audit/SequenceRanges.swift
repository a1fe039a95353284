/// Sequence numbers of one lane as sorted, disjoint, non-adjacent ranges:
/// the numbers an `audit_lost` event reports, and those the verifier was
/// told of. A journal stalled for an hour under load loses millions of
/// numbers in a row; kept one by one they grew cofferd's memory by eight
/// bytes per event (any request that reveals nothing still spends one),
/// and the verifier expanded each reported range into a set. As ranges,
/// a run of losses costs one element however long it is.
public struct SequenceRanges: Sendable, Equatable {
    public private(set) var ranges: [ClosedRange<UInt64>] = []

    public init() {}

    public var isEmpty: Bool { ranges.isEmpty }

    public mutating func insert(_ number: UInt64) { insert(number...number) }

    /// Adds `range`, merging it with the ranges it overlaps or touches.
    /// Numbers come mostly in order, so the common case is the last range
    /// growing or a new one after it.
    public mutating func insert(_ range: ClosedRange<UInt64>) {
        if let last = ranges.last, range.lowerBound >= last.lowerBound {
            if Self.isBefore(last, range) {
                ranges.append(range)
            } else {
                ranges[ranges.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            }
            return
        }
        // Out of order: from the first range not wholly before the new
        // one, merge every range it overlaps or touches.
        let first = prefixCount(where: { Self.isBefore($0, range) })
        var merged = range, last = first
        while last < ranges.count, !Self.isBefore(merged, ranges[last]) {
            merged = min(merged.lowerBound, ranges[last].lowerBound)...max(merged.upperBound, ranges[last].upperBound)
            last += 1
        }
        ranges.replaceSubrange(first..<last, with: [merged])
    }

    /// Whether `earlier` ends before `later` starts with at least one
    /// number between them (so the two cannot be one range).
    private static func isBefore(_ earlier: ClosedRange<UInt64>, _ later: ClosedRange<UInt64>) -> Bool {
        earlier.upperBound < later.lowerBound && later.lowerBound - earlier.upperBound > 1
    }

    /// How many ranges, from the first, `isBefore` holds for (it must hold
    /// for a prefix of the sorted ranges and no other): a binary search.
    private func prefixCount(where isBefore: (ClosedRange<UInt64>) -> Bool) -> Int {
        var low = 0, high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if isBefore(ranges[middle]) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public mutating func formUnion(_ other: SequenceRanges) {
        for range in other.ranges { insert(range) }
    }

    /// Whether every number of `range` is here.
    public func contains(_ range: ClosedRange<UInt64>) -> Bool {
        // Ranges never touch, so one of them holds all of `range` or none does.
        let low = prefixCount(where: { $0.upperBound < range.lowerBound })
        return low < ranges.count && ranges[low].lowerBound <= range.lowerBound && range.upperBound <= ranges[low].upperBound
    }

    /// The `COFFER_LOST` form: "3,5-9".
    public var text: String {
        ranges.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }

    /// Parses the `COFFER_LOST` form; parts that are not a number or a
    /// rising pair of numbers are left out.
    public init(text: String) {
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            guard let low = ends.first.flatMap({ UInt64($0) }) else { continue }
            if ends.count == 1 {
                insert(low)
            } else if ends.count == 2, let high = UInt64(ends[1]), low <= high {
                insert(low...high)
            }
        }
    }
}
