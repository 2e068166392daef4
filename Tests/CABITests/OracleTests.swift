// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// One case's output: its result lines as (what, value), in order. A `/proc` maps block is one
/// entry whose value holds its lines; a repeated `what` gets `#2`, `#3`, … appended.
struct OracleCase: Equatable {
    var results: [(what: String, value: String)] = []
    static func == (a: OracleCase, b: OracleCase) -> Bool {
        a.results.elementsEqual(b.results) { $0.what == $1.what && $0.value == $1.value }
    }
}

/// Parses the oracle's output format (`@@ case NAME`, `@ what: value`, `@   maps line`,
/// `@@ end`; `#` lines are comments) into cases by name, in order.
func parseOracle(_ text: String) -> [(name: String, case: OracleCase)] {
    var out: [(name: String, case: OracleCase)] = []
    var seen: [String: Int] = [:]
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("@@ case ") {
            out.append((String(line.dropFirst(8)), OracleCase()))
            seen = [:]
        } else if line.hasPrefix("@@ "), !out.isEmpty {
            out[out.count - 1].case.results.append(("@@", String(line.dropFirst(3))))
        } else if line.hasPrefix("@   "), !out.isEmpty, var last = out[out.count - 1].case.results.popLast() {
            last.value += " / " + line.dropFirst(4)
            out[out.count - 1].case.results.append(last)
        } else if line.hasPrefix("@ "), !out.isEmpty, let colon = line.range(of: ": ") {
            var what = String(line[line.index(line.startIndex, offsetBy: 2)..<colon.lowerBound])
            let n = seen[what, default: 0] + 1
            seen[what] = n
            if n > 1 { what += " #\(n)" }
            out[out.count - 1].case.results.append((what, String(line[colon.upperBound...])))
        }
    }
    return out
}

/// A listed difference between the kernel and the model (`Oracle/divergences.md`).
struct Divergence {
    var caseName: String
    /// A result's `what`, or `*` for the whole case (a kernel bug that spoils it).
    var what: String
    var kernel: String
    var model: String
    var kind: String
}

/// The table's rows: `| case | what | Linux 6.1 | model | kind | why |`, values in backquotes.
func parseDivergences(_ text: String) -> [Divergence] {
    var rows: [Divergence] = []
    for line in text.split(separator: "\n") where line.hasPrefix("| `") {
        let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard cells.count >= 6 else { continue }
        func unquote(_ s: String) -> String {
            s.hasPrefix("`") && s.hasSuffix("`") && s.count >= 2 ? String(s.dropFirst().dropLast()) : s
        }
        rows.append(
            Divergence(
                caseName: unquote(cells[0]), what: unquote(cells[1]), kernel: unquote(cells[2]),
                model: unquote(cells[3]), kind: cells[4]))
    }
    return rows
}

/// Every difference between two runs of the cases, as (case, what, kernel's value, model's).
func oracleDifferences(
    kernel: [(name: String, case: OracleCase)], model: [(name: String, case: OracleCase)]
) -> [(caseName: String, what: String, kernel: String, model: String)] {
    var out: [(String, String, String, String)] = []
    let modelCases = Dictionary(model.map { ($0.name, $0.case) }, uniquingKeysWith: { a, _ in a })
    for (name, k) in kernel {
        guard let m = modelCases[name] else {
            out.append((name, "*", "ran", "missing"))
            continue
        }
        let kWhats = k.results.map(\.what)
        let mWhats = m.results.map(\.what)
        if kWhats != mWhats {
            out.append((name, "*", kWhats.joined(separator: ", "), mWhats.joined(separator: ", ")))
            continue
        }
        for (a, b) in zip(k.results, m.results) where a.value != b.value {
            out.append((name, a.what, a.value, b.value))
        }
    }
    return out
}

