// SPDX-License-Identifier: Apache-2.0
//
// SVG line charts of a replay: memory over the trace, and free blocks per order.
import NommuBase

/// Plots of replay samples.
public enum ReplayPlot {
    /// Live bytes and bytes held over the trace (KiB against events).
    public static func memory(_ samples: [ReplaySample], title: String) -> String {
        chart(
            title: title, yLabel: "KiB", samples: samples,
            series: [
                ("live (asked for)", "#1f77b4", samples.map { Double($0.liveBytes) / 1024 }),
                ("held (mappings)", "#d62728", samples.map { Double($0.heldBytes) / 1024 }),
            ])
    }

    /// Free blocks of each order over the trace.
    public static func freeBlocks(_ samples: [ReplaySample], title: String) -> String {
        let orders = samples.first?.freeBlocks.count ?? 0
        let colours = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#000000",
        ]
        let series = (0..<orders).map { o in
            ("order \(o)", colours[o % colours.count], samples.map { Double($0.freeBlocks[o]) })
        }
        return chart(title: title, yLabel: "free blocks", samples: samples, series: series)
    }

    static func chart(
        title: String, yLabel: String, samples: [ReplaySample], series: [(String, String, [Double])]
    ) -> String {
        let (w, h) = (760.0, 420.0)
        let (left, right, top, bottom) = (70.0, 560.0, 40.0, 370.0)
        let xMax = Double(max(1, samples.last?.event ?? 1))
        let yMax = max(1, series.flatMap(\.2).max() ?? 1) * 1.05
        func x(_ e: Int) -> Double { left + Double(e) / xMax * (right - left) }
        func y(_ v: Double) -> Double { bottom - v / yMax * (bottom - top) }
        func f(_ v: Double) -> String { String(Int((v * 10).rounded())).withDecimal() }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" "
        out += "font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">\(xmlEscape(title))</text>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        for k in 0...4 {
            let v = yMax * Double(k) / 4
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(Int(v.rounded()))</text>\n"
            let e = Int(xMax * Double(k) / 4)
            out += "<text x=\"\(f(x(e)))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(e)</text>\n"
        }
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 34))\" text-anchor=\"middle\">events</text>\n"
        out += "<text x=\"16\" y=\"\(f((top + bottom) / 2))\" transform=\"rotate(-90 16 \(f((top + bottom) / 2)))\" "
        out += "text-anchor=\"middle\">\(xmlEscape(yLabel))</text>\n"
        for (i, (name, colour, values)) in series.enumerated() {
            let points = zip(samples, values).map { "\(f(x($0.event))),\(f(y($1)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
            let ly = top + 10 + Double(i) * 18
            out += "<line x1=\"\(f(right + 20))\" y1=\"\(f(ly))\" x2=\"\(f(right + 40))\" y2=\"\(f(ly))\" "
            out += "stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(f(right + 46))\" y=\"\(f(ly + 4))\">\(xmlEscape(name))</text>\n"
        }
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
