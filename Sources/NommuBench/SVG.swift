// SPDX-License-Identifier: Apache-2.0
//
// A hand-written SVG plot: the sized series as log-log lines (x = bytes, y = median ns), the
// single-size series (pairs, programs) as bars.
import NommuBase

#if canImport(Glibc)
    import Glibc
#endif

/// The colour of `name` in every plot: fixed by the series' place among its kind (sized series
/// one palette, single-size series another), so a series keeps its colour whatever else a run
/// measured.
package func seriesColor(_ name: String) -> String {
    let palette = [
        "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
        "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
    ]
    guard let s = BenchSeries(rawValue: name) else { return "#000000" }
    if s == .memset { return "#000000" }
    let kind = s.isSized ? BenchSeries.sizedSeries : BenchSeries.allCases.filter { !$0.isSized }
    let i = kind.firstIndex(of: s) ?? 0
    return palette[i % palette.count]
}

/// The plot, in up to two panels. Sized series: one polyline with point markers per series on
/// log-log axes (x = bytes, y = median ns), each point with a p10–p90 bar, size ticks (4K …
/// 64M) and decade time ticks (1 ns … 1 s). Single-size series (the pairs and the programs): a
/// bar per series on a log time axis, the median as the bar and p10–p90 as a whisker, labelled
/// with the median. Each series has one colour in every plot (`seriesColor`). Starts with
/// `<svg`, ends with `</svg>`.
public func renderSVG(
    _ results: [BenchResult], title: String = "nommu bench: median time per operation (log-log)"
) -> String {
    let width = 960.0
    let left = 90.0
    let right = width - 220.0

    // Sized series in output order, each with its (bytes, median, p10, p90) points.
    var order: [String] = []
    var points: [String: [(bytes: Int, median: Double, p10: Double, p90: Double)]] = [:]
    var singles: [BenchResult] = []
    for r in results {
        guard let series = BenchSeries(rawValue: r.name) else { continue }
        guard series.isSized else {
            if r.medianNs > 0 && r.medianNs.isFinite { singles.append(r) }
            continue
        }
        if points[r.name] == nil {
            order.append(r.name)
            points[r.name] = []
        }
        points[r.name]!.append((r.bytes, r.medianNs, r.p10Ns, r.p90Ns))
    }
    let linePanel = order.isEmpty ? 0.0 : 540.0
    let barHeight = 22.0
    let barPanel = singles.isEmpty ? 0.0 : 90.0 + Double(singles.count) * barHeight
    let height = 40.0 + linePanel + barPanel + (linePanel == 0 && barPanel == 0 ? 40 : 0)
    func f(_ v: Double) -> String { fixed(v, 1) }

    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
    s += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
    s += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
    s += "<text x=\"\(f(width / 2))\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
    s += xmlEscape(title) + "</text>\n"
    if linePanel > 0 {
        s += sizedPanel(order: order, points: points, top: 60, bottom: 40 + linePanel - 70, left: left, right: right)
    }
    if barPanel > 0 {
        s += singlesPanel(singles, top: 40 + linePanel + 30, rowHeight: barHeight, left: left + 120, right: right)
    }
    if linePanel == 0 && barPanel == 0 {
        s += "<text x=\"\(f(width / 2))\" y=\"60\" text-anchor=\"middle\">no results</text>\n"
    }
    s += "</svg>"
    return s
}