@Suite("The kernel oracle: the model against what a real no-MMU Linux said")
struct OracleTests {
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    static func read(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    /// The model's side: `nommu-oracle-host` with `arguments`, parsed.
    static func model(_ arguments: [String] = []) throws -> [(name: String, case: OracleCase)] {
        let (status, output) = try CProgramTests.run("nommu-oracle-host", arguments)
        #expect(status == 0)
        return parseOracle(output)
    }

    @Test("every case agrees with Linux 6.1's golden file, or its difference is listed with a reason")
    func modelAgainstGolden() throws {
        let kernel = parseOracle(try Self.read("Oracle/golden/linux-6.1-riscv64.txt"))
        let model = try Self.model()
        #expect(kernel.count >= 50, "the golden file has \(kernel.count) cases")
        #expect(kernel.map(\.name) == model.map(\.name), "the golden file and the cases list the same cases")
        let listed = parseDivergences(try Self.read("Oracle/divergences.md"))
        let kinds: Set = ["document", "later kernel", "kernel bug"]
        let unknown = listed.filter { !kinds.contains($0.kind) }.map { "\($0.caseName) | \($0.what): kind \($0.kind)" }
        #expect(unknown.isEmpty, "rows of no known kind:\n\(unknown.joined(separator: "\n"))")
        var unexplained: [String] = []
        var matched = Set<Int>()
        for d in oracleDifferences(kernel: kernel, model: model) {
            let i = listed.firstIndex {
                $0.caseName == d.caseName
                    && ($0.what == "*" || ($0.what == d.what && $0.kernel == d.kernel && $0.model == d.model))
            }
            if let i {
                matched.insert(i)
            } else {
                unexplained.append("\(d.caseName) | \(d.what) | kernel `\(d.kernel)` | model `\(d.model)`")
            }
        }
        let stale = listed.indices.filter { !matched.contains($0) }.map {
            "\(listed[$0].caseName) | \(listed[$0].what): listed, but the two agree now"
        }
        #expect(
            unexplained.isEmpty, "differences not in Oracle/divergences.md:\n\(unexplained.joined(separator: "\n"))")
        #expect(stale.isEmpty, "\(stale.joined(separator: "\n"))")
    }

    @Test(
        "with the linux-6.1 reference, the model differs from the kernel only where a kernel bug is listed")
    func linux61Reference() throws {
        let kernel = parseOracle(try Self.read("Oracle/golden/linux-6.1-riscv64.txt"))
        let model = try Self.model(["--reference", "linux-6.1"])
        let allowed = parseDivergences(try Self.read("Oracle/divergences.md")).filter {
            $0.kind == "kernel bug"
        }
        let left = oracleDifferences(kernel: kernel, model: model).filter { d in
            !allowed.contains { $0.caseName == d.caseName && ($0.what == "*" || $0.what == d.what) }
        }
        let text = left.map { "\($0.caseName) | \($0.what) | kernel `\($0.kernel)` | model `\($0.model)`" }
        #expect(left.isEmpty, "linux-6.1 answers that are not the kernel's:\n\(text.joined(separator: "\n"))")
    }

    @Test("the parsers: repeated names, maps blocks, a missing end, the table's cells")
    func parsers() {
        let text = """
            # comment
            @@ case a
            @ x: 1
            @ x: 2
            @ maps: 2 lines
            @   0x1000 rw-p 00000000 0 0
            @   0x2000 r--s 00000000 D I /tmp/f
            @@ end
            @@ case b
            @@ no end (the kernel did not finish the case)
            """
        let cases = parseOracle(text)
        #expect(cases.map(\.name) == ["a", "b"])
        #expect(cases[0].case.results.map(\.what) == ["x", "x #2", "maps", "@@"])
        #expect(
            cases[0].case.results[2].value
                == "2 lines / 0x1000 rw-p 00000000 0 0 / 0x2000 r--s 00000000 D I /tmp/f")
        let model = parseOracle(text.replacingOccurrences(of: "@ x: 2", with: "@ x: 3"))
        let diff = oracleDifferences(kernel: cases, model: model)
        #expect(diff.count == 1 && diff[0].what == "x #2" && diff[0].kernel == "2" && diff[0].model == "3")
        let rows = parseDivergences(
            "| case | what |\n|---|---|\n| `a` | `x #2` | `2` | `3` | document | why |\n")
        #expect(rows.count == 1 && rows[0].what == "x #2" && rows[0].model == "3" && rows[0].kind == "document")
    }
}
