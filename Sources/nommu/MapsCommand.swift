// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import NommuBase
import NommuMM
import NommuReports

/// `nommu maps`: a demo session of the address-space model with its `/proc` text.
struct MapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maps",
        abstract: "Show a few processes mapping and unmapping, with /proc/maps and /proc/<pid>/maps after each step.",
        discussion: """
            Examples:
              nommu maps
              nommu maps --trim 0                  # keep the power-of-two slack
              nommu maps --reference linux-6.1     # Linux 6.1's answers where they differ
            """
    )

    @Option(help: "vm.nr_trim_pages for the session (0 keeps power-of-two slack).")
    var trim: Int = 1

    @Option(help: "Whose answers where the kernel document and Linux 6.1 differ: document or linux-6.1.")
    var reference: String = "document"

    func validate() throws {
        // vm.nr_trim_pages is an unsigned count in the kernel (proc_dointvec_minmax, minimum 0).
        guard trim >= 0 else { throw ValidationError("--trim is vm.nr_trim_pages: 0 or more pages, not \(trim)") }
        _ = try parseReference(reference)
    }

    func run() throws {
        try reporting("maps") {
            let reference = try parseReference(reference)
            do throws(Errno) {
                print(try MapsDemo.run(nrTrimPages: trim, reference: reference), terminator: "")
            } catch {
                throw CommandFailure(text: "the session failed: \(error.debugDescription)", status: 2)
            }
        }
    }
}

/// `--reference`'s value as a `System.Reference`. - Throws: a usage error for another name.
func parseReference(_ name: String) throws -> System.Reference {
    guard let r = System.Reference(name: name) else {
        throw ValidationError("--reference must be \(System.Reference.allCases.map(\.name).joined(separator: " or "))")
    }
    return r
}
