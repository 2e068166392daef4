// SPDX-License-Identifier: Apache-2.0
//
// Text helpers shared by the model, the bench and the malloc lab: escaping for the reports
// they write (JSON, SVG), and trimming of what they read.

/// `s` as a JSON string literal.
package func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// `s` escaped for XML text and attribute values.
package func xmlEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}

extension StringProtocol {
    /// The text without leading and trailing whitespace (blanks, tabs, line ends).
    package func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// The version every tool reports (`nommu --version`, the JSON documents' `version`): the
/// release this tree is working towards.
public enum NommuVersion {
    public static let string = "0.1.0"
}
