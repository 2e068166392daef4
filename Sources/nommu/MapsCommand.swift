// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import NommuMM
import NommuReports

/// `nommu maps`: a demo session of the address-space model with its `/proc` text.
struct MapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maps",
        abstract: "Show a few processes mapping and unmapping, with /proc/maps and /proc/<pid>/maps after each step."
    )

    @Option(help: "vm.nr_trim_pages for the session (0 keeps power-of-two slack).")
    var trim: Int = 1

    @Option(help: "Whose answers where the kernel document and Linux 6.1 differ: document or linux-6.1.")
    var reference: String = "document"

    func run() throws {
        let reference = try parseReference(reference)
        do {
            print(try MapsDemo.run(nrTrimPages: trim, reference: reference), terminator: "")
        } catch {
            throw ValidationError("nommu maps: \(error.debugDescription)")
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
