/* The file store under faults: every file operation of a save (open, write, fsync, close, rename,
 * the directory's open / fsync / close, unlink) is interposed at link time (-Wl,--wrap); the
 * k-th one fails (EIO), or the process dies just before it or just after it, for every k. With
 * one writer and with two writers saving at once, the stored file must read back as the old
 * record or a new one: never corrupt, never missing. A failed save must say which state it left
 * (STORE_WRITE_FAILED: the old record; STORE_NOT_DURABLE: the new one). A link planted at the
 * temporary name must not be followed.
 * Prints "store crash test: trials=N old=N new=N corrupt=N missing=N". */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tether/store.h"

/* --- the interposer ------------------------------------------------------------------------ */

enum fault_mode { FAULT_NONE, FAULT_FAIL, FAULT_DIE_BEFORE, FAULT_DIE_AFTER, FAULT_MODES };
static const char *const mode_names[] = {"none", "fail", "die-before", "die-after"};

static struct {
    int armed;
    int count;   /* file operations seen since armed */
    int fault_k; /* 1-based operation to fault; 0 for none */
    enum fault_mode mode;
    const char *plant_link_to; /* plant a symlink at the name of the first exclusive open */
} interposer;

int __real_open(const char *path, int flags, ...);
ssize_t __real_write(int fd, const void *buf, size_t len);
int __real_fsync(int fd);
int __real_close(int fd);
int __real_rename(const char *from, const char *to);
int __real_unlink(const char *path);
int __wrap_open(const char *path, int flags, ...);
ssize_t __wrap_write(int fd, const void *buf, size_t len);
int __wrap_fsync(int fd);
int __wrap_close(int fd);
int __wrap_rename(const char *from, const char *to);
int __wrap_unlink(const char *path);

/* 1 when the operation must fail without being done; dies here for FAULT_DIE_BEFORE. */
static int before_op(void)
{
    if (!interposer.armed)
        return 0;
    if (++interposer.count != interposer.fault_k)
        return 0;
    if (interposer.mode == FAULT_DIE_BEFORE)
        _exit(70);
    return interposer.mode == FAULT_FAIL;
}

static void after_op(void)
{
    if (interposer.armed && interposer.count == interposer.fault_k &&
        interposer.mode == FAULT_DIE_AFTER)
        _exit(71);
}

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (before_op()) {
        errno = EIO;
        return -1;
    }
    if (interposer.plant_link_to != NULL && (flags & O_CREAT)) {
        /* An attacker who guessed the name: the store must not write through this link. */
        if (symlink(interposer.plant_link_to, path) != 0)
            return -1;
        interposer.plant_link_to = NULL;
    }
    int fd = __real_open(path, flags, mode);
    after_op();
    return fd;
}

ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
    if (before_op()) {
        errno = EIO;
        return -1;
    }
    ssize_t n = __real_write(fd, buf, len);
    after_op();
    return n;
}

int __wrap_fsync(int fd)
{
    if (before_op()) {
        errno = EIO;
        return -1;
    }
    int rc = __real_fsync(fd);
    after_op();
    return rc;
}

int __wrap_close(int fd)
{
    if (before_op()) {
        __real_close(fd); /* Linux frees the descriptor even when close reports EIO */
        errno = EIO;
        return -1;
    }
    int rc = __real_close(fd);
    after_op();
    return rc;
}

int __wrap_rename(const char *from, const char *to)
{
    if (before_op()) {
        errno = EIO;
        return -1;
    }
    int rc = __real_rename(from, to);
    after_op();
    return rc;
}

int __wrap_unlink(const char *path)
{
    if (before_op()) {
        errno = EIO;
        return -1;
    }
    int rc = __real_unlink(path);
    after_op();
    return rc;
}

/* --- records and the scratch directory ----------------------------------------------------- */

enum outcome { OUT_OLD, OUT_NEW_A, OUT_NEW_B, OUT_CORRUPT, OUT_MISSING, OUT_OTHER };

static char dir[256];
static char state_path[300];
static struct {
    int trials, old, new_, corrupt, missing;
} tally;

static tether_provisioning_record record(const char *hub)
{
    tether_provisioning_record r;
    memset(&r, 0, sizeof r);
    strcpy(r.id_scope, "0ne00AB12CD");
    strcpy(r.registration_id, "pump-17");
    snprintf(r.assigned_hub, sizeof r.assigned_hub, "%s", hub);
    strcpy(r.device_id, "pump-17");
    r.assigned_at = 1795630000;
    return r;
}

