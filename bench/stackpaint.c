/* Bench only: runs the tether command's main() on a stack painted with a known byte, and at
 * exit finds the deepest byte that changed: the peak stack of the whole command (its own
 * frames, the library, mbedTLS, and the C library calls made on the way: printf, sockets,
 * getaddrinfo), and the library's own peak measured by stackwrap.c. The figures go to the file
 * named by BENCH_STACK_FILE as JSON: {"process":N,"library":N,"port":N}.
 * Runs natively and under qemu-arm (ucontext is in glibc on both). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define PAINT      0xA5
#define STACK_SIZE (2u * 1024u * 1024u)

int tether_cli_main(int argc, char **argv);

static ucontext_t caller, cli;
static uint8_t *stack;
uint8_t *bench_stack_low;
extern size_t bench_lib_stack_peak, bench_port_stack_peak; /* stackwrap.c */
static int cli_argc, cli_rc;
static char **cli_argv;

static void report(void)
{
    size_t untouched = 0;
    while (untouched < STACK_SIZE && stack[untouched] == PAINT)
        untouched++;
    const char *path = getenv("BENCH_STACK_FILE");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) {
        fprintf(f, "{\"process\":%zu,\"library\":%zu,\"port\":%zu}\n",
                (size_t)STACK_SIZE - untouched, bench_lib_stack_peak, bench_port_stack_peak);
        fclose(f);
    }
}

static void run_cli(void)
{
    cli_rc = tether_cli_main(cli_argc, cli_argv);
}

int main(int argc, char **argv)
{
    stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) {
        perror("stackpaint: mmap");
        return 1;
    }
    memset(stack, PAINT, STACK_SIZE);
    bench_stack_low = stack;
    atexit(report); /* also when the command calls exit() itself */
    cli_argc = argc;
    cli_argv = argv;
    getcontext(&cli);
    cli.uc_stack.ss_sp = stack;
    cli.uc_stack.ss_size = STACK_SIZE;
    cli.uc_link = &caller;
    makecontext(&cli, run_cli, 0);
    swapcontext(&caller, &cli);
    return cli_rc;
}
