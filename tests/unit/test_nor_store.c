/* The NOR flash store: a power cut at every write step of a save (and of a forget) leaves the
 * old record or the new one, never neither and never an older one; NOR rules are kept. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tether/nor_store.h"
#include "tether/store.h"

#define SECTOR 2048u
#define BASE   SECTOR /* the store's two sectors after an unrelated first one */
#define SIZE   (4u * SECTOR)

/* The cut at a step leaves that step not done, half done, or done but unreported. */
enum { CUT_NONE_DONE, CUT_HALF_DONE, CUT_ALL_DONE, CUT_KINDS };

typedef struct nor_sim {
    uint8_t mem[SIZE];
    unsigned steps;  /* program and erase calls so far */
    unsigned cut_at; /* the step at which power goes (1-based); 0 = never */
    int cut_kind;
    int powered;
    unsigned zero_to_one; /* programs that asked to turn a 0 back into a 1 (a store bug) */
} nor_sim;

static nor_sim sim;

static tether_status sim_read(void *context, uint32_t addr, uint8_t *buf, size_t len)
{
    nor_sim *s = context;
    assert_true(addr + len <= SIZE);
    if (!s->powered)
        return TETHER_STORE_WRITE_FAILED;
    memcpy(buf, s->mem + addr, len);
    return TETHER_OK;
}

/* Counts a write step; returns how much of it happens (0..len) and whether power stays. */
static int step(nor_sim *s, size_t len, size_t *done)
{
    if (!s->powered) {
        *done = 0;
        return 0;
    }
    s->steps++;
    if (s->cut_at != 0 && s->steps == s->cut_at) {
        s->powered = 0;
        *done = s->cut_kind == CUT_NONE_DONE ? 0 : s->cut_kind == CUT_HALF_DONE ? len / 2 : len;
        return 0;
    }
    *done = len;
    return 1;
}

static tether_status sim_program(void *context, uint32_t addr, const uint8_t *buf, size_t len)
{
    nor_sim *s = context;
    assert_true(addr + len <= SIZE);
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)(buf[i] & ~s->mem[addr + i]) != 0)
            s->zero_to_one++;
    size_t done;
    int ok = step(s, len, &done);
    for (size_t i = 0; i < done; i++)
        s->mem[addr + i] &= buf[i]; /* NOR: 1 -> 0 only */
    return ok ? TETHER_OK : TETHER_STORE_WRITE_FAILED;
}

static tether_status sim_erase(void *context, uint32_t addr)
{
    nor_sim *s = context;
    assert_int_equal(addr % SECTOR, 0);
    size_t done;
    int ok = step(s, SECTOR, &done);
    memset(s->mem + addr, 0xFF, done);
    return ok ? TETHER_OK : TETHER_STORE_WRITE_FAILED;
}

static tether_nor_store ns;

/* A store over the simulator as after a (re)boot: power on, counters reset. */
static tether_store boot(unsigned cut_at, int cut_kind)
{
    sim.powered = 1;
    sim.steps = 0;
    sim.cut_at = cut_at;
    sim.cut_kind = cut_kind;
    tether_nor nor = {sim_read, sim_program, sim_erase, &sim, SECTOR};
    return tether_nor_store_init(&ns, &nor, BASE);
}

static tether_provisioning_record record(const char *hub)
{
    tether_provisioning_record r;
    memset(&r, 0, sizeof r);
    strcpy(r.id_scope, "0ne00AB12CD");
    strcpy(r.registration_id, "pump-17");
    strcpy(r.assigned_hub, hub);
    strcpy(r.device_id, "pump-17");
    r.assigned_at = 1795630000;
    return r;
}

static uint8_t scratch[TETHER_RECORD_MAX];

static tether_status save(const tether_store *st, const char *hub)
{
    tether_provisioning_record r = record(hub);
    return tether_store_save(st, scratch, sizeof scratch, &r);
}

/* The hub of the record a fresh boot loads, or "" when there is none. */
static const char *loaded_hub(void)
{
    static tether_provisioning_record out;
    tether_store st = boot(0, 0);
    tether_status s = tether_store_load(&st, scratch, sizeof scratch, NULL, &out);
    if (s == TETHER_STORE_EMPTY)
        return "";
    assert_int_equal(s, TETHER_OK);
    return out.assigned_hub;
}