static tether_status save(const char *hub)
{
    tether_file_store fs;
    tether_store store = tether_file_store_init(&fs, state_path);
    tether_provisioning_record r = record(hub);
    uint8_t scratch[TETHER_RECORD_MAX];
    return tether_store_save(&store, scratch, sizeof scratch, &r);
}

static enum outcome read_back(void)
{
    tether_file_store fs;
    tether_store store = tether_file_store_init(&fs, state_path);
    tether_provisioning_record r;
    uint8_t scratch[TETHER_RECORD_MAX];
    tether_status st = tether_store_load(&store, scratch, sizeof scratch, NULL, &r);
    if (st == TETHER_STORE_EMPTY)
        return OUT_MISSING;
    if (st != TETHER_OK)
        return OUT_CORRUPT;
    if (strcmp(r.assigned_hub, "old-hub.example") == 0)
        return OUT_OLD;
    if (strcmp(r.assigned_hub, "a-hub.example") == 0)
        return OUT_NEW_A;
    if (strcmp(r.assigned_hub, "b-hub.example") == 0)
        return OUT_NEW_B;
    return OUT_OTHER;
}

static void count(enum outcome o)
{
    tally.trials++;
    if (o == OUT_OLD)
        tally.old++;
    else if (o == OUT_NEW_A || o == OUT_NEW_B)
        tally.new_++;
    else if (o == OUT_MISSING)
        tally.missing++;
    else
        tally.corrupt++;
}

/* Removes the temporary files a killed writer left, then stores the old record. */
static void reset_old(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    assert_int_equal(save("old-hub.example"), TETHER_OK);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tether-store-crash-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(state_path, sizeof state_path, "%s/device.state", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    return 0;
}

/* The number of file operations of one clean save. */
static int operations_of_a_save(void)
{
    reset_old();
    interposer.armed = 1;
    interposer.count = 0;
    interposer.fault_k = 0;
    tether_status st = save("a-hub.example");
    interposer.armed = 0;
    assert_int_equal(st, TETHER_OK);
    return interposer.count;
}

/* Exit codes of a writer: what its save returned, or that it died at the fault. */
enum { EXIT_OK = 0, EXIT_WRITE_FAILED = 1, EXIT_NOT_DURABLE = 2, EXIT_OTHER = 3 };

static int exit_of(tether_status st)
{
    return st == TETHER_OK                   ? EXIT_OK
           : st == TETHER_STORE_WRITE_FAILED ? EXIT_WRITE_FAILED
           : st == TETHER_STORE_NOT_DURABLE  ? EXIT_NOT_DURABLE
                                             : EXIT_OTHER;
}

/* Forks a writer that waits on @p gate, then saves @p hub with the k-th operation faulted. */
static pid_t writer(const int gate[2], const char *hub, int k, enum fault_mode mode)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(gate[1]); /* the gate opens (end of file) when the parent closes its end */
        while (read(gate[0], &c, 1) < 0 && errno == EINTR)
            ;
        interposer.armed = 1;
        interposer.count = 0;
        interposer.fault_k = k;
        interposer.mode = mode;
        tether_status st = save(hub);
        interposer.armed = 0;
        _exit(exit_of(st));
    }
    return pid;
}

static int wait_writer(pid_t pid)
{
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    return WEXITSTATUS(ws);
}

/* 1 when the save's result says its rename happened. */
static int renamed(int code)
{
    return code == EXIT_OK || code == EXIT_NOT_DURABLE;
}

static void one_writer_every_fault(void **state)
{
    (void)state;
    int ops = operations_of_a_save();
    for (int mode = FAULT_FAIL; mode < FAULT_MODES; mode++) {
        for (int k = 1; k <= ops + 1; k++) {
            reset_old();
            int gate[2];
            assert_int_equal(pipe(gate), 0);
            pid_t a = writer(gate, "a-hub.example", k, (enum fault_mode)mode);
            close(gate[1]);
            int code = wait_writer(a);
            close(gate[0]);
            enum outcome o = read_back();
            count(o);
            if (o != OUT_OLD && o != OUT_NEW_A)
                fail_msg("one writer, %s at operation %d of %d: the file is %s", mode_names[mode],
                         k, ops, o == OUT_MISSING ? "missing" : "corrupt");
            /* A save that returned says exactly which record it left. */
            if (code == EXIT_WRITE_FAILED && o != OUT_OLD)
                fail_msg("%s at op %d: STORE_WRITE_FAILED but the old record is gone",
                         mode_names[mode], k);
            if (renamed(code) && o != OUT_NEW_A)
                fail_msg("%s at op %d: save reported the new record in place, it is not",
                         mode_names[mode], k);
            assert_true(code != EXIT_OTHER);
        }
    }
}

