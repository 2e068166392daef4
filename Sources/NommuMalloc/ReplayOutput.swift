// SPDX-License-Identifier: Apache-2.0
//
// Replay reports as a table, JSON (the keys listed on `json(pageSize:)`) or CSV.
import NommuBase

extension ReplayReport {
    /// The JSON object of one report: `trace`, `policy`, `events`, `ns_per_event`,
    /// `glibc_ns_per_event`, `peak_live_bytes`, `peak_pages_held`, `slack_pages`,
    /// `largest_free_block_bytes`, `first_failure` (null, or `event`, `size` and
    /// `largest_free_block_bytes`), and more.
    public func json(pageSize: Int) -> String {
        var fields: [(String, String)] = [
            ("trace", jsonString(trace)), ("policy", jsonString(policy.rawValue)), ("events", String(events)),
            ("wall_ms", number(Double(nanoseconds) / 1e6)), ("ns_per_event", number(nsPerEvent)),
            ("glibc_ns_per_event", glibcNsPerEvent.map(number) ?? "null"),
            ("peak_live_bytes", String(peakLiveBytes)), ("peak_pages_held", String(peakPagesHeld)),
            ("peak_pages_in_call", String(peakPagesInCall)),
            ("overhead", number(overhead(pageSize: pageSize))),
            // The system's, at its peak: in the total's row when several traces shared the system.
            ("slack_pages", sharedSystem ? "null" : String(slackPages)),
            ("trimmed_pages", sharedSystem ? "null" : String(trimmedPages)),
            ("mmap_copy_peak_pages", sharedSystem ? "null" : String(mmapCopyPeakPages)),
            ("largest_free_block_bytes", sharedSystem ? "null" : String(largestFreeBlockBytes)),
            ("buddyinfo", sharedSystem ? "null" : jsonString(buddyinfo)),
            ("mmaps", String(mmaps)), ("munmaps", String(munmaps)), ("unknown_frees", String(unknownFrees)),
        ]
        if let f = firstFailure {
            fields.append(
                (
                    "first_failure",
                    "{\"event\": \(f.event), \"size\": \(f.size), \"mmap_bytes\": \(f.mmapBytes), "
                        + "\"largest_free_block_bytes\": \(f.largestFreeBlockBytes)}"
                ))
        } else {
            fields.append(("first_failure", "null"))
        }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}

/// Formats reports.
public enum ReplayFormat {
    /// `[ {…}, … ]`.
    public static func json(_ reports: [ReplayReport], pageSize: Int) -> String {
        "[\n" + reports.map { "  " + $0.json(pageSize: pageSize) }.joined(separator: ",\n") + "\n]\n"
    }

    /// A header line and one line per report.
    public static func csv(_ reports: [ReplayReport], pageSize: Int) -> String {
        var out =
            "trace,policy,events,ns_per_event,glibc_ns_per_event,peak_live_bytes,peak_pages_held,peak_pages_in_call,overhead,"
            + "slack_pages,trimmed_pages,mmap_copy_peak_pages,largest_free_block_bytes,mmaps,munmaps,"
            + "first_failure_event,first_failure_size\n"
        for r in reports {
            var cells: [String] = [r.trace, r.policy.rawValue, String(r.events), number(r.nsPerEvent)]
            cells.append(r.glibcNsPerEvent.map(number) ?? "")
            cells += [String(r.peakLiveBytes), String(r.peakPagesHeld), String(r.peakPagesInCall)]
            cells.append(number(r.overhead(pageSize: pageSize)))
            // The system's figures are the total's row's when several traces shared the system.
            let system = [r.slackPages, r.trimmedPages, r.mmapCopyPeakPages, r.largestFreeBlockBytes]
            cells += system.map { r.sharedSystem ? "" : String($0) }
            cells += [String(r.mmaps), String(r.munmaps)]
            cells.append(r.firstFailure.map { String($0.event) } ?? "")
            cells.append(r.firstFailure.map { String($0.size) } ?? "")
            out += cells.joined(separator: ",") + "\n"
        }
        return out
    }

    /// A table for people, with the buddyinfo at the peak and any failure spelled out.
    public static func table(_ reports: [ReplayReport], pageSize: Int, arenaBytes: Int) -> String {
        let header = [
            "trace", "events", "wall ms", "ns/event", "glibc", "ratio", "peak live", "peak held", "overhead",
            "in a call", "mmaps",
        ]
        var rows: [[String]] = []
        for r in reports {
            let ratio = r.glibcNsPerEvent.map { $0 > 0 ? number(r.nsPerEvent / $0) : "" } ?? ""
            var row: [String] = [r.trace, String(r.events), number(Double(r.nanoseconds) / 1e6), number(r.nsPerEvent)]
            row += [r.glibcNsPerEvent.map(number) ?? "-", ratio, kib(r.peakLiveBytes)]
            row += [kib(r.peakPagesHeld * pageSize), number(r.overhead(pageSize: pageSize))]
            row += [kib(r.peakPagesInCall * pageSize), String(r.mmaps)]
            rows.append(row)
        }
        var out = alignedTable(header: header, rows: rows)
        if let last = reports.last {
            out += "\npolicy \(last.policy.rawValue), arena \(arenaBytes >> 10) KiB"
            out +=
                "; at the peak: MmapCopy \(last.mmapCopyPeakPages * pageSize / 1024) kB, slack \(last.slackPages) pages"
            out += ", largest free block \(kib(last.largestFreeBlockBytes)); pages trimmed \(last.trimmedPages)\n"
            out += "/proc/buddyinfo at the peak: \(last.buddyinfo)\n"
        }
        for r in reports where r.trace != "total" {
            if let f = r.firstFailure {
                out += "\(r.trace): did not fit: event \(f.event) asked for \(f.size) bytes"
                if f.mmapBytes > 0 { out += " (the malloc asked mmap for \(f.mmapBytes) bytes)" }
                out += "; the largest free block was \(kib(f.largestFreeBlockBytes))\n"
            }
            if r.unknownFrees > 0 { out += "\(r.trace): \(r.unknownFrees) frees of unknown IDs skipped\n" }
        }
        return out
    }

    static func kib(_ bytes: Int) -> String {
        bytes >= 10 << 20 ? "\(bytes >> 20) MiB" : bytes >= 10 << 10 ? "\(bytes >> 10) KiB" : "\(bytes) B"
    }
}

func number(_ v: Double) -> String {
    guard v.isFinite else { return "0" }
    let scaled = (v * 100).rounded() / 100
    var s = String(scaled)
    if s.hasSuffix(".0") { s.removeLast(2) }
    return s
}