/// Log-log lines of the sized series, with p10–p90 bars and a legend.
private func sizedPanel(
    order: [String], points: [String: [(bytes: Int, median: Double, p10: Double, p90: Double)]], top: Double,
    bottom: Double, left: Double, right: Double
) -> String {
    let plotted = order.flatMap { points[$0]! }
    let sizes = Array(Set(plotted.map(\.bytes))).sorted()
    let times = plotted.flatMap { [$0.median, $0.p10, $0.p90] }.filter { $0 > 0 && $0.isFinite }
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
    var s = "<g stroke=\"#dddddd\" stroke-width=\"1\">\n"
    for b in sizes {
        s += "<line x1=\"\(f(x(b)))\" y1=\"\(f(top))\" x2=\"\(f(x(b)))\" y2=\"\(f(bottom))\"/>\n"
    }
    let decades = Array(Int(ly0)...max(Int(ly0), Int(ly1)))
    for k in decades {
        let yy = y(pow(10, Double(k)))
        s += "<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(right))\" y2=\"\(f(yy))\"/>\n"
    }
    s += "</g>\n<g stroke=\"black\" stroke-width=\"1\">\n"
    s += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\"/>\n"
    s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\"/>\n"
    s += "</g>\n<g text-anchor=\"middle\">\n"
    for b in sizes {
        s += "<text x=\"\(f(x(b)))\" y=\"\(f(bottom + 18))\">\(xmlEscape(shortSizeLabel(b)))</text>\n"
    }
    s += "</g>\n<g text-anchor=\"end\">\n"
    for k in decades {
        s += "<text x=\"\(f(left - 8))\" y=\"\(f(y(pow(10, Double(k))) + 4))\">\(xmlEscape(decadeLabel(k)))</text>\n"
    }
    s += "</g>\n"
    s += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 45))\" text-anchor=\"middle\">"
    s += "size (bytes, log scale); bars: 10th to 90th percentile</text>\n"
    s += "<text x=\"22\" y=\"\(f((top + bottom) / 2))\" text-anchor=\"middle\" "
    s += "transform=\"rotate(-90 22 \(f((top + bottom) / 2)))\">median time per operation (log scale)</text>\n"
    for (i, name) in order.enumerated() {
        let color = seriesColor(name)
        let pts = points[name]!.filter { $0.median > 0 && $0.median.isFinite }.sorted { $0.bytes < $1.bytes }
        let dash = name == BenchSeries.memset.rawValue ? " stroke-dasharray=\"6 4\"" : ""
        s += "<g>\n<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\""
        s += pts.map { "\(f(x($0.bytes))),\(f(y($0.median)))" }.joined(separator: " ") + "\"/>\n"
        for p in pts {
            if p.p10 > 0 && p.p90 >= p.p10 && p.p90.isFinite {
                let (xx, lo, hi) = (x(p.bytes), y(p.p90), y(p.p10))
                s += "<path d=\"M\(f(xx)),\(f(lo))V\(f(hi))M\(f(xx - 3)),\(f(lo))h6M\(f(xx - 3)),\(f(hi))h6\" "
                s += "stroke=\"\(color)\" stroke-width=\"1\" fill=\"none\"/>\n"
            }
            s += "<circle cx=\"\(f(x(p.bytes)))\" cy=\"\(f(y(p.median)))\" r=\"3.5\" fill=\"\(color)\">"
            s += "<title>\(xmlEscape(name)) \(xmlEscape(formatBytes(p.bytes))): "
            s += "\(xmlEscape(formatNanoseconds(p.median)))</title></circle>\n"
        }
        s += "</g>\n"
        let ly = top + 10 + Double(i) * 22
        s += "<line x1=\"\(f(right + 20))\" y1=\"\(f(ly))\" x2=\"\(f(right + 50))\" y2=\"\(f(ly))\" "
        s += "stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
        s += "<circle cx=\"\(f(right + 35))\" cy=\"\(f(ly))\" r=\"3.5\" fill=\"\(color)\"/>\n"
        s += "<text x=\"\(f(right + 58))\" y=\"\(f(ly + 4))\">\(xmlEscape(name))</text>\n"
    }
    return s
}

/// A bar per single-size series (the pairs and the programs) on a log time axis: the median as
/// the bar, p10–p90 as a whisker, the series' name on the left and its median on the right.
private func singlesPanel(_ rows: [BenchResult], top: Double, rowHeight: Double, left: Double, right: Double)
    -> String
{
    let times = rows.flatMap { [$0.medianNs, $0.p10Ns, $0.p90Ns] }.filter { $0 > 0 && $0.isFinite }
    let lx0 = (log10(times.min() ?? 1)).rounded(.down)
    var lx1 = (log10(times.max() ?? 10)).rounded(.up)
    if lx1 <= lx0 { lx1 = lx0 + 1 }
    func x(_ ns: Double) -> Double { left + (log10(max(ns, pow(10, lx0))) - lx0) / (lx1 - lx0) * (right - left) }
    func f(_ v: Double) -> String { fixed(v, 1) }
    let bottom = top + Double(rows.count) * rowHeight
    var s = "<text x=\"\(f(left))\" y=\"\(f(top - 10))\" font-weight=\"bold\">"
    s += "single-size series: median (bar) and 10th to 90th percentile (whisker), log scale</text>\n"
    s += "<g stroke=\"#dddddd\" stroke-width=\"1\">\n"
    for k in Int(lx0)...Int(lx1) {
        let xx = x(pow(10, Double(k)))
        s += "<line x1=\"\(f(xx))\" y1=\"\(f(top))\" x2=\"\(f(xx))\" y2=\"\(f(bottom))\"/>\n"
    }
    s += "</g>\n<g text-anchor=\"middle\">\n"
    for k in Int(lx0)...Int(lx1) {
        s += "<text x=\"\(f(x(pow(10, Double(k)))))\" y=\"\(f(bottom + 16))\">\(xmlEscape(decadeLabel(k)))</text>\n"
    }
    s += "</g>\n"
    for (i, r) in rows.enumerated() {
        let color = seriesColor(r.name)
        let yy = top + Double(i) * rowHeight
        let mid = yy + rowHeight / 2
        s += "<text x=\"\(f(left - 8))\" y=\"\(f(mid + 4))\" text-anchor=\"end\">\(xmlEscape(r.name))</text>\n"
        s += "<rect x=\"\(f(left))\" y=\"\(f(yy + 4))\" width=\"\(f(max(1, x(r.medianNs) - left)))\" "
        s += "height=\"\(f(rowHeight - 8))\" fill=\"\(color)\" fill-opacity=\"0.75\">"
        s += "<title>\(xmlEscape(r.name)): \(xmlEscape(formatNanoseconds(r.medianNs)))</title></rect>\n"
        if r.p10Ns > 0 && r.p90Ns >= r.p10Ns && r.p90Ns.isFinite {
            s += "<path d=\"M\(f(x(r.p10Ns))),\(f(mid))H\(f(x(r.p90Ns)))M\(f(x(r.p10Ns))),\(f(mid - 4))v8"
            s += "M\(f(x(r.p90Ns))),\(f(mid - 4))v8\" stroke=\"black\" stroke-width=\"1\" fill=\"none\"/>\n"
        }
        s += "<text x=\"\(f(right + 8))\" y=\"\(f(mid + 4))\">\(xmlEscape(formatNanoseconds(r.medianNs)))</text>\n"
    }
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
