// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import NommuBase

/// The `nommu` command line: tools around the no-MMU memory model.
@main
struct Nommu: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nommu",
        abstract: "Linux's no-MMU memory mapping, in user space.",
        version: NommuVersion.string,
        subcommands: [
            BenchCommand.self, MapsCommand.self, ExecMapCommand.self, ReplayCommand.self, RecordCommand.self,
            RunCommand.self,
        ]
    )
}
