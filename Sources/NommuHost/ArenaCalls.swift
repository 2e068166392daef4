// SPDX-License-Identifier: Apache-2.0
//
// The only file that calls cshim_* for the arena. Each call returns an errno as a value;
// Swift never reads the global errno.
internal import CShims
import NommuBase

enum Syscalls {
    static func acquire(
        bytes: Int, alignment: Int, source: HostArena.Backing, hugePages: Bool
    ) -> Result<cshim_arena, Errno> {
        var out = cshim_arena()
        let src: Int32 =
            switch source {
            case .mmap: Int32(CSHIM_ARENA_MMAP.rawValue)
            case .posixMemalign: Int32(CSHIM_ARENA_POSIX_MEMALIGN.rawValue)
            }
        let rc = cshim_arena_acquire(bytes, alignment, src, hugePages ? 1 : 0, &out)
        return rc == 0 ? .success(out) : .failure(Errno(rawValue: rc))
    }

    static func release(_ arena: inout cshim_arena) -> Errno? {
        let rc = cshim_arena_release(&arena)
        return rc == 0 ? nil : Errno(rawValue: rc)
    }

    static var hostPageSize: Int { Int(cshim_host_page_size()) }
}
