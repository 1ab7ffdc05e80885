/* Who is connected: a list of sessions keyed by the broker's client pointer. The broker is
 * single-threaded, so no locking. A few hundred devices at most: a list is enough. */
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

struct tc_session *tc_session_new(struct mosquitto *client)
{
    tc_session_remove(client); /* a pointer reused by the broker replaces a stale entry */
    struct tc_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->client = client;
    s->next = tc_g.sessions;
    tc_g.sessions = s;
    return s;
}

struct tc_session *tc_session_find(const struct mosquitto *client)
{
    for (struct tc_session *s = tc_g.sessions; s != NULL; s = s->next) {
        if (s->client == client) {
            return s;
        }
    }
    return NULL;
}

struct tc_session *tc_session_find_device(const char *device_id)
{
    for (struct tc_session *s = tc_g.sessions; s != NULL; s = s->next) {
        if (s->kind == TC_USER_HUB && !s->took_over && strcmp(s->id, device_id) == 0) {
            return s;
        }
    }
    return NULL;
}

void tc_session_remove(struct mosquitto *client)
{
    struct tc_session **pp = &tc_g.sessions;
    while (*pp != NULL) {
        if ((*pp)->client == client) {
            struct tc_session *dead = *pp;
            *pp = dead->next;
            free(dead);
            return;
        }
        pp = &(*pp)->next;
    }
}

void tc_session_free_all(void)
{
    while (tc_g.sessions != NULL) {
        struct tc_session *s = tc_g.sessions;
        tc_g.sessions = s->next;
        free(s);
    }
}
