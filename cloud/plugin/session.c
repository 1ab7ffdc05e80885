/* Who is connected: a list of sessions keyed by the broker's client pointer. The broker is
 * single-threaded, so no locking. A few hundred devices at most: a list is enough. */
#include <stdio.h>
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
    while (tc_g.kept != NULL) {
        struct tc_kept_subs *k = tc_g.kept;
        tc_g.kept = k->next;
        free(k);
    }
}

static struct tc_kept_subs **kept_find(const char *client_id)
{
    struct tc_kept_subs **pp = &tc_g.kept;
    while (*pp != NULL && strcmp((*pp)->client_id, client_id) != 0) {
        pp = &(*pp)->next;
    }
    return pp;
}

void tc_session_resume(struct tc_session *s)
{
    struct tc_kept_subs **pp = kept_find(s->client_id);
    s->persistent = !mosquitto_client_clean_session(s->client);
    s->subs = 0;
    if (!s->persistent) {
        /* CleanSession 1: the broker discards any previous session, and so does IoT Hub */
        if (*pp != NULL) {
            struct tc_kept_subs *dead = *pp;
            *pp = dead->next;
            free(dead);
        }
        return;
    }
    for (struct tc_session *o = tc_g.sessions; o != NULL; o = o->next) {
        if (o != s && o->persistent && strcmp(o->client_id, s->client_id) == 0) {
            s->subs = o->subs; /* the broker moves that session to this connection */
            return;
        }
    }
    if (*pp != NULL) {
        s->subs = (*pp)->subs;
    }
}

void tc_session_keep(const struct tc_session *s)
{
    if (!s->persistent) {
        return;
    }
    for (struct tc_session *o = tc_g.sessions; o != NULL; o = o->next) {
        if (o != s && strcmp(o->client_id, s->client_id) == 0) {
            return; /* replaced by a newer connection, which holds the session now */
        }
    }
    struct tc_kept_subs **pp = kept_find(s->client_id);
    if (*pp == NULL) {
        *pp = calloc(1, sizeof **pp);
        if (*pp == NULL) {
            return;
        }
        snprintf((*pp)->client_id, sizeof(*pp)->client_id, "%s", s->client_id);
    }
    (*pp)->subs = s->subs;
}