static void two_writers_every_pair_of_faults(void **state)
{
    (void)state;
    int ops = operations_of_a_save();
    for (int ma = FAULT_FAIL; ma < FAULT_MODES; ma++) {
        for (int ka = 1; ka <= ops + 1; ka++) {
            for (int mb = FAULT_FAIL; mb < FAULT_MODES; mb++) {
                for (int kb = 1; kb <= ops + 1; kb++) {
                    reset_old();
                    int gate[2];
                    assert_int_equal(pipe(gate), 0);
                    pid_t a = writer(gate, "a-hub.example", ka, (enum fault_mode)ma);
                    pid_t b = writer(gate, "b-hub.example", kb, (enum fault_mode)mb);
                    close(gate[1]); /* both start at once */
                    int ca = wait_writer(a), cb = wait_writer(b);
                    close(gate[0]);
                    enum outcome o = read_back();
                    count(o);
                    if (o != OUT_OLD && o != OUT_NEW_A && o != OUT_NEW_B)
                        fail_msg("two writers, A %s at %d, B %s at %d: the file is %s",
                                 mode_names[ma], ka, mode_names[mb], kb,
                                 o == OUT_MISSING ? "missing" : "corrupt");
                    if ((renamed(ca) || renamed(cb)) && o == OUT_OLD)
                        fail_msg("A %s at %d, B %s at %d: a save reported its record in place "
                                 "but the old one is there",
                                 mode_names[ma], ka, mode_names[mb], kb);
                    if (renamed(ca) && cb == EXIT_WRITE_FAILED && o != OUT_NEW_A)
                        fail_msg("only A saved, yet the file is not A's record");
                    if (renamed(cb) && ca == EXIT_WRITE_FAILED && o != OUT_NEW_B)
                        fail_msg("only B saved, yet the file is not B's record");
                }
            }
        }
    }
    printf("store crash test: trials=%d old=%d new=%d corrupt=%d missing=%d\n", tally.trials,
           tally.old, tally.new_, tally.corrupt, tally.missing);
    assert_int_equal(tally.corrupt, 0);
    assert_int_equal(tally.missing, 0);
}

/* A link planted at PATH.tmp (the old fixed name) and one planted at the exact name a save is
 * about to create: neither link's target changes, and the record is saved. */
static void links_at_the_temporary_name_are_not_followed(void **state)
{
    (void)state;
    reset_old();
    char victim[400], link_path[400];
    snprintf(victim, sizeof victim, "%s/victim", dir);
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs("precious\n", f);
    fclose(f);
    snprintf(link_path, sizeof link_path, "%s.tmp", state_path);
    assert_int_equal(symlink(victim, link_path), 0);

    assert_int_equal(save("a-hub.example"), TETHER_OK);
    interposer.armed = 1;
    interposer.fault_k = 0;
    interposer.plant_link_to = victim; /* raced in at the name the save chose */
    tether_status st = save("b-hub.example");
    interposer.armed = 0;
    assert_null(interposer.plant_link_to); /* the link was planted */
    assert_int_equal(st, TETHER_OK);
    assert_int_equal(read_back(), OUT_NEW_B);

    char back[64] = {0};
    f = fopen(victim, "r");
    assert_non_null(f);
    assert_non_null(fgets(back, sizeof back, f));
    fclose(f);
    assert_string_equal(back, "precious\n");
    struct stat lst;
    assert_int_equal(lstat(link_path, &lst), 0);
    assert_true(S_ISLNK(lst.st_mode));
}

/* A failed directory fsync after the rename: the new record is in place and the status says
 * so (STORE_NOT_DURABLE), never "the previous record is intact". */
static void failed_directory_sync_reports_not_durable(void **state)
{
    (void)state;
    int ops = operations_of_a_save();
    int seen = 0;
    for (int k = 1; k <= ops; k++) {
        reset_old();
        interposer.armed = 1;
        interposer.count = 0;
        interposer.fault_k = k;
        interposer.mode = FAULT_FAIL;
        tether_status st = save("a-hub.example");
        interposer.armed = 0;
        enum outcome o = read_back();
        if (st == TETHER_STORE_NOT_DURABLE) {
            seen++;
            assert_int_equal(o, OUT_NEW_A);
        } else {
            assert_int_equal(st, TETHER_STORE_WRITE_FAILED);
            assert_int_equal(o, OUT_OLD);
        }
    }
    assert_true(seen >= 1); /* the directory's fsync is one of the operations */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(failed_directory_sync_reports_not_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(links_at_the_temporary_name_are_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(one_writer_every_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(two_writers_every_pair_of_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
