// SPDX-License-Identifier: Apache-2.0
import ArgumentParser

/// The `nommu` command line: tools around the no-MMU memory model.
@main
struct Nommu: ParsableCommand {
    /// What `nommu --version` prints: the release this tree is working towards.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "nommu",
        abstract: "Linux's no-MMU memory mapping, in user space.",
        version: Nommu.version,
        subcommands: [
            BenchCommand.self, MapsCommand.self, ExecMapCommand.self, ReplayCommand.self, RecordCommand.self,
            RunCommand.self,
        ]
    )
}
