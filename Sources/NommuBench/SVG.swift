// SPDX-License-Identifier: Apache-2.0
//
// A hand-written SVG line plot of the sized series: log-log axes, x = bytes, y = median ns.
import NommuBase

#if canImport(Glibc)
    import Glibc
#endif

/// The plot: one polyline with point markers per sized series present in `results`, a
/// legend, size ticks (4K … 64M), decade time ticks (1 ns, 10 ns, … 1 s) and a title.
/// Pair series are not plotted (they have one size). Starts with `<svg`, ends with `</svg>`.
public func renderSVG(
    _ results: [BenchResult], title: String = "nommu bench: median time per operation (log-log)"
) -> String {
    let width = 960.0
    let height = 600.0
    let left = 90.0
    let right = width - 220.0
    let top = 60.0
    let bottom = height - 70.0

    // Sized series in output order, each with its (bytes, median) points.
    var order: [String] = []
    var points: [String: [(Int, Double)]] = [:]
    for r in results {
        guard let s = BenchSeries(rawValue: r.name), s.isSized else { continue }
        if points[r.name] == nil {
            order.append(r.name)
            points[r.name] = []
        }
        points[r.name]!.append((r.bytes, r.medianNs))
    }
    let plotted = order.flatMap { points[$0]! }
    let sizes = Array(Set(plotted.map(\.0))).sorted()
    let times = plotted.map(\.1).filter { $0 > 0 && $0.isFinite }

    var lx0 = log10(Double(sizes.first ?? 4096))
    var lx1 = log10(Double(sizes.last ?? 4096))
    if lx1 - lx0 < 1e-9 {
        lx0 -= 0.5
        lx1 += 0.5
    } else {
        let pad = (lx1 - lx0) * 0.04
        lx0 -= pad
        lx1 += pad
    }
    var ly0 = (log10(times.min() ?? 1)).rounded(.down)
    var ly1 = (log10(times.max() ?? 10)).rounded(.up)
    if ly1 <= ly0 { ly1 = ly0 + 1 }
    if !ly0.isFinite || !ly1.isFinite {
        ly0 = 0
        ly1 = 1
    }
    func x(_ bytes: Int) -> Double { left + (log10(Double(bytes)) - lx0) / (lx1 - lx0) * (right - left) }
    func y(_ ns: Double) -> Double { bottom - (log10(ns) - ly0) / (ly1 - ly0) * (bottom - top) }
    func f(_ v: Double) -> String { fixed(v, 1) }

    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
    s += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
    s += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
    s += "<text x=\"\(f(width / 2))\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
    s += xmlEscape(title) + "</text>\n"

    // Grid and ticks.
    s += "<g stroke=\"#dddddd\" stroke-width=\"1\">\n"
    for b in sizes {
        s += "<line x1=\"\(f(x(b)))\" y1=\"\(f(top))\" x2=\"\(f(x(b)))\" y2=\"\(f(bottom))\"/>\n"
    }
    let decades = Array(Int(ly0)...max(Int(ly0), Int(ly1)))
    for k in decades {
        let yy = y(pow(10, Double(k)))
        s += "<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(right))\" y2=\"\(f(yy))\"/>\n"
    }
    s += "</g>\n"
    s += "<g stroke=\"black\" stroke-width=\"1\">\n"
    s += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\"/>\n"
    s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\"/>\n"
    s += "</g>\n"
    s += "<g text-anchor=\"middle\">\n"
    for b in sizes {
        s += "<text x=\"\(f(x(b)))\" y=\"\(f(bottom + 18))\">\(xmlEscape(shortSizeLabel(b)))</text>\n"
    }
    s += "</g>\n<g text-anchor=\"end\">\n"
    for k in decades {
        s += "<text x=\"\(f(left - 8))\" y=\"\(f(y(pow(10, Double(k))) + 4))\">\(xmlEscape(decadeLabel(k)))</text>\n"
    }
    s += "</g>\n"
    s += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(height - 25))\" text-anchor=\"middle\">"
    s += "size (bytes, log scale)</text>\n"
    s += "<text x=\"22\" y=\"\(f((top + bottom) / 2))\" text-anchor=\"middle\" "
    s += "transform=\"rotate(-90 22 \(f((top + bottom) / 2)))\">median time per operation (log scale)</text>\n"

    // Series.
    let palette = ["#000000", "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
    for (i, name) in order.enumerated() {
        let color = palette[i % palette.count]
        let pts = points[name]!.filter { $0.1 > 0 && $0.1.isFinite }.sorted { $0.0 < $1.0 }
        let dash = name == BenchSeries.memset.rawValue ? " stroke-dasharray=\"6 4\"" : ""
        s += "<g>\n<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\""
        s += pts.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ") + "\"/>\n"
        for p in pts {
            s += "<circle cx=\"\(f(x(p.0)))\" cy=\"\(f(y(p.1)))\" r=\"3.5\" fill=\"\(color)\">"
            s +=
                "<title>\(xmlEscape(name)) \(xmlEscape(formatBytes(p.0))): \(xmlEscape(formatNanoseconds(p.1)))</title>"
            s += "</circle>\n"
        }
        s += "</g>\n"
        // Legend entry.
        let ly = top + 10 + Double(i) * 22
        s += "<line x1=\"\(f(right + 20))\" y1=\"\(f(ly))\" x2=\"\(f(right + 50))\" y2=\"\(f(ly))\" "
        s += "stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
        s += "<circle cx=\"\(f(right + 35))\" cy=\"\(f(ly))\" r=\"3.5\" fill=\"\(color)\"/>\n"
        s += "<text x=\"\(f(right + 58))\" y=\"\(f(ly + 4))\">\(xmlEscape(name))</text>\n"
    }
    s += "</svg>"
    return s
}

/// `10^k` nanoseconds as a label: `1 ns`, `10 ns`, `100 ns`, `1 µs`, … `1 s`, `10 s`.
func decadeLabel(_ k: Int) -> String {
    if k < 0 { return "1e\(k) ns" }
    let units = ["ns", "µs", "ms", "s"]
    let u = min(k / 3, units.count - 1)
    var v = "1"
    for _ in 0..<(k - 3 * u) { v += "0" }
    return v + " " + units[u]
}
