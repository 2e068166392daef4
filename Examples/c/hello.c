/* SPDX-License-Identifier: Apache-2.0
 * A C program on a simulated no-MMU kernel: map, cut, read /proc, unmap. */
#include <nommu.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    nommu_system *sys = nommu_system_create(NULL); /* 64 MiB, 4 KiB pages, max order 10 */
    nommu_process *p = nommu_process_create(sys);

    char *a = nommu_mmap(p, NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(a, "hello, no-MMU");
    nommu_munmap(p, a + 4096, 4096); /* a hole in the middle: two mappings */

    if (nommu_mmap(p, (void *)0x10000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
        printf("address hint: %s\n", strerror(errno)); /* EINVAL: no-MMU refuses hints */

    char buf[512];
    int fd = nommu_open(p, "/proc/self/maps", O_RDONLY);
    ssize_t n = nommu_read(p, fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    nommu_close(p, fd);
    printf("%s\n%s", a, buf);

    nommu_process_exit(p); /* releases every mapping */
    nommu_system_destroy(sys);
    return 0;
}
