// SPDX-License-Identifier: Apache-2.0
//
// Starting a program and waiting for it, for `nommu run`, `nommu record` and the program
// series of `nommu bench`.
package import NommuBase

#if canImport(Glibc)
    import Glibc
#endif

/// How a program ended.
package enum ProgramEnd: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    package var description: String {
        switch self {
        case .exited(let s): return "exit status \(s)"
        case .signaled(let s): return "signal \(s)"
        }
    }
}

/// Starts `argv` (PATH is searched when argv[0] has no slash) with `environment`, every
/// signal at its default disposition; stdout and stderr go to the files named (created or
/// truncated; /dev/null to drop them), stdin to /dev/null when `stdout` is given; with
/// `unblockSignals` no signal is blocked (otherwise the mask is the calling thread's); with
/// `stdoutToStderr` the program's stdout is this process's stderr (a helper's chatter kept
/// out of a report on stdout).
/// - Throws: posix_spawn's errno (ENOENT when the program is missing, EACCES when it is not
///   executable, …).
package func spawnProgram(
    _ argv: [String], environment: [String: String], stdout: String? = nil, stderr: String? = nil,
    unblockSignals: Bool = false, stdoutToStderr: Bool = false
) throws(Errno) -> Int32 {
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attributes, &all)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(
        &attributes, Int16(POSIX_SPAWN_SETSIGDEF | (unblockSignals ? POSIX_SPAWN_SETSIGMASK : 0)))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdout {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    }
    if let stderr { posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    if stdoutToStderr { posix_spawn_file_actions_adddup2(&actions, 2, 1) }
    var pid = pid_t()
    let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
    guard rc == 0 else { throw Errno(rawValue: rc) }
    return pid
}

/// Waits for `pid` to end.
package func waitForProgram(_ pid: Int32) -> ProgramEnd {
    var status: Int32 = 0
    _ = valueOrErrno { waitpid(pid, &status, 0) }  // again while interrupted
    if status & 0x7f != 0 { return .signaled(status & 0x7f) }
    return .exited((status >> 8) & 0xff)
}