static void fresh(void)
{
    memset(&sim, 0, sizeof sim);
    memset(sim.mem, 0xFF, sizeof sim.mem);
    sim.mem[0] = 0x5A; /* the neighbouring sectors must stay untouched */
    sim.mem[SIZE - 1] = 0xA5;
}

/* Steps of one save without a cut: erase, record, header, commit. */
static unsigned steps_of_a_save(void)
{
    fresh();
    tether_store st = boot(0, 0);
    assert_int_equal(save(&st, "hub-a"), TETHER_OK);
    return sim.steps;
}

static void a_save_takes_four_steps_and_loads_back(void **state)
{
    (void)state;
    assert_int_equal(steps_of_a_save(), 4);
    assert_string_equal(loaded_hub(), "hub-a");
    tether_store st = boot(0, 0);
    assert_int_equal(save(&st, "hub-b"), TETHER_OK);
    assert_string_equal(loaded_hub(), "hub-b");
    st = boot(0, 0);
    assert_int_equal(save(&st, "hub-c"), TETHER_OK); /* back into the first slot */
    assert_string_equal(loaded_hub(), "hub-c");
    assert_int_equal(sim.zero_to_one, 0);
    assert_int_equal(sim.mem[0], 0x5A);
    assert_int_equal(sim.mem[SIZE - 1], 0xA5);
}

/* Old record A (after `updates` earlier saves), then a save of B cut at every step, with every
 * kind of cut: the next boot loads A or B, B only once its commit step has completed. */
static void cut_at_every_step_of_an_update(unsigned updates)
{
    const char *hubs[] = {"hub-a", "hub-b", "hub-c", "hub-d"};
    const char *old = hubs[updates];
    for (unsigned k = 1; k <= 5; k++) {
        for (int kind = 0; kind < CUT_KINDS; kind++) {
            fresh();
            tether_store st = boot(0, 0);
            for (unsigned u = 0; u <= updates; u++)
                assert_int_equal(save(&st, hubs[u]), TETHER_OK);
            st = boot(k, kind);
            tether_status s = save(&st, "hub-new");
            const char *got = loaded_hub();
            if (k > 4) { /* past the last step: no cut */
                assert_int_equal(s, TETHER_OK);
                assert_string_equal(got, "hub-new");
            } else if (k == 4 && kind == CUT_ALL_DONE) {
                assert_int_equal(s, TETHER_STORE_WRITE_FAILED);
                assert_string_equal(got, "hub-new"); /* committed, but not told */
            } else {
                assert_int_equal(s, TETHER_STORE_WRITE_FAILED);
                assert_string_equal(got, old);
            }
            /* And the store goes on: the next save works and wins. */
            st = boot(0, 0);
            assert_int_equal(save(&st, "hub-after"), TETHER_OK);
            assert_string_equal(loaded_hub(), "hub-after");
            assert_int_equal(sim.zero_to_one, 0);
        }
    }
}

static void update_from_slot_0_survives_a_cut_at_every_step(void **state)
{
    (void)state;
    cut_at_every_step_of_an_update(0);
}

static void update_from_slot_1_survives_a_cut_at_every_step(void **state)
{
    (void)state;
    cut_at_every_step_of_an_update(1);
}

static void update_after_many_saves_survives_a_cut_at_every_step(void **state)
{
    (void)state;
    cut_at_every_step_of_an_update(3);
}

static void first_save_cut_leaves_empty_or_the_record(void **state)
{
    (void)state;
    for (unsigned k = 1; k <= 4; k++) {
        for (int kind = 0; kind < CUT_KINDS; kind++) {
            fresh();
            tether_store st = boot(k, kind);
            assert_int_equal(save(&st, "hub-a"), TETHER_STORE_WRITE_FAILED);
            const char *got = loaded_hub();
            assert_string_equal(got, k == 4 && kind == CUT_ALL_DONE ? "hub-a" : "");
        }
    }
}

