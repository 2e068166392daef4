// SPDX-License-Identifier: Apache-2.0

/// Rows laid out in columns two blanks apart, after a header line when there is one: the
/// first column left-aligned, the others right-aligned (or all left-aligned). Rows may be
/// of different lengths.
package func alignedTable(header: [String]? = nil, rows: [[String]], allLeft: Bool = false) -> String {
    let all = (header.map { [$0] } ?? []) + rows
    var widths: [Int] = []
    for row in all {
        for (i, c) in row.enumerated() {
            if i == widths.count { widths.append(0) }
            widths[i] = max(widths[i], c.count)
        }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            if i == 0 || allLeft { return i == cells.count - 1 ? c : c + pad }
            return pad + c
        }.joined(separator: "  ")
    }
    return all.map(line).joined(separator: "\n") + "\n"
}
