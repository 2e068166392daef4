// SPDX-License-Identifier: Apache-2.0
//
// `nommu-trace v1`: one event a line after a `# nommu-trace v1` header. IDs name live
// blocks: `m ID SIZE` malloc, `c ID SIZE` calloc, `p ID ALIGN SIZE` aligned allocation,
// `r OLD NEW SIZE` realloc (OLD freed, NEW allocated), `f ID` free.
// The whole format, with what the reader does with odd input: docs/TRACE-FORMAT.md.
import NommuBase

/// A parsed trace: events in arrays, with trace IDs turned into dense slots (a slot is
/// reused once its block is freed), so a replay indexes a table instead of hashing.
public struct Trace: Sendable {
    /// What an event does.
    public enum Operation: UInt8, Sendable {
        case malloc, calloc, memalign, realloc, free
    }

    /// A line that is not an event, with its number.
    public struct ParseError: Error, Sendable, CustomStringConvertible, Equatable {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public var name: String
    public var operations: [Operation] = []
    /// The slot an event allocates into or frees (realloc: the new block's slot).
    public var slots: [Int32] = []
    /// realloc: the old block's slot (-1: none, a realloc of NULL).
    public var oldSlots: [Int32] = []
    public var sizes: [Int] = []
    public var alignments: [Int] = []
    /// Slots needed (the most blocks live at once).
    public var slotCount = 0
    /// Frees (and reallocs) of IDs that were not live: reported and skipped.
    public var unknownFrees = 0
    public var warnings: [String] = []

    public var count: Int { operations.count }

    /// At most the first 60 characters of `text`, for an error message (a line can be megabytes).
    static func quoted<S: StringProtocol>(_ text: S) -> String {
        let head = text.prefix(61)
        return head.count > 60 ? String(head.prefix(60)) + "…" : String(head)
    }

    /// Parses a trace. - Throws: `ParseError` with the line number of the first malformed line.
    public static func parse(name: String, _ bytes: [UInt8]) throws(ParseError) -> Trace {
        var t = Trace(name: name)
        var live: [UInt64: Int32] = [:]
        var freeSlots: [Int32] = []
        func newSlot() -> Int32 {
            if let s = freeSlots.popLast() { return s }
            t.slotCount += 1
            return Int32(t.slotCount - 1)
        }
        var lineNumber = 0
        var i = 0
        var sawHeader = false
        let n = bytes.count
        var fields: [Substring] = []
        while i < n {
            lineNumber += 1
            var j = i
            while j < n && bytes[j] != 0x0A { j += 1 }
            // A line may end in CR LF (a trace written or copied on Windows): the CR goes.
            let end = j > i && bytes[j - 1] == 0x0D ? j - 1 : j
            let line = String(decoding: bytes[i..<end], as: UTF8.self)
            i = j + 1
            if !sawHeader {
                guard line.trimmingBlanks() == "# nommu-trace v1" else {
                    throw ParseError(line: lineNumber, message: "missing the '# nommu-trace v1' header")
                }
                sawHeader = true
                continue
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            // No event has more than four fields: a fifth piece is the rest of the line, so a
            // 20 MB line of numbers costs one string, not millions of fields.
            fields = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true)
            guard !fields.isEmpty else { continue }  // a line of blanks (found by fuzz-trace)
            func number(_ k: Int) throws(ParseError) -> UInt64 {
                guard k < fields.count, let v = UInt64(fields[k]) else {
                    throw ParseError(line: lineNumber, message: "expected a number in '\(quoted(line))'")
                }
                return v
            }
            func size(_ k: Int) throws(ParseError) -> Int {
                let v = try number(k)
                guard v <= UInt64(Int.max) else { throw ParseError(line: lineNumber, message: "size out of range") }
                return Int(v)
            }
            func arity(_ k: Int) throws(ParseError) {
                guard fields.count == k else {
                    throw ParseError(
                        line: lineNumber, message: "'\(quoted(fields[0]))' takes \(k - 1) fields: '\(quoted(line))'")
                }
            }
            func allocate(_ id: UInt64) throws(ParseError) -> Int32 {
                guard live[id] == nil else { throw ParseError(line: lineNumber, message: "ID \(id) is already live") }
                let s = newSlot()
                live[id] = s
                return s
            }
            func warn(_ what: String) {
                t.unknownFrees += 1
                if t.warnings.count < 10 { t.warnings.append("line \(lineNumber): \(what)") }
            }
            switch fields[0] {
            case "m", "c":
                try arity(3)
                let sz = try size(2)
                let s = try allocate(try number(1))
                t.append(fields[0] == "m" ? .malloc : .calloc, slot: s, old: -1, size: sz, alignment: 16)
            case "p":
                try arity(4)
                let alignment = try size(2)
                guard alignment > 0, alignment & (alignment - 1) == 0 else {
                    throw ParseError(line: lineNumber, message: "alignment \(alignment) is not a power of two")
                }
                let sz = try size(3)
                let s = try allocate(try number(1))
                t.append(.memalign, slot: s, old: -1, size: sz, alignment: alignment)
            case "r":
                try arity(4)
                let old = try number(1)
                let sz = try size(3)
                let newID = try number(2)
                var oldSlot: Int32 = -1
                if let o = live.removeValue(forKey: old) {
                    oldSlot = o
                    freeSlots.append(o)
                } else if old != 0 {
                    warn("realloc of unknown ID \(old): replayed as malloc")
                }
                let s = try allocate(newID)
                t.append(.realloc, slot: s, old: oldSlot, size: sz, alignment: 16)
            case "f":
                try arity(2)
                let id = try number(1)
                guard let s = live.removeValue(forKey: id) else {
                    warn("free of unknown ID \(id): skipped")
                    continue
                }
                freeSlots.append(s)
                t.append(.free, slot: s, old: -1, size: 0, alignment: 0)
            default:
                throw ParseError(line: lineNumber, message: "unknown event '\(quoted(fields[0]))'")
            }
        }
        guard sawHeader else { throw ParseError(line: 1, message: "empty trace: missing the header") }
        return t
    }

    private mutating func append(_ op: Operation, slot: Int32, old: Int32, size: Int, alignment: Int) {
        operations.append(op)
        slots.append(slot)
        oldSlots.append(old)
        sizes.append(size)
        alignments.append(alignment)
    }
}