static void forget_cut_never_brings_back_an_older_record(void **state)
{
    (void)state;
    for (unsigned k = 1; k <= 2; k++) {
        for (int kind = 0; kind < CUT_KINDS; kind++) {
            fresh();
            tether_store st = boot(0, 0);
            assert_int_equal(save(&st, "hub-old"), TETHER_OK);
            assert_int_equal(save(&st, "hub-current"), TETHER_OK);
            st = boot(k, kind);
            assert_int_equal(st.erase(st.context), TETHER_STORE_WRITE_FAILED);
            const char *got = loaded_hub();
            assert_true(strcmp(got, "hub-current") == 0 || strcmp(got, "") == 0);
        }
    }
    fresh();
    tether_store st = boot(0, 0);
    assert_int_equal(save(&st, "hub-a"), TETHER_OK);
    assert_int_equal(st.erase(st.context), TETHER_OK);
    assert_string_equal(loaded_hub(), "");
}

static void damaged_current_slot_falls_back_and_oversize_is_refused(void **state)
{
    (void)state;
    fresh();
    tether_store st = boot(0, 0);
    assert_int_equal(save(&st, "hub-a"), TETHER_OK);
    assert_int_equal(save(&st, "hub-b"), TETHER_OK);
    sim.mem[BASE + SECTOR + 40] ^= 0x01; /* one bit of hub-b's record (slot 1) */
    assert_string_equal(loaded_hub(), "hub-a");
    uint8_t big[SECTOR];
    memset(big, 'x', sizeof big);
    st = boot(0, 0);
    assert_int_equal(st.write(st.context, big, SECTOR - TETHER_NOR_SLOT_OVERHEAD + 1),
                     TETHER_BUFFER_TOO_SMALL);
    /* A sequence that wraps around 2^32 still picks the newer slot. */
    fresh();
    st = boot(0, 0);
    assert_int_equal(save(&st, "hub-a"), TETHER_OK);
    uint8_t seq_ff[4] = {0xFE, 0xFF, 0xFF, 0xFF}; /* rewrite slot 0 as sequence 0xFFFFFFFE */
    memset(sim.mem + BASE + 4, 0xFF, 4);
    memcpy(sim.mem + BASE + 4, seq_ff, 4);
    size_t len = (size_t)sim.mem[BASE + 8] | (size_t)sim.mem[BASE + 9] << 8;
    uint32_t crc = tether_crc32(tether_crc32(0, sim.mem + BASE + 4, 8), sim.mem + BASE + 16, len);
    for (unsigned i = 0; i < 4; i++)
        sim.mem[BASE + 12 + i] = (uint8_t)(crc >> (8 * i));
    assert_string_equal(loaded_hub(), "hub-a");
    st = boot(0, 0);
    assert_int_equal(save(&st, "hub-b"), TETHER_OK); /* 0xFFFFFFFF */
    st = boot(0, 0);
    assert_int_equal(save(&st, "hub-c"), TETHER_OK); /* 0x00000000: newer */
    assert_string_equal(loaded_hub(), "hub-c");
}

/* A driver whose sector cannot hold a slot (header and commit word) is refused before any
 * flash operation, instead of a capacity that wraps to about 4 GB. */
static void sector_smaller_than_a_slot_is_refused(void **state)
{
    (void)state;
    fresh();
    sim.powered = 1;
    for (uint32_t size = 0; size <= TETHER_NOR_SLOT_OVERHEAD + 1; size++) {
        tether_nor nor = {sim_read, sim_program, sim_erase, &sim, size};
        tether_store st = tether_nor_store_init(&ns, &nor, BASE);
        if (size == TETHER_NOR_SLOT_OVERHEAD)
            continue; /* the smallest valid sector: holds an empty record only */
        assert_int_not_equal(save(&st, "hub-a"), TETHER_OK);
        assert_int_equal(sim.steps, 0);
        assert_int_equal(st.erase(st.context), TETHER_INVALID_ARGUMENT);
        assert_int_equal(sim.steps, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_save_takes_four_steps_and_loads_back),
        cmocka_unit_test(update_from_slot_0_survives_a_cut_at_every_step),
        cmocka_unit_test(update_from_slot_1_survives_a_cut_at_every_step),
        cmocka_unit_test(update_after_many_saves_survives_a_cut_at_every_step),
        cmocka_unit_test(first_save_cut_leaves_empty_or_the_record),
        cmocka_unit_test(forget_cut_never_brings_back_an_older_record),
        cmocka_unit_test(damaged_current_slot_falls_back_and_oversize_is_refused),
        cmocka_unit_test(sector_smaller_than_a_slot_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
