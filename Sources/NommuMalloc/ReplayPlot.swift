// SPDX-License-Identifier: Apache-2.0
//
// SVG charts of a replay: memory over the trace, and the free memory of the buddy allocator
// by order (a stacked area, in bytes) with its largest free block.
import NommuBase

#if canImport(Glibc)
    import Glibc
#endif

/// Plots of replay samples.
public enum ReplayPlot {
    /// Live bytes and bytes held over the trace; `failure`, when given, marks the event of the
    /// first allocation that did not fit.
    public static func memory(_ samples: [ReplaySample], title: String, failure: Int? = nil) -> String {
        let lines = [
            Line(name: "live (asked for)", colour: "#1f77b4", values: samples.map { Double($0.liveBytes) }),
            Line(name: "held (mappings)", colour: "#d62728", values: samples.map { Double($0.heldBytes) }),
        ]
        return chart(title: title, samples: samples, stacked: [], lines: lines, failure: failure)
    }

    /// The allocator's free memory over the trace: a stacked area of the bytes free in blocks of
    /// each order (order 0 at the bottom), and the largest free block as a line: what a request
    /// for one contiguous run can get. `failure` marks the first allocation that did not fit.
    public static func freeBlocks(
        _ samples: [ReplaySample], title: String, pageSize: Int = 4096, failure: Int? = nil
    ) -> String {
        let orders = samples.first?.freeBlocks.count ?? 0
        let stacked = (0..<orders).map { o in
            Line(
                name: "order \(o) (\(shortBytes(Double(pageSize << o))))", colour: orderColour(o, of: orders),
                values: samples.map { Double($0.freeBlocks[o]) * Double(pageSize << o) })
        }
        let largest = samples.map { s -> Double in
            guard let o = s.freeBlocks.lastIndex(where: { $0 > 0 }) else { return 0 }
            return Double(pageSize << o)
        }
        let lines = [Line(name: "largest free block", colour: "#000000", values: largest)]
        return chart(title: title, samples: samples, stacked: stacked, lines: lines, failure: failure)
    }

    struct Line {
        var name: String
        var colour: String
        var values: [Double]
    }

    /// Light to dark along the orders: small blocks pale, large ones deep.
    static func orderColour(_ o: Int, of n: Int) -> String {
        let t = n > 1 ? Double(o) / Double(n - 1) : 0
        let (r, g, b) = (198.0 - 190 * t, 219.0 - 171 * t, 239.0 - 132 * t)  // #c6dbef → #08306b
        func hex(_ v: Double) -> String {
            let s = String(Int(v.rounded()), radix: 16)
            return s.count < 2 ? "0" + s : s
        }
        return "#" + hex(r) + hex(g) + hex(b)
    }

