// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import NommuMM

/// `nommu maps`: a demo session of the address-space model with its `/proc` text.
struct MapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maps",
        abstract: "Show a few processes mapping and unmapping, with /proc/maps and /proc/<pid>/maps after each step."
    )

    @Option(help: "vm.nr_trim_pages for the session (0 keeps power-of-two slack).")
    var trim: Int = 1

    func run() throws {
        do {
            print(try MapsDemo.run(nrTrimPages: trim), terminator: "")
        } catch {
            throw ValidationError("nommu maps: \(error.debugDescription)")
        }
    }
}