    /// `max` rounded up to a nice step (1, 2 or 5 × 10^k) and the ticks below it.
    package static func niceTicks(_ max: Double, count: Int = 5) -> (top: Double, ticks: [Double]) {
        guard max > 0, max.isFinite else { return (1, [0, 1]) }
        let rough = max / Double(count)
        let power = pow10(Int(log10(rough).rounded(.down)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? 10 * power
        let top = (max / step).rounded(.up) * step
        return (top, stride(from: 0.0, through: top + step / 2, by: step).map { $0 })
    }

    static func pow10(_ k: Int) -> Double {
        var v = 1.0
        if k >= 0 { for _ in 0..<k { v *= 10 } } else { for _ in 0..<(-k) { v /= 10 } }
        return v
    }

    /// Bytes as a short label: 0, 512 B, 64 KiB, 1.5 MiB, 2 GiB.
    static func shortBytes(_ v: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var x = v
        var u = 0
        while x >= 1024 && u < units.count - 1 {
            x /= 1024
            u += 1
        }
        if x == 0 { return "0" }
        let text = x == x.rounded() ? String(Int(x)) : String((x * 10).rounded() / 10)
        return text + " " + units[u]
    }

    /// An event count as a short label: 0, 500, 250k, 1.5M.
    static func shortCount(_ v: Double) -> String {
        func trim(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String((x * 10).rounded() / 10) }
        if v >= 1_000_000 { return trim(v / 1_000_000) + "M" }
        if v >= 1000 { return trim(v / 1000) + "k" }
        return trim(v)
    }

    static func chart(
        title: String, samples: [ReplaySample], stacked: [Line], lines: [Line], failure: Int?
    ) -> String {
        let (w, h) = (800.0, 440.0)
        let (left, right, top, bottom) = (80.0, 580.0, 40.0, 380.0)
        let (xTop, xTicks) = niceTicks(Double(max(1, samples.last?.event ?? 1)))
        var highest = lines.flatMap(\.values).max() ?? 0
        for i in samples.indices { highest = max(highest, stacked.reduce(0) { $0 + $1.values[i] }) }
        // Byte ticks round in the unit the top is in (KiB, MiB, …): 2 MiB steps, not 1.9 MiB.
        var unit = 1.0
        while highest / unit >= 1024 * 4 && unit < pow10(12) { unit *= 1024 }
        let scaled = niceTicks(max(1, highest / unit))
        let (yTop, yTicks) = (scaled.top * unit, scaled.ticks.map { $0 * unit })
        func x(_ e: Double) -> Double { left + e / xTop * (right - left) }
        func y(_ v: Double) -> Double { bottom - v / yTop * (bottom - top) }
        func f(_ v: Double) -> String { String(Int((v * 10).rounded())).withDecimal() }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" "
        out += "font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">\(xmlEscape(title))</text>\n"
        out += "<g stroke=\"#dddddd\">\n"
        for v in yTicks { out += "<line x1=\"\(f(left))\" y1=\"\(f(y(v)))\" x2=\"\(f(right))\" y2=\"\(f(y(v)))\"/>\n" }
        out += "</g>\n"
        // The stacked areas, order 0 at the bottom.
        var base = [Double](repeating: 0, count: samples.count)
        for (i, area) in stacked.enumerated() {
            let upper = zip(base, area.values).map(+)
            var d = ""
            for (k, s) in samples.enumerated() {
                d += (k == 0 ? "M" : "L") + "\(f(x(Double(s.event)))),\(f(y(upper[k])))"
            }
            for (k, s) in samples.enumerated().reversed() { d += "L\(f(x(Double(s.event)))),\(f(y(base[k])))" }
            if !samples.isEmpty {
                out += "<path d=\"\(d)Z\" fill=\"\(area.colour)\" stroke=\"none\"/>\n"
            }
            base = upper
            let ly = top + 10 + Double(stacked.count - 1 - i) * 16 + Double(lines.count) * 18
            out +=
                "<rect x=\"\(f(right + 20))\" y=\"\(f(ly - 6))\" width=\"20\" height=\"11\" fill=\"\(area.colour)\"/>\n"
            out += "<text x=\"\(f(right + 46))\" y=\"\(f(ly + 4))\">\(xmlEscape(area.name))</text>\n"
        }
        for (i, line) in lines.enumerated() {
            let points = zip(samples, line.values).map { "\(f(x(Double($0.event)))),\(f(y($1)))" }
            out += "<polyline fill=\"none\" stroke=\"\(line.colour)\" stroke-width=\"1.5\" "
            out += "points=\"\(points.joined(separator: " "))\"/>\n"
            let ly = top + 10 + Double(i) * 18
            out += "<line x1=\"\(f(right + 20))\" y1=\"\(f(ly))\" x2=\"\(f(right + 40))\" y2=\"\(f(ly))\" "
            out += "stroke=\"\(line.colour)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(f(right + 46))\" y=\"\(f(ly + 4))\">\(xmlEscape(line.name))</text>\n"
        }
        if let failure, Double(failure) <= xTop {
            let xx = x(Double(failure))
            out += "<line x1=\"\(f(xx))\" y1=\"\(f(top))\" x2=\"\(f(xx))\" y2=\"\(f(bottom))\" stroke=\"#d62728\" "
            out += "stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>\n"
            out += "<text x=\"\(f(xx + 4))\" y=\"\(f(top + 12))\" fill=\"#d62728\">first failure</text>\n"
        }
        out += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        for v in yTicks {
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(shortBytes(v))</text>\n"
        }
        for e in xTicks {
            out += "<text x=\"\(f(x(e)))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(shortCount(e))</text>\n"
        }
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 36))\" text-anchor=\"middle\">"
        out += "events replayed</text>\n"
        return out + "</svg>\n"
    }
}

extension String {
    /// "1234" (tenths) → "123.4".
    fileprivate func withDecimal() -> String {
        var digits = self
        let negative = digits.hasPrefix("-")
        if negative { digits.removeFirst() }
        while digits.count < 2 { digits = "0" + digits }
        let r = String(digits.dropLast()) + "." + String(digits.suffix(1))
        return negative ? "-" + r : r
    }
}
